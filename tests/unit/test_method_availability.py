"""``check_available``: the cheap availability answer ``inpaintbench list methods --check`` asks
every built-in method for (issue 23, item 5).

* each refusal is one line naming what is missing (a weights folder, a file in it, a package,
  a Hub id not in the cache, an environment variable);
* the checks import neither TensorFlow nor diffusers (that is what makes listing fast);
* the check agrees with building: for every built-in method, available iff ``create()``
  succeeds here (slow: it builds every method, ~1-2 min on a busy 2-core machine).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.registry import method_registry

SHARED_WEIGHTS = Path(__file__).resolve().parents[2].parent / "shared" / "weights"


def _unavailable(check, **options) -> str:
    """The reason ``check(**options)`` gives (it must refuse with MethodUnavailable)."""
    with pytest.raises(MethodUnavailable) as info:
        check(**options)
    return str(info.value)


def _hide_package(monkeypatch, name: str) -> None:
    """Make ``importlib.util.find_spec(name)`` say the package is not installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda mod, *a, **k: None if mod == name else real(mod, *a, **k))


# ------------------------------------------------------------------ diffusion


def test_diffusion_missing_weights_folder_is_named(tmp_path):
    from inpaintbench.methods.diffusion.repaint import RePaint

    missing = tmp_path / "no-prior"
    reason = _unavailable(RePaint.check_available, num_steps=25, weights=str(missing))
    assert f"{missing} does not exist" in reason and "\n" not in reason


def test_diffusion_folder_without_weights_file_names_the_file(tmp_path):
    from inpaintbench.methods.diffusion.ilvr import ILVRInpaint

    (tmp_path / "config.json").write_text("{}")
    reason = _unavailable(ILVRInpaint.check_available, model=str(tmp_path))
    assert str(tmp_path / "diffusion_pytorch_model.safetensors") in reason


def test_diffusion_default_prior_and_committed_name_are_available():
    from inpaintbench.methods.diffusion.repaint import RePaint
    from inpaintbench.methods import WEIGHTS_DIR

    RePaint.check_available(num_steps=25)
    if (WEIGHTS_DIR / "ddpm-celeba32").is_dir():
        RePaint.check_available(num_steps=25, weights="ddpm-celeba32")


def test_diffusion_hub_id_not_in_cache_is_named():
    from inpaintbench.methods.diffusion.solvers.ddnm import DDNM

    reason = _unavailable(DDNM.check_available, num_steps=10, weights="nobody-here/no-such-ddpm")
    assert "'nobody-here/no-such-ddpm' are not in the Hugging Face cache" in reason
    assert "huggingface-cli download nobody-here/no-such-ddpm" in reason


def test_diffusion_adm_checkpoint_missing_and_bad_pairings(tmp_path):
    from inpaintbench.methods.diffusion.repaint import RePaint

    pt = tmp_path / "celeba256.pt"
    reason = _unavailable(RePaint.check_available, num_steps=25, model=str(pt), adm="repaint-celeba256")
    assert f"ADM checkpoint {pt} not found" in reason
    with pytest.raises(InputError, match="give adm= its architecture"):
        RePaint.check_available(num_steps=25, model=str(pt))
    with pytest.raises(InputError, match="give model= the .pt file"):
        RePaint.check_available(num_steps=25, adm="repaint-celeba256")
    with pytest.raises(InputError, match="neither an ADM preset"):
        RePaint.check_available(num_steps=25, model=str(pt), adm="no-such-preset")


def test_diffusion_without_diffusers_is_unavailable(monkeypatch):
    from inpaintbench.methods.diffusion.repaint import RePaint

    _hide_package(monkeypatch, "diffusers")
    reason = _unavailable(RePaint.check_available, num_steps=25)
    assert "needs diffusers" in reason and ".[diffusion]" in reason


def test_predicted_mask_ilvr_names_the_missing_predictor_file(tmp_path):
    from inpaintbench.methods.diffusion.ilvr import PredictedMaskILVR

    reason = _unavailable(PredictedMaskILVR.check_available, predictor_weights=str(tmp_path))
    assert f"mask predictor weights not found: {tmp_path / 'config.json'}" in reason
    PredictedMaskILVR.check_available()  # the committed prior and predictor


def test_sd_inpaint_folder_and_uncached_hub_id(tmp_path):
    from inpaintbench.methods.diffusion.stable_diffusion import StableDiffusionInpaint

    reason = _unavailable(StableDiffusionInpaint.check_available, model=str(tmp_path))
    assert f"the folder {tmp_path} has no model_index.json" in reason
    reason = _unavailable(StableDiffusionInpaint.check_available, model="nobody-here/no-such-sd")
    assert "'nobody-here/no-such-sd' is not in the Hugging Face cache" in reason


# ------------------------------------------------------------------ feed-forward


def test_lama_ffc_names_the_missing_file(tmp_path):
    from inpaintbench.methods.feedforward.lama import LamaFFC

    reason = _unavailable(LamaFFC.check_available, weights=str(tmp_path))
    assert f"LaMa-FFC weights not found: {tmp_path / 'config.json'} does not exist" in reason
    LamaFFC.check_available()


