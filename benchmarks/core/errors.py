"""The errors the harness reports to users as one clear line."""

from __future__ import annotations


class InpaintBenchError(Exception):
    """Base class of the errors the harness reports to users as one clear line."""


class InputError(InpaintBenchError, ValueError):
    """Bad input: wrong shape, dtype, range, mask values, size mismatch, unreadable file."""


class StorageError(InpaintBenchError, OSError):
    """Writing a results folder failed (disk full, read-only, quota): the message names the file
    and the cause; every record written before is kept, so a rerun resumes."""


class MethodUnavailable(InpaintBenchError, RuntimeError):
    """A method cannot be built here (missing optional extra, missing weights file).

    The message names what is missing and how to provide it; the registry lists the method
    as unavailable with that message instead of failing the whole run.
    """
