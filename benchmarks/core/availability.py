"""Cheap answers for ``check_available`` classmethods (``inpaintbench list methods --check``):
whether an optional package is installed, without importing it, and whether a Hugging Face
Hub id is in the local cache, without asking the Hub.

A method's ``check_available(**config)`` raises
:class:`~inpaintbench.core.errors.MethodUnavailable` with the reason where building it with
``config`` would fail for want of a package or a file; it never builds a network, reads
weights or imports a heavy library (diffusers, TensorFlow), so listing every method stays a
matter of seconds.
"""

from __future__ import annotations

import importlib.util
import re

from inpaintbench.core.errors import MethodUnavailable

__all__ = ["hub_cached", "looks_like_hub_id", "require_package"]

#: ``owner/name``: what the loaders take for a Hugging Face Hub id when no such path exists.
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def require_package(module: str, who: str, install_hint: str) -> None:
    """Raise :class:`MethodUnavailable` (``"<who> needs <module>, which is not installed;
    install it with <install_hint>"``) unless ``module`` can be imported; nothing is imported."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken module spec
        found = False
    if not found:
        raise MethodUnavailable(f"{who} needs {module}, which is not installed; install it with {install_hint}")


def looks_like_hub_id(source: str) -> bool:
    """True when ``source`` has the form of a Hub id (``owner/name``) and is not a relative path
    (``./x``, ``../x``); the caller checks first that no such local path exists."""
    return not source.startswith(".") and HUB_ID.fullmatch(source) is not None


def hub_cached(repo_id: str, filename: str, subfolder: str | None = None) -> bool:
    """True when ``filename`` (in ``subfolder``) of the model ``repo_id`` is in the local Hugging
    Face cache (``$HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``); the Hub is not asked."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        found = try_to_load_from_cache(repo_id, f"{subfolder}/{filename}" if subfolder else filename)
    except ValueError:  # not a valid repo id
        return False
    return isinstance(found, str)