def test_tf_gan_names_missing_file_tensorflow_and_backend(tmp_path, monkeypatch):
    from inpaintbench.methods.feedforward.gan_tf import GANInpainter

    reason = _unavailable(GANInpainter.check_available, weights=str(tmp_path))
    assert f"GAN weights file {tmp_path / 'generator.json'} is missing" in reason
    with pytest.raises(InputError, match="are for variant 'conv', not 'fc'"):
        GANInpainter.check_available(variant="fc", weights="gan-mnist")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert "KERAS_BACKEND selects 'jax'" in _unavailable(GANInpainter.check_available)
    monkeypatch.delenv("KERAS_BACKEND")
    _hide_package(monkeypatch, "tensorflow")
    reason = _unavailable(GANInpainter.check_available)
    assert "needs TensorFlow, which is not installed" in reason and ".[tf]" in reason


def test_sr_networks_name_the_variable_and_the_folder(tmp_path, monkeypatch):
    from inpaintbench.methods.feedforward.sr_networks import SRNetworkUpscale

    monkeypatch.delenv("INPAINTBENCH_SR_WEIGHTS", raising=False)
    assert "set $INPAINTBENCH_SR_WEIGHTS" in _unavailable(SRNetworkUpscale.check_available, network="espcn")
    monkeypatch.setenv("INPAINTBENCH_SR_WEIGHTS", str(tmp_path))
    reason = _unavailable(SRNetworkUpscale.check_available, network="lapsrn")
    assert f"none of LapSRN_x2.pb, LapSRN_x4.pb, LapSRN_x8.pb is in {tmp_path}" in reason
    if (SHARED_WEIGHTS / "sr").is_dir():
        monkeypatch.setenv("INPAINTBENCH_SR_WEIGHTS", str(SHARED_WEIGHTS / "sr"))
        for network in ("espcn", "fsrcnn", "lapsrn"):
            SRNetworkUpscale.check_available(network=network)


# ------------------------------------------------------------------ wrappers and classical


def test_erosion_names_its_inner_methods_reason(tmp_path):
    from inpaintbench.methods.wrappers.erosion import IterativeErosion

    reason = _unavailable(IterativeErosion.check_available, inner="lama-ffc",
                          inner_config={"weights": str(tmp_path)})
    assert reason.startswith("its inner method 'lama-ffc' is unavailable: LaMa-FFC weights not found")
    with pytest.raises(InputError, match="'ilvr-blind' is blind"):
        IterativeErosion.check_available(inner="ilvr-blind")


def test_sr_inpainting_names_its_inpainter_and_refuses_non_inpainters(tmp_path):
    from inpaintbench.methods.wrappers.super_resolution import InpaintingUpscale

    reason = _unavailable(InpaintingUpscale.check_available, inpainter="repaint",
                          inpainter_config={"weights": str(tmp_path / "gone")})
    assert reason.startswith("its inpainter 'repaint' is unavailable: DDPM weights not found")
    with pytest.raises(InputError, match="not an inpainter"):
        InpaintingUpscale.check_available(inpainter="sr-bicubic")


@pytest.mark.parametrize("name, package", [("telea", "cv2"), ("biharmonic", "skimage")])
def test_classical_without_their_package(monkeypatch, name, package):
    _hide_package(monkeypatch, package)
    ok, reason = method_registry().availability(name)
    assert not ok and f"needs {package}, which is not installed" in reason
    with pytest.raises(MethodUnavailable):  # building refuses the same way, before any call
        method_registry().create(name)


# ------------------------------------------------------------------ the listing


def test_listing_asks_builtins_here_and_plugins_in_a_child(monkeypatch):
    from inpaintbench.cli import listing
    from inpaintbench.core import probing
    from inpaintbench.core.registry import Entry, Registry

    sent = []
    monkeypatch.setattr(probing, "probe_in_children",
                        lambda kind, entries, children=2: sent.extend(entries) or {n: (True, "") for n, *_ in entries})
    base = method_registry()
    registry = Registry("method", [base.entry("zero-fill"), base.entry("gan"),
                                   Entry("outsider", "some_plugin:Method")])
    found = listing.availability(registry)
    assert [name for name, *_ in sent] == ["outsider"]
    assert found["zero-fill"] == (True, "") and found["gan"] == (True, "")


def test_checks_import_neither_tensorflow_nor_diffusers():
    code = ("import sys; from inpaintbench.core.registry import method_registry; r = method_registry(); "
            "[r.availability(n) for n in r.names()]; "
            "print([m for m in ('tensorflow', 'diffusers', 'transformers', 'keras') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_check_agrees_with_building_for_every_builtin(monkeypatch):
    """Available iff ``create()`` succeeds, for every built-in method, here (the SR networks
    also with ``$INPAINTBENCH_SR_WEIGHTS`` at ../shared/weights/sr when it is present)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # building sd-inpaint must not try the network
    registry = method_registry()
    names = [e.name for e in registry._entries.values() if isinstance(e.target, str)
             and e.target.startswith("inpaintbench.")]
    disagreements = []

    def compare(name):
        ok, reason = registry.availability(name)
        try:
            registry.create(name)
            built, error = True, ""
        except Exception as err:  # noqa: BLE001 - any failure to build is "not available"
            built, error = False, f"{type(err).__name__}: {err}"
        if ok != built:
            disagreements.append(json.dumps({"name": name, "check": reason, "build": error})[:400])

    for name in names:
        compare(name)
    if (SHARED_WEIGHTS / "sr").is_dir():
        monkeypatch.setenv("INPAINTBENCH_SR_WEIGHTS", str(SHARED_WEIGHTS / "sr"))
        for name in ("sr-espcn", "sr-fsrcnn", "sr-lapsrn"):
            compare(name)
    assert not disagreements, "\n".join(disagreements)
