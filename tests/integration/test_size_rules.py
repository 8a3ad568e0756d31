"""A method trained at one resolution refuses other image sizes before anything runs (issue 24):
the plan asks its ``accepts`` and, when no method takes the data, the run stops with one line
naming the size to pass."""

from __future__ import annotations

import inpaintbench.harness.runner as runner_module
from inpaintbench.cli import main
from inpaintbench.core.method import Method
from inpaintbench.core.registry import Entry, Registry


class FixedSize(Method):
    """Takes only ``resolution x resolution`` images, like MI-GAN, CoModGAN and MAT."""

    def __init__(self, resolution: int = 32):
        super().__init__(resolution=resolution)

    def accepts(self, channels: int, height: int, width: int):
        resolution = self.config["resolution"]
        if (height, width) != (resolution, resolution):
            return f"fixed needs {resolution}x{resolution} images, this dataset is {height}x{width}: pass --size {resolution}"
        return None

    def inpaint(self, image, mask, *, rng):
        return image


def test_a_size_the_method_cannot_take_stops_the_run_in_one_line(tmp_path, capsys, monkeypatch):
    registry = Registry("method", [Entry("fixed", FixedSize)])
    monkeypatch.setattr(runner_module, "method_registry", lambda: registry)
    out = tmp_path / "out"
    # the embedded digits are 28x28
    assert main(["run", "--methods", "fixed", "--masks", "box", "--n-images", "2", "--out", str(out), "-q",
                 "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fixed on mnist-sample" in err[0] and "pass --size 32" in err[0]
    assert not out.exists()
    assert runner_module.refused_pairs({"fixed": FixedSize(resolution=28)}, {"mnist-sample": (1, 28, 28)}) == {}
