"""``python -m inpaintbench.cli``: the ``inpaintbench`` command."""

import sys

from inpaintbench.cli import main

sys.exit(main())
