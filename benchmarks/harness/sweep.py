"""Parameter sweeps: one method parameter and/or one mask parameter, run like any suite.

A sweep is an ordinary suite whose method (or mask) specs differ in one value, so its records
resume like any run's; the report (:mod:`inpaintbench.report.sweep`) reads the records' ``config.<param>`` / ``mask_config.<param>``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Sequence

from inpaintbench.core.errors import InputError
from inpaintbench.harness.suite import Spec, Suite


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (``0.5``, ``true``, ``[1, 2]``), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=false"]`` -> ``{"a": 1, "b": False}``; a clear error for anything else."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def sweep_suite(base: Suite, *, methods: Sequence[str], param: str | None, values: Sequence[Any],
                method_options: dict[str, Any], mask: str, mask_param: str | None,
                mask_values: Sequence[Any]) -> Suite:
    """The suite of a sweep: every method x every ``param`` value, every mask x ``mask_param`` value.

    Labels carry the fixed options and the swept value (``ddpm-paste{paste_known=False}[strength=0.5]``,
    ``disc[radius_fraction=0.2]``), so sweeps with different fixed options can share one
    results folder and still be told apart in the plots.
    """
    if param is not None and not values:
        raise InputError(f"--param {param} needs --values")
    if mask_param is not None and not mask_values:
        raise InputError(f"--mask-param {mask_param} needs --mask-values")
    if mask_param is not None and base.task != "inpainting":
        raise InputError(f"suite {base.name!r} is a {base.task} suite: it has no masks to sweep; sweep a method "
                         "option with --param")
    method_specs = []
    fixed = "{" + ",".join(f"{k}={v}" for k, v in sorted(method_options.items())) + "}" if method_options else ""
    for name in methods:
        for value in (values if param is not None else [None]):
            config = dict(method_options)
            label = name + fixed
            if param is not None:
                config[param] = value
                label = f"{label}[{param}={value}]"
            method_specs.append(Spec(name, label, config))
    mask_specs = [Spec(mask, mask if mask_param is None else f"{mask}[{mask_param}={v}]",
                       {} if mask_param is None else {mask_param: v})
                  for v in (mask_values if mask_param is not None else [None])]
    # Every other field of the base suite (task, scales, seed, sizes, device...) is kept:
    # a sweep of the super-resolution suite stays a super-resolution run.
    masks = base.masks if base.task == "super-resolution" else tuple(mask_specs)
    return replace(base, methods=tuple(method_specs), masks=masks)
