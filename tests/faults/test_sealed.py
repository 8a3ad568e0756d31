"""Fault battery (issue 21, item 1): a method cannot reach the ground truth.

Planted plugins (entry points, so sealed by default) try what the issue's battery did on
``fee617c``: walking the caller's frames for ``original`` (or any tensor that looks like the
ground truth: the observation's known pixels and something in its holes), scanning
``gc.get_objects()`` for such a tensor, and doing the work in the untimed warm-up call, then
answering the timed call from a cache keyed by the input. Each is the honest method of the
same module plus its cheat, and counts in a counter (``found`` / ``cache_hits``) whether the
cheat worked. Sealed, they find nothing, score exactly what the honest copy scores (the
assertions are on outputs, never on timings), and their draws are those of an unsealed run.
With ``--no-sealed`` the frame and ``gc`` cheats do find the ground truth (the planted
plugins are real attackers); the warm-up cheat is defeated in both modes, because the
warm-up observation is synthetic.
"""

from __future__ import annotations

import os

import pytest

PLUGINS = '''
import gc
import sys

import torch

from inpaintbench.api import Method, Restoration


def looks_like_truth(candidate, image, mask):
    """A float tensor of the batch's shape that has the observation's known pixels and something
    in the holes: the original."""
    if not isinstance(candidate, torch.Tensor) or candidate.shape != image.shape or candidate is image:
        return False
    if not candidate.is_floating_point() or candidate.device != image.device:
        return False
    known = ~mask.expand_as(image)
    return bool(torch.equal(candidate[known], image[known]) and candidate[~known].abs().sum() > 0)


class Honest(Method):
    """Fills each hole with the mean of its image's known pixels."""

    preserves_known = True

    def fill(self, image, mask):
        known = (~mask).float()
        mean = (image * known).sum(dim=(1, 2, 3), keepdim=True) / known.sum(dim=(1, 2, 3), keepdim=True)
        return torch.where(mask, mean.expand_as(image), image)

    def inpaint(self, image, mask, *, rng):
        return Restoration(self.fill(image, mask), {"found": 0.0})


class FrameWalker(Honest):
    def inpaint(self, image, mask, *, rng):
        frame = sys._getframe().f_back
        while frame is not None:
            for name, value in list(frame.f_locals.items()):
                if (name == "original" and isinstance(value, torch.Tensor) and value.shape == image.shape) \\
                        or looks_like_truth(value, image, mask):
                    return Restoration(value.clone(), {"found": 1.0})
            frame = frame.f_back
        return super().inpaint(image, mask, rng=rng)


class GcScanner(Honest):
    def inpaint(self, image, mask, *, rng):
        for obj in gc.get_objects():
            if looks_like_truth(obj, image, mask):
                return Restoration(obj.clone(), {"found": 1.0})
        return super().inpaint(image, mask, rng=rng)


class WarmupCheater(Honest):
    """Computes in the first call (the untimed warm-up) and caches by input."""

    def __init__(self, **config):
        super().__init__(**config)
        self.cache = {}

    def inpaint(self, image, mask, *, rng):
        outputs, hits = [], []
        for i in range(image.shape[0]):
            key = (image[i].numpy().tobytes(), mask[i].numpy().tobytes())
            hits.append(1.0 if key in self.cache else 0.0)
            if key not in self.cache:
                self.cache[key] = self.fill(image[i:i + 1], mask[i:i + 1])
            outputs.append(self.cache[key])
        return Restoration(torch.cat(outputs), {"found": hits})


class Noisy(Method):
    """Draws its fill from the per-sample generators (seeds must cross into the sealed process)."""

    def inpaint(self, image, mask, *, rng):
        return torch.where(mask, rng.rand(*image.shape[1:]), image)
'''

CHEATS = ("frame-walker", "gc-scanner", "warmup-cheater")


def _install(ctx) -> None:
    ctx.install_plugins(PLUGINS, **{"honest": "faulty_plugin:Honest", "frame-walker": "faulty_plugin:FrameWalker",
                                    "gc-scanner": "faulty_plugin:GcScanner",
                                    "warmup-cheater": "faulty_plugin:WarmupCheater",
                                    "noisy": "faulty_plugin:Noisy"})


