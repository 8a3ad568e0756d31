"""TensorFlow's start-up banner (issue 23, item 5): the two lines TensorFlow >= 2.20 writes to
stderr while imported, whatever ``TF_CPP_MIN_LOG_LEVEL`` says, are dropped; anything else a
native library writes to file descriptor 2 during the import still shows."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

WRITE_FD2 = (
    "import os, sys; from inpaintbench.core.probing import without_start_up_banners\n"
    "with without_start_up_banners():\n"
    "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
    "    os.write(2, b'I0000 port.cc:153] oneDNN custom operations are on. You may see ...\\n')\n"
    "    os.write(2, b'E0000 a real error line\\n')\n"
    "    print('to stdout')\n"
    "os.write(2, b'after the block\\n')\n"
)


def test_banner_lines_dropped_other_stderr_kept():
    out = subprocess.run([sys.executable, "-c", WRITE_FD2], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "to stdout\n"
    assert out.stderr == "E0000 a real error line\nafter the block\n"


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow (extra [tf]) is not installed")
def test_importing_tensorflow_the_project_way_prints_nothing():
    code = ("from inpaintbench.methods.feedforward.gan_tf_net import import_tensorflow; import os; "
            "import_tensorflow(); print(os.environ['TF_CPP_MIN_LOG_LEVEL'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert out.returncode == 0, out.stderr
    assert out.stderr == "" and out.stdout.strip() == "2"
