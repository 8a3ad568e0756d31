"""Warnings for users of the harness: something is off, but the run can go on.

Library code calls :func:`warn`, which issues a Python warning of category
:class:`InpaintBenchWarning` (API users filter or record them like any warning). The command
line wraps every command in :func:`printed_on_stderr`, which prints each one as a single
``warning: ...`` line, every time it is issued (callers decide what is worth saying once).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Iterator


class InpaintBenchWarning(UserWarning):
    """A problem the harness worked around (a skipped line, a rebuilt side file, a suspicious mask)."""


def one_line(text: object) -> str:
    """``text`` with its line breaks folded into spaces (an error or warning is one line)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def warn(message: str) -> None:
    """Issue ``message`` as an :class:`InpaintBenchWarning` (one line)."""
    warnings.warn(one_line(message), InpaintBenchWarning, stacklevel=2)


@contextlib.contextmanager
def printed_on_stderr() -> Iterator[None]:
    """Inside the block every :class:`InpaintBenchWarning` becomes one ``warning: ...`` line on
    stderr; other warnings keep Python's handling."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", InpaintBenchWarning)
        previous = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, InpaintBenchWarning):
                print(f"warning: {message}", file=sys.stderr)
            else:
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield
