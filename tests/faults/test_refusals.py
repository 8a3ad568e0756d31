"""A learned model refuses data its weights were not trained on before anything runs (issue 21
item 7, issue 23): ``plan`` shows the refused (method, dataset) pairs, ``run`` names each once at
the start, writes no record for it and runs the rest; impossible sizes are one line, exit 2 (the
plan's refusal rows and the size refusals are rows 21-* of cases.toml).

The folder dataset reads images as RGB unless ``--channels 1``: the grey PNGs of
``ctx.grey_images`` are RGB data to a model.
"""

from __future__ import annotations

from collections import Counter


def _folder(ctx, *extra):
    ctx.grey_images(ctx.tmp / "imgs", n=2, size=28)
    return ["--datasets", "folder", "--data-root", str(ctx.tmp / "imgs"), "--size", "28", *extra]


def test_run_names_the_refused_pair_once_and_runs_the_rest(ctx):
    code, out, err = ctx.run(*_folder(ctx), methods="zero-fill,lama-ffc")
    assert code == 0 and "Traceback" not in err, err
    assert out.count("refused: lama-ffc on folder") == 1, out
    assert out.index("refused:") < out.index("wrote ")  # at the start, before the run's summary
    samples = ctx.samples()
    assert Counter((r["method"], r["status"]) for r in samples) == {("zero-fill", "ok"): 2}


def test_an_rgb_model_refuses_grey_data(ctx):
    code, out, err = ctx.run("--set", "lama-ffc.weights=lama-ffc-celeba32", methods="zero-fill,lama-ffc")
    assert code == 0, err
    assert "refused: lama-ffc on mnist-sample" in out and "trained on RGB images, the data is grey" in out
    assert {r["method"] for r in ctx.samples()} == {"zero-fill"}


def test_a_diffusion_prior_refuses_another_size_and_a_convolutional_model_runs(ctx):
    ctx.grey_images(ctx.tmp / "imgs", n=2, size=32)
    code, out, err = ctx.run("--datasets", "folder", "--data-root", ctx.tmp / "imgs", "--size", "32", "--channels", "1",
                             methods="repaint,lama-ffc")
    assert code == 0, err
    assert "refused: repaint on folder" in out and "trained on 28x28 images" in out, out
    assert "refused: lama-ffc" not in out  # fully convolutional: declares that it runs at 32 px
    assert Counter((r["method"], r["status"]) for r in ctx.samples()) == {("lama-ffc", "ok"): 2}


def test_when_every_pair_refuses_nothing_runs(ctx):
    code, out, err = ctx.run(*_folder(ctx), methods="lama-ffc")
    ctx.one_error(code, err, "no method of suite", "lama-ffc on folder", "grey")
    assert not ctx.out.exists()


def test_the_refusal_says_what_differs():
    from inpaintbench.core.method import trained_shape_refusal

    assert trained_shape_refusal("m", (1, 28, 28), (1, 28, 28)) is None
    assert "grey images, the data is RGB; x" in trained_shape_refusal("m", (1, 28, 28), (3, 28, 28), hint="x")
    assert "trained on 32x32 images" in trained_shape_refusal("m", (3, 32, 32), (3, 256, 256))
    assert trained_shape_refusal("m", (3, 32, 32), (3, 256, 256), any_size=True) is None
    assert "divisible by 4" in trained_shape_refusal("m", (3, 32, 32), (3, 30, 30), any_size=True, multiple=4)
