"""What every case of the fault battery works with (issue 14).

A case sets up one bad input in ``tmp_path``, runs the CLI in-process
(:func:`inpaintbench.cli.main`) or the API, and checks what a user must be able to rely on: the
exit status (2 for bad input, 130 for an interrupt, 0 when the run goes on); exactly one
``error: ...`` line naming the problem and no traceback; nothing half-written; nothing executed
(the marker a malicious pickle would create does not exist); nothing lost or duplicated.

The cases of the shape "arguments (+ suite text, + files) -> exit status, error words, counts"
are rows of ``cases.toml``, run by ``test_cli_cases.py``; the cases that need code are plain
tests in the other modules of this folder. Both get the :class:`Ctx` of the ``ctx`` fixture:
test modules run with ``--import-mode=importlib`` and cannot import each other, so the shared
helpers are its methods.

Every case uses the embedded ``mnist-sample`` and the classical methods so that the battery
stays well under two minutes on two busy cores; LPIPS is kept offline (its automatic fallback
fails at once) so that no case waits on the network.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
import torch

from inpaintbench.cli import main
from inpaintbench.core.method import Method
from inpaintbench.core.registry import Entry, Registry, method_registry


# ----------------------------------------------------------------------------- test methods

class MaskZeroer(Method):
    """Clears its mask argument in place: a plugin cheating its way to the top."""

    def inpaint(self, image, mask, *, rng):
        mask.zero_()
        return image


class ImageScribbler(Method):
    """Writes into its image argument in place."""

    def inpaint(self, image, mask, *, rng):
        image.fill_(0.5)
        return image.clone()


class OutOfRange(Method):
    """Returns values up to 2.5: far outside [0, 1]."""

    def inpaint(self, image, mask, *, rng):
        return image + 1.5


class SlightlyOver(Method):
    """Within the stated tolerance: clipped, not an error."""

    def inpaint(self, image, mask, *, rng):
        return torch.full_like(image, 1.0 + 5e-4)


class NaNs(Method):
    """Returns NaN everywhere."""

    def inpaint(self, image, mask, *, rng):
        return torch.full_like(image, float("nan"))


class Staller(Method):
    """Never returns in any reasonable time."""

    def inpaint(self, image, mask, *, rng):
        time.sleep(120)
        return image


class Interrupter(Method):
    """Ctrl-C arrives during its third call (warm-up, batch 1, batch 2)."""

    def __init__(self, **config):
        super().__init__(**config)
        self.calls = 0

    def inpaint(self, image, mask, *, rng):
        self.calls += 1
        if self.calls == 3:
            raise KeyboardInterrupt
        return image


TEST_METHODS = {"mask-zeroer": MaskZeroer, "image-scribbler": ImageScribbler, "out-of-range": OutOfRange,
                "slightly-over": SlightlyOver, "nans": NaNs, "staller": Staller, "interrupter": Interrupter}


# ----------------------------------------------------------------------------- the context

SUITE = """
[run]
{run}

[[datasets]]
name = "mnist-sample"
{dataset}

[[masks]]
name = "{mask}"
{mask_options}

