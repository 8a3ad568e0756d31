"""The sd-inpaint adapter: edge conversions, plumbing through a tiny random pipeline, refusals.

The pipeline built here has random weights: it checks shapes, seeding, settings and that the
raw output is returned, never inpainting quality (its output is never reported anywhere).
"""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.images import apply_mask  # noqa: E402
from inpaintbench.methods.diffusion.stable_diffusion import (  # noqa: E402
    DEFAULT_MODEL,
    StableDiffusionInpaint,
    from_pipeline_output,
    to_pipeline_image,
    to_pipeline_mask,
)

STEPS = 4  # scheduler steps of the tiny runs; strength 0.5 runs 2 of them


def _tiny_tokenizer(folder):
    """A CLIP BPE tokenizer over a four-entry vocabulary (no download needed)."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2, "a": 3}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"),
                         model_max_length=8)


@pytest.fixture(scope="module", autouse=True)
def one_intra_op_thread():
    """Run this module's tiny networks on one thread, restoring the setting afterwards.

    The layers here are so small that thread hand-offs dominate: on a busy 2-core machine a
    2-thread pipeline call measured ~8 s of wall time against ~0.3 s on one thread.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_pipe(tmp_path_factory):
    """A randomly initialised StableDiffusionInpaintPipeline (9-channel UNet, VAE factor 2)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    # Module construction draws from torch's global RNG; fork it so the test leaves it untouched.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        unet = UNet2DConditionModel(
            sample_size=8, in_channels=9, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=8, attention_head_dim=2, norm_num_groups=4,
        )
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, block_out_channels=(8, 8), latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
            layers_per_block=1, norm_num_groups=4,
        )
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=4, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
            max_position_embeddings=8, bos_token_id=0, eos_token_id=1, pad_token_id=1,
        ))
    pipe = StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=_tiny_tokenizer(tmp_path_factory.mktemp("tok")),
        unet=unet, scheduler=DDIMScheduler(steps_offset=1), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipe


def _method(pipe, **config):
    settings = {"num_inference_steps": STEPS, "guidance_scale": 2.0, "resolution": 16, "prompt": "a", **config}
    return StableDiffusionInpaint.from_pipeline(pipe, **settings)


def _inputs(channels: int, size: int, batch: int = 2):
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(batch, channels, size, size, generator=gen)
    mask = torch.zeros(batch, 1, size, size, dtype=torch.bool)
    mask[:, :, size // 4: size // 2, size // 4: 3 * size // 4] = True
    return apply_mask(image, mask), mask


def _call(method, image, mask, seed=0):
    rng = SampleRNG.for_samples(seed, sample_ids=[str(i) for i in range(image.shape[0])])
    return method.inpaint(image, mask, rng=rng)


def _run(method, image, mask, seed=0):
    return _call(method, image, mask, seed).image


# ---- edge conversions (no pipeline) ---------------------------------------------------------

def test_mask_polarity_matches_diffusers_mask_processor(tiny_pipe):
    """Our True = hole becomes 1 = repaint, and diffusers' own mask processor keeps it so."""
    mask = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    mask[..., 3:9, 5:12] = True
    converted = to_pipeline_mask(mask, (16, 16))
    assert converted.dtype == torch.float32
    assert torch.equal(converted, mask.float())
    processed = tiny_pipe.mask_processor.preprocess(converted.clone(), height=16, width=16)
    assert torch.equal(processed, mask.float())
    # The pipeline keeps the pixels where mask < 0.5: exactly our known pixels.
    assert torch.equal(processed < 0.5, ~mask)


def test_mask_resize_marks_every_pixel_touching_a_hole():
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    mask[0, 0, 2, 5] = True
    up = to_pipeline_mask(mask, (16, 16))  # integer factor: exactly the nearest-neighbour copy
    assert torch.equal(up, mask.float().repeat_interleave(2, -2).repeat_interleave(2, -1))
    down = to_pipeline_mask(mask, (4, 4))  # one hole pixel -> its whole 2x2 cell is repainted
    expected = torch.zeros(1, 1, 4, 4)
    expected[0, 0, 1, 2] = 1.0
    assert torch.equal(down, expected)


