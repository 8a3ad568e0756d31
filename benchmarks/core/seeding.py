"""Deterministic seeds derived from names, never from global RNG state, and the per-sample
generators (:class:`SampleRNG`) every method draws from."""

from __future__ import annotations

import hashlib

from typing import Sequence

import torch

from inpaintbench.core.errors import InputError


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any sequence of printable parts (suite seed, sample id, family...).

    Uses SHA-256 of the parts' ``repr`` so it is identical across processes and machines
    (Python's ``hash`` is salted per process).
    """
    digest = hashlib.sha256("\x1f".join(repr(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def make_generator(*parts: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with :func:`derive_seed` of ``parts``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(*parts))
    return gen


class SampleRNG:
    """Per-sample randomness: one ``torch.Generator`` per image of a batch.

    The harness seeds generator ``i`` from (suite seed, method label, sample id ``i``) alone,
    so a sample's draws never depend on the batch it lands in, the batch size, or where an
    interrupted run resumed. Methods draw through :meth:`randn` (a stack of per-sample
    draws), never from one batch-wide generator.

    Args:
        generators: one generator per image, all on the same device.
    """

    def __init__(self, generators: Sequence[torch.Generator]):
        self.generators = tuple(generators)
        if not self.generators:
            raise InputError("SampleRNG needs at least one generator")
        self.device = self.generators[0].device

    @classmethod
    def for_samples(cls, *parts: object, sample_ids: Sequence[str],
                    device: torch.device | str = "cpu") -> "SampleRNG":
        """Generators seeded by :func:`inpaintbench.core.seeding.derive_seed` of ``(*parts, sample_id)``."""
        return cls([make_generator(*parts, sid, device=device) for sid in sample_ids])

    def __len__(self) -> int:
        return len(self.generators)

    def __getitem__(self, index: slice) -> "SampleRNG":
        """The generators of a sub-batch (``rng[lo:hi]``), for methods that chunk a batch."""
        if not isinstance(index, slice):
            raise TypeError("SampleRNG is indexed by slices (rng[lo:hi])")
        return SampleRNG(self.generators[index])

    def select(self, indices: Sequence[int]) -> "SampleRNG":
        """The generators of the images at ``indices`` (a sub-batch picked by index)."""
        return SampleRNG([self.generators[int(i)] for i in indices])

    def randn(self, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``[B, *shape]`` standard normal draws, row ``i`` from generator ``i`` (on its device)."""
        return torch.stack([torch.randn(shape, generator=g, device=self.device, dtype=dtype)
                            for g in self.generators])

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample standard normal draws shaped like ``x`` (``[B, ...]``, B = ``len(self)``)."""
        if x.shape[0] != len(self):
            raise InputError(f"batch of {x.shape[0]} images but {len(self)} per-sample generators")
        return self.randn(*x.shape[1:], dtype=x.dtype)

    def rand(self, *shape: int) -> torch.Tensor:
        """``[B, *shape]`` uniform ``[0, 1)`` draws, row ``i`` from generator ``i``."""
        return torch.stack([torch.rand(shape, generator=g, device=self.device) for g in self.generators])
