"""The effective configuration includes the constructor's arguments, also when a plugin's
constructor takes explicit options and calls ``super().__init__()`` without them (issue 21)."""

from __future__ import annotations

import torch

from inpaintbench.core.identity import method_identity
from inpaintbench.core.method import Method


class Smoother(Method):
    """A plugin written the natural way: explicit options, a bare ``super().__init__()``."""

    def __init__(self, iterations: int = 1, strength: float = 0.5, **extra):
        super().__init__()
        self.iterations, self.strength = iterations, strength

    def inpaint(self, image, mask, *, rng):
        return image


class Wrapper(Smoother):
    """A subclass calling its parent with options: recorded once, by the outermost constructor."""

    def __init__(self, inner_weight: float = 1.0, **options):
        super().__init__(**options)


def test_a_changed_constructor_argument_changes_the_hash():
    default = method_identity("smoother", Smoother())
    assert default[0] == {"name": "smoother"}  # options at their defaults are not recorded
    two = method_identity("smoother", Smoother(iterations=2))
    assert two[0] == {"name": "smoother", "iterations": 2} and two[1] != default[1]
    assert method_identity("smoother", Smoother(2))[1] == two[1]  # positional or keyword: one config
    assert method_identity("smoother", Smoother(flavour="x"))[0]["flavour"] == "x"  # extra keywords too


def test_the_outermost_constructor_records_every_level():
    config = method_identity("w", Wrapper(inner_weight=2.0, strength=0.25))[0]
    assert config == {"name": "w", "inner_weight": 2.0, "strength": 0.25}
    # an option passed on to the parent at the parent's default is not recorded (config rules
    # that keep old hashes rely on it: DiffusionMethod's chain = "core")
    assert method_identity("w", Wrapper(strength=0.5))[0] == {"name": "w"}


def test_options_a_method_records_itself_are_left_as_it_records_them():
    class Explicit(Method):
        def __init__(self, radius: float = 3.0):
            super().__init__(radius=float(radius))

        def inpaint(self, image, mask, *, rng):
            return image

    assert Explicit(radius=5).config == {"radius": 5.0}
    assert Explicit().config == {"radius": 3.0}


def test_excluded_arguments_and_objects_are_not_recorded():
    class WithModel(Method):
        config_excludes = ("model",)

        def __init__(self, model=None, scale: float = 1.0):
            super().__init__()

        def inpaint(self, image, mask, *, rng):
            return image

    assert WithModel(model=torch.nn.Linear(2, 2), scale=2.0).config == {"scale": 2.0}