[[methods]]
name = "{method}"
{method_options}
"""

BASE_RUN = {"seed": "0", "n_images": "2", "batch_size": "2", "device": '"cpu"', "n_examples": "2"}


class Ctx:
    """What a case works with: a temporary folder, captured output, monkeypatch, and the
    battery's helpers (running the CLI, reading records, making input files, checking output)."""

    test_methods = TEST_METHODS

    def __init__(self, tmp: Path, capsys, monkeypatch):
        self.tmp, self.capsys, self.monkeypatch = tmp, capsys, monkeypatch
        self.out = tmp / "out"
        self.results = self.out / "results.jsonl"
        self.marker = tmp / "PWNED"  # what a malicious pickle creates when a loader runs it
        self.finalizers: list = []  # run at teardown, last first (e.g. a folder made writable again)

    # -------------------------------------------------------------------- running

    def cli(self, *argv) -> tuple[int, str, str]:
        """``inpaintbench ARGV`` in this process: (exit status, stdout, stderr). argparse's
        own exits (``--help``, a bad flag) come back as their status too."""
        self.capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code
        cap = self.capsys.readouterr()
        return code, cap.out, cap.err

    def run(self, *extra, methods="zero-fill", masks="box", n=2, batch=2, out=None) -> tuple[int, str, str]:
        """``inpaintbench run`` on the embedded MNIST sample, on the CPU, without a report."""
        return self.cli("run", "--datasets", "mnist-sample", "--methods", methods, "--masks", masks, "--n-images", n,
                        "--batch-size", batch,
                        "--device", "cpu", "--out", out or self.out, "--no-report", "-q", *extra)

    def run_suite_file(self, text: str, *extra, out=None) -> tuple[int, str, str]:
        """``inpaintbench run --suite`` on ``text`` written to ``tmp/suite.toml``."""
        path = self.tmp / "suite.toml"
        path.write_text(text)
        return self.cli("run", "--suite", path, "--out", out or self.out, "--no-report", "-q", *extra)

    def use_test_methods(self) -> None:
        """Make the :data:`TEST_METHODS` known to ``run`` and ``list`` beside the built-ins."""
        base = method_registry()
        entries = [base.entry(n) for n in base.names()]
        entries += [Entry(name, cls, group="test") for name, cls in TEST_METHODS.items()]
        self.use_registry(Registry("method", entries))

    def use_registry(self, registry: Registry) -> None:
        """``run`` and ``list`` see ``registry`` as the method registry."""
        self.monkeypatch.setattr("inpaintbench.harness.runner.method_registry", lambda: registry)
        self.monkeypatch.setattr("inpaintbench.cli.listing.method_registry", lambda: registry)

    def install_plugins(self, module_source: str, **entry_points_by_name: str) -> None:
        """Entry points of the group ``inpaintbench.methods``; ``module_source`` becomes the
        importable module ``faulty_plugin``."""
        from inpaintbench.core import registry

        (self.tmp / "faulty_plugin.py").write_text(module_source)
        self.monkeypatch.syspath_prepend(str(self.tmp))
        # An earlier test's module of the same name must not answer for this one.
        self.monkeypatch.delitem(sys.modules, "faulty_plugin", raising=False)
        eps = [EntryPoint(name=n, value=v, group="inpaintbench.methods") for n, v in entry_points_by_name.items()]
        self.monkeypatch.setattr(registry, "entry_points",
                                 lambda group: eps if group == "inpaintbench.methods" else [])
        registry.method_registry.cache_clear()

    # -------------------------------------------------------------------- reading

    def records(self, path: Path | None = None) -> list[dict]:
        """Every record line of the results folder (or of one file), raw: duplicates show."""
        from inpaintbench.store.folder import raw_records

        return raw_records([path or self.out])

    def samples(self, status: str | None = None, path: Path | None = None) -> list[dict]:
        """The sample records (of one ``status`` when given)."""
        return [r for r in self.records(path) if r["kind"] == "sample" and (status is None or r["status"] == status)]

    def unit_files(self) -> list[Path]:
        """The unit files of the results folder, sorted."""
        return sorted((self.out / "units").glob("*.jsonl"))

    # -------------------------------------------------------------------- checking

    @staticmethod
    def one_error(code: int, err: str, *words: str, status: int = 2) -> str:
        """Assert exit ``status``, exactly one ``error:`` line holding every word (case
        ignored), no traceback; return that line."""
        assert code == status, err
        assert "Traceback" not in err, err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, err
        for word in words:
            assert word.lower() in errors[0].lower(), (word, errors[0])
        return errors[0]

    @staticmethod
    def warnings(err: str) -> list[str]:
        """The ``warning: ...`` lines of ``err``."""
        return [line for line in err.splitlines() if line.startswith("warning: ")]

    @staticmethod
    def no_tmp_files(root: Path) -> bool:
        """No temporary file (``*.tmp*``) anywhere under ``root``."""
        return not [p for p in root.rglob("*") if ".tmp" in p.name]

    @staticmethod
    def file_bytes(root: Path) -> dict[str, bytes]:
        """Every file under ``root`` (relative POSIX path) with its bytes."""
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    # -------------------------------------------------------------------- making inputs

    @staticmethod
    def suite(run: dict[str, str] | None = None, dataset: str = "", mask: str = "box", mask_options: str = "",
              method: str = "zero-fill", method_options: str = "", datasets: str | None = None) -> str:
        """A suite file's text: one dataset, mask family and method; ``run`` overrides [run]
        values (TOML literals); ``datasets`` replaces the whole ``[[datasets]]`` block."""
        values = {**BASE_RUN, **(run or {})}
        text = SUITE.format(run="\n".join(f"{k} = {v}" for k, v in values.items()), dataset=dataset, mask=mask,
                            mask_options=mask_options, method=method, method_options=method_options)
        if datasets is not None:
            text = text.replace('[[datasets]]\nname = "mnist-sample"\n', datasets)
        return text

    @staticmethod
    def save_png(path: Path, array: np.ndarray) -> Path:
        """``array`` (uint8 or uint16, [H, W] or [H, W, C]) as a PNG at ``path``."""
        from PIL import Image

        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path)
        return path

    def grey_images(self, folder: Path, n: int = 3, size: int = 28) -> Path:
        """``n`` random 8-bit grey ``size`` x ``size`` PNGs ``0.png`` ... in ``folder``."""
        rng = np.random.default_rng(0)
        for i in range(n):
            self.save_png(folder / f"{i}.png", (rng.random((size, size)) * 255).astype(np.uint8))
        return folder

    def mask_png(self, path: Path, white_fraction: float, size: int = 28) -> Path:
        """A mask file whose first ``white_fraction`` of rows are white (255), the rest black."""
        rows = round(white_fraction * size)
        array = np.zeros((size, size), dtype=np.uint8)
        array[:rows] = 255
        return self.save_png(path, array)


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture
def ctx(tmp_path, capsys, monkeypatch):
    """The context of one case, in its own ``tmp_path``."""
    context = Ctx(tmp_path, capsys, monkeypatch)
    yield context
    for finalizer in reversed(context.finalizers):
        finalizer()


@pytest.fixture(scope="session")
def setups():
    """The module ``setups.py`` beside this file (named setups and skip conditions); loaded by
    path because test modules under ``--import-mode=importlib`` cannot import it by name."""
    spec = importlib.util.spec_from_file_location("inpaintbench_fault_setups", Path(__file__).with_name("setups.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _quiet_and_offline(monkeypatch, tmp_path):
    """No case reaches the network, reads the user's LPIPS / Big LaMa settings or writes
    outside ``tmp_path``."""
    from inpaintbench.metrics import lpips_metric

    def offline(net):
        raise lpips_metric.LPIPSUnavailable(f"LPIPS ({net}) weights: offline in the fault battery")

    monkeypatch.setattr(lpips_metric, "_download_features", offline)
    for name in ("INPAINTBENCH_LPIPS_WEIGHTS", "INPAINTBENCH_BIG_LAMA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INPAINTBENCH_CACHE_DIR", str(tmp_path / "user-cache"))  # data hashes
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _clear_registry_cache():
    """A case that installs plugins leaves the cached method registry as it found it."""
    from inpaintbench.core import registry

    yield
    registry.method_registry.cache_clear()
