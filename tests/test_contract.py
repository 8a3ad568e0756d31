"""The contract every registered method must honour, parametrized over the whole registry.

A method that cannot load here (missing extra or weights) is skipped with its reason;
everything else runs on four real MNIST digits with its entry's ``tiny`` overrides.
"""

from __future__ import annotations

import pytest
import torch

from inpaintbench.api import MethodUnavailable, apply_mask
from inpaintbench.registry import method_registry
from inpaintbench.seeding import make_generator

# Super-resolution methods have their own task and contract (tests/test_super_resolution.py).
INPAINTERS = [
    name for name in method_registry().names()
    if method_registry().entry(name).group != "super-resolution"
]


@pytest.fixture(scope="module")
def built() -> dict:
    return {}


def _method(name: str, cache: dict):
    if name not in cache:
        entry = method_registry().entry(name)
        try:
            cache[name] = method_registry().create(name, **entry.tiny)
        except MethodUnavailable as err:
            cache[name] = err
    if isinstance(cache[name], MethodUnavailable):
        pytest.skip(f"{name} unavailable here: {cache[name]}")
    return cache[name]


def _call(method, image, mask, seed=0):
    return method.inpaint(apply_mask(image, mask), None if method.blind else mask,
                          generator=make_generator(seed, "contract"))


@pytest.mark.parametrize("name", INPAINTERS)
def test_output_shape_dtype_range(name, built, digits, box_mask):
    method = _method(name, built)
    out = _call(method, digits, box_mask)
    assert out.shape == digits.shape
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    stats = method.call_stats()
    assert all(isinstance(v, (int, float)) for v in stats.values())


@pytest.mark.parametrize("name", INPAINTERS)
def test_same_seed_same_output(name, built, digits, box_mask):
    method = _method(name, built)
    torch.testing.assert_close(_call(method, digits, box_mask, seed=3), _call(method, digits, box_mask, seed=3),
                               rtol=0, atol=0)


@pytest.mark.parametrize("name", INPAINTERS)
def test_no_leak_from_ground_truth_in_holes(name, built, digits, box_mask):
    """Changing the ground truth inside the holes must change nothing: the method never sees it."""
    method = _method(name, built)
    tampered = torch.where(box_mask, 1.0 - digits, digits)
    torch.testing.assert_close(_call(method, digits, box_mask), _call(method, tampered, box_mask), rtol=0, atol=0)


@pytest.mark.parametrize("name", INPAINTERS)
def test_known_pixels_preserved_when_promised(name, built, digits, box_mask):
    method = _method(name, built)
    if not method.preserves_known:
        pytest.skip(f"{name} does not promise to keep known pixels (its change is measured instead)")
    out = _call(method, digits, box_mask)
    known = ~box_mask.expand_as(digits)
    assert torch.equal(out[known], digits[known])


@pytest.mark.parametrize("name", INPAINTERS)
def test_fills_the_hole_better_than_nothing_or_says_why(name, built, digits, box_mask):
    """Sanity: every non-floor method puts something other than zeros into the hole."""
    method = _method(name, built)
    if name == "zero-fill":
        pytest.skip("zero-fill is the floor: its hole stays 0 by definition")
    out = _call(method, digits, box_mask)
    assert out[box_mask.expand_as(out)].abs().sum() > 0