def test_grayscale_goes_to_rgb_and_back():
    gray = torch.rand(2, 1, 8, 8)
    rgb = to_pipeline_image(gray, (8, 8))
    assert rgb.shape == (2, 3, 8, 8)
    assert all(torch.equal(rgb[:, i: i + 1], gray) for i in range(3))
    torch.testing.assert_close(from_pipeline_output(rgb, (8, 8), channels=1), gray, rtol=0, atol=1e-7)
    back = from_pipeline_output(to_pipeline_image(gray, (16, 16)), (8, 8), channels=1)
    assert back.shape == gray.shape and back.min() >= 0 and back.max() <= 1


def test_settings_are_checked_before_anything_loads(tiny_pipe):
    with pytest.raises(InputError, match=r"0 denoising steps.*strength >= 0.25"):
        _method(tiny_pipe, strength=0.2)  # int(4 * 0.2) = 0: diffusers would refuse
    with pytest.raises(InputError, match="strength must lie in"):
        _method(tiny_pipe, strength=0.0)
    with pytest.raises(InputError, match="multiple of 8"):
        _method(tiny_pipe, resolution=20)
    with pytest.raises(InputError, match="dtype"):
        _method(tiny_pipe, dtype="bfloat16")


# ---- plumbing through the tiny pipeline ------------------------------------------------------

def test_grayscale_resized_output_shape_dtype_range_and_nfe(tiny_pipe):
    method = _method(tiny_pipe, strength=0.5)  # 28 px in, 16 px working size, 28 px out
    image, mask = _inputs(channels=1, size=28, batch=1)
    result = _call(method, image, mask)
    out = result.image
    assert out.shape == image.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    assert result.stats == {"nfe": 4.0}  # 2 steps x 2 (classifier-free guidance)
    assert method.config["model"] == "in-memory pipeline"


def test_rgb_native_size_is_deterministic_not_composited_and_strength_matters(tiny_pipe):
    image, mask = _inputs(channels=3, size=16)
    full = _method(tiny_pipe, strength=1.0, resolution=None, guidance_scale=1.0)
    first_result = _call(full, image, mask, seed=5)
    first = first_result.image
    assert first.shape == image.shape and first.dtype == torch.float32
    assert first.min() >= 0 and first.max() <= 1
    assert first_result.stats == {"nfe": float(STEPS)}  # no guidance: one UNet call per step
    torch.testing.assert_close(_run(full, image, mask, seed=5), first, rtol=0, atol=0)
    assert not torch.equal(_run(full, image, mask, seed=6), first)
    # The raw output is returned: the known pixels are not pasted back.
    known = ~mask.expand_as(image)
    assert (first[known] - image[known]).abs().max() > 0.05
    half = _method(tiny_pipe, strength=0.5, resolution=None, guidance_scale=1.0)
    assert (_run(half, image, mask, seed=5) - first).abs().max() > 1e-3


def test_bad_inputs_are_refused(tiny_pipe):
    method = _method(tiny_pipe, resolution=None)
    image, mask = _inputs(channels=3, size=12)
    with pytest.raises(InputError, match="multiple of 8"):
        _run(method, image, mask)
    with pytest.raises(InputError, match="needs a mask"):
        _run(method, image, None)


# ---- refusals when weights are missing -------------------------------------------------------

def test_missing_local_folder_is_unavailable_with_the_path(tmp_path):
    missing = tmp_path / "no" / "sd-folder"
    with pytest.raises(MethodUnavailable, match="no folder at .*sd-folder.*save_pretrained"):
        StableDiffusionInpaint(model=str(missing))


def test_folder_without_a_pipeline_is_unavailable(tmp_path):
    with pytest.raises(MethodUnavailable, match="could not load .* from the folder"):
        StableDiffusionInpaint(model=str(tmp_path))


def test_uncached_hub_id_offline_is_unavailable_with_download_hint(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = "inpaintbench-tests/no-such-inpainting-model"
    with pytest.raises(MethodUnavailable, match=r"no-such-inpainting-model.*HF_HUB_OFFLINE.*hf download"):
        StableDiffusionInpaint(model=model)


def test_registry_lists_sd_inpaint_as_unavailable_offline(monkeypatch):
    from huggingface_hub import try_to_load_from_cache

    from inpaintbench.core.registry import method_registry

    if isinstance(try_to_load_from_cache(DEFAULT_MODEL, "model_index.json"), str):
        pytest.skip(f"{DEFAULT_MODEL} is in the local Hugging Face cache: it would load")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ok, reason = method_registry().availability("sd-inpaint")
    assert not ok
    assert DEFAULT_MODEL in reason and "hf download" in reason