def _by_method(ctx, out) -> dict[str, dict[str, dict]]:
    """``{method: {sample id: record}}`` of the ok records of ``out``."""
    found: dict[str, dict[str, dict]] = {}
    for record in ctx.samples("ok", out / "results.jsonl"):
        found.setdefault(record["method"], {})[record["sample_id"]] = record
    return found


def test_planted_plugins_find_nothing_and_score_as_the_honest_copy(ctx):
    _install(ctx)
    code, _, err = ctx.run(methods=",".join(("honest", *CHEATS)), masks="box", n=2, batch=1)
    assert code == 0, err
    records = _by_method(ctx, ctx.out)
    honest = {sid: r["metrics"] for sid, r in records["honest"].items()}
    assert len(honest) == 2 and all(float(m["psnr"]) < float("inf") for m in honest.values())
    for cheat in CHEATS:
        assert {sid: r["metrics"] for sid, r in records[cheat].items()} == honest, cheat
        assert all(r["counters"]["found"] == 0.0 for r in records[cheat].values()), cheat


def test_unsealed_the_frame_and_gc_cheats_do_find_the_ground_truth(ctx):
    """Why sealing is needed: the same plugins in the harness's process score PSNR inf."""
    _install(ctx)
    code, _, err = ctx.run("--no-sealed", methods="honest,frame-walker,gc-scanner", masks="box", n=2, batch=1)
    assert code == 0, err
    records = _by_method(ctx, ctx.out)
    for cheat in ("frame-walker", "gc-scanner"):
        assert records[cheat] and all(r["counters"]["found"] == 1.0 and float(r["metrics"]["psnr"]) == float("inf")
                   for r in records[cheat].values()), cheat


@pytest.mark.parametrize("batch", [1, 2])
def test_sealed_draws_are_those_of_an_unsealed_run(ctx, batch):
    _install(ctx)
    runs = {}
    for flag in ("--sealed", "--no-sealed"):
        out = ctx.tmp / f"{flag}-{batch}"
        code, _, err = ctx.run(flag, methods="noisy", masks="box", n=2, batch=batch, out=out)
        assert code == 0, err
        runs[flag] = {sid: r["metrics"] for sid, r in _by_method(ctx, out)["noisy"].items()}
    assert runs["--sealed"] == runs["--no-sealed"] and len(runs["--sealed"]) == 2


def test_sealed_built_in_methods_give_the_unsealed_records(ctx):
    for flag in ("--sealed", "--no-sealed"):
        code, _, err = ctx.run(flag, methods="telea,zero-fill", masks="box", n=2, batch=2, out=ctx.tmp / flag)
        assert code == 0, err
    sealed, plain = (_by_method(ctx, ctx.tmp / flag) for flag in ("--sealed", "--no-sealed"))
    assert {m: {s: r["metrics"] for s, r in v.items()} for m, v in sealed.items()} == \
        {m: {s: r["metrics"] for s, r in v.items()} for m, v in plain.items()}


def test_a_call_timeout_works_with_a_tensorflow_method(ctx):
    """``gan`` (TensorFlow) under ``--call-timeout``: the forked worker of old hung; the sealed
    child comes from a fork server that never imported TensorFlow. Same records as without.
    The CLI runs in a subprocess, as a user runs it (importing TensorFlow into a pytest process
    that has loaded torch's triton crashes at import, sealed or not)."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed")
    runs = {}
    for name, extra in (("plain", []), ("timed", ["--call-timeout", "300"])):
        out = ctx.tmp / name
        done = subprocess.run([sys.executable, "-c", "import sys; from inpaintbench.cli import main; sys.exit(main())",
                               "run", "--methods", "gan", "--masks", "box", "--n-images", "2", "--batch-size", "2",
                               "--device", "cpu", "--out", str(out), "--no-report", "-q", *extra],
                              capture_output=True, text=True, timeout=600,
                              env={**os.environ, "INPAINTBENCH_LPIPS_WEIGHTS": str(ctx.tmp / "no-lpips")})  # offline
        assert done.returncode == 0, done.stderr[-2000:]
        runs[name] = {sid: r["metrics"] for sid, r in _by_method(ctx, out).get("gan", {}).items()}
    assert len(runs["timed"]) == 2 and runs["timed"] == runs["plain"]
