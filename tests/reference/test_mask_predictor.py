"""The blind hole predictor: network shapes, decision rule, IoU against hand-computed cases,
training through the shared loop, export/load round trip and the IoU command."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.images import Sample, apply_mask
from inpaintbench.methods.feedforward.mask_predictor import MaskPredictor
from inpaintbench.methods.feedforward.mask_predictor_eval import evaluate_mask_predictor, main, score_masks
from inpaintbench.methods.feedforward.mask_predictor_net import MaskPredictorUNet
from inpaintbench.methods.feedforward.mask_predictor_train import MaskPredictorTask, sample_mixed_masks
from inpaintbench.core.registry import mask_registry

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"



def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def always_hole_predictor() -> MaskPredictor:
    """A predictor whose probability is ~1 everywhere: it predicts exactly the zero pixels."""
    net = MaskPredictorUNet(1, (8, 8), 4)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.fill_(20.0)
    return MaskPredictor(net)


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Sample:
        return Sample(self.images[i], f"img-{i}")


def test_unet_output_shape_for_any_size():
    net = MaskPredictorUNet(3, (8, 16, 16), 4)
    assert net(torch.rand(2, 3, 30, 27)).shape == (2, 1, 30, 27)


def test_score_masks_hand_computed():
    true = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    predicted = torch.zeros_like(true)
    image = torch.zeros(2, 1, 4, 4)
    true[0, 0, 0, :] = True          # 4 hole pixels
    predicted[0, 0, 0, :2] = True    # 2 of them found ...
    predicted[0, 0, 3, 3] = True     # ... and 1 false alarm
    image[0, 0, 0, 0] = 0.5          # a hole pixel where zero fill is wrong (found)
    image[0, 0, 0, 3] = 0.7          # another (missed)
    scores = score_masks(predicted, true, image)
    torch.testing.assert_close(scores["iou"], torch.tensor([2 / 5, 1.0]))  # image 1: no hole, none predicted
    torch.testing.assert_close(scores["precision"], torch.tensor([2 / 3, 1.0]))
    torch.testing.assert_close(scores["recall"], torch.tensor([2 / 4, 1.0]))
    torch.testing.assert_close(scores["visible_recall"], torch.tensor([1 / 2, 1.0]))
    torch.testing.assert_close(scores["hole_fraction"], torch.tensor([4 / 16, 0.0]))


def test_score_masks_false_alarms_on_an_image_without_holes_give_iou_zero():
    true = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    predicted = true.clone()
    predicted[..., 0, 0] = True
    assert float(score_masks(predicted, true, torch.zeros(1, 1, 2, 2))["iou"]) == 0.0


def test_predict_only_marks_zero_pixels():
    predictor = always_hole_predictor()
    image = torch.rand(2, 1, 12, 12, generator=gen()) * 0.9 + 0.1
    hole = torch.zeros(2, 1, 12, 12, dtype=torch.bool)
    hole[:, :, 2:5, 3:9] = True
    assert torch.equal(predictor.predict(apply_mask(image, hole)), hole)


def test_threshold_must_be_a_probability():
    with pytest.raises(InputError, match="threshold"):
        MaskPredictor(MaskPredictorUNet(1, (8, 8), 4), threshold=1.5)


def test_evaluate_iou_against_hand_computed_values():
    """Zero-free images: the zero pixels are exactly the holes, IoU 1. Black images: every pixel
    is predicted a hole, IoU = hole fraction (1/2 for half and alternating lines on 28x28)."""
    predictor = always_hole_predictor()
    families = ["half", "alternating-lines", "box"]
    bright = ListDataset(torch.rand(6, 1, 28, 28, generator=gen()) * 0.5 + 0.5)
    assert evaluate_mask_predictor(predictor, bright, families, n=6, seed=0) == {f: 1.0 for f in families}
    black = ListDataset(torch.zeros(4, 1, 28, 28))
    ious = evaluate_mask_predictor(predictor, black, ["half", "alternating-lines"], n=4, seed=0)
    assert ious == pytest.approx({"half": 0.5, "alternating-lines": 0.5})


def test_evaluate_rejects_n_larger_than_the_dataset():
    with pytest.raises(InputError, match="n must lie in"):
        evaluate_mask_predictor(always_hole_predictor(), ListDataset(torch.zeros(3, 1, 8, 8)), ["half"], n=4, seed=0)


def test_mixed_masks_come_from_the_families_and_are_seeded():
    families = {name: mask_registry().create(name) for name in ("half", "alternating-lines")}
    masks = sample_mixed_masks(families, 16, 28, 28, generator=gen(7))
    expected = [f(1, 28, 28, generator=gen())[0] for f in families.values()]
    which = [next(i for i, e in enumerate(expected) if torch.equal(m, e)) for m in masks]
    assert set(which) == {0, 1}  # both families drawn, and every mask is one of them
    assert torch.equal(masks, sample_mixed_masks(families, 16, 28, 28, generator=gen(7)))


def test_training_through_the_shared_loop_learns_and_round_trips(tmp_path):
    """Zero-free images with one fixed mask family: the holes are fully visible, so a few dozen
    steps must cut the loss well below its start; the export loads back to the same network."""
    from inpaintbench.methods.training.loop import TrainConfig, train

    images = torch.rand(64, 1, 16, 16, generator=gen()) * 0.8 + 0.2
    task = MaskPredictorTask(families=["half", "box"], channels=(8, 8), norm_groups=4, init_seed=0)
    config = TrainConfig(steps=40, batch_size=16, lr=5e-3, ema_decay=None, log_every=5, checkpoint_every=40)
    final = train(task, ListDataset(images), config, tmp_path / "run")
    import json

    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "losses.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.5 * losses[0]
    loaded = MaskPredictor.from_pretrained(final)
    probe = apply_mask(images[:4], torch.zeros(4, 1, 16, 16, dtype=torch.bool))
    torch.testing.assert_close(loaded.net(probe), task.net.eval()(probe))
    ious = evaluate_mask_predictor(loaded, ListDataset(images), ["half"], n=16, seed=1)
    assert ious["half"] > 0.9


def test_missing_weights_raise_method_unavailable_naming_the_file(tmp_path):
    with pytest.raises(MethodUnavailable, match="config.json does not exist"):
        MaskPredictor.from_pretrained(tmp_path)


@pytest.mark.needs_shared
def test_iou_command_writes_a_markdown_table(tmp_path):
    if not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} is absent (real data lives in ../shared beside the checkout)")
    task = MaskPredictorTask(families=["half"], channels=(8, 8), norm_groups=4)
    task.export(task.modules(), tmp_path / "weights")
    out = tmp_path / "iou.md"
    code = main(["iou", "--weights", str(tmp_path / "weights"), "--data-root", str(SHARED_DATA),
                 "--n", "8", "--families", "half", "narrow", "--out", str(out)])
    assert code == 0
    text = out.read_text()
    assert "| half " in text and "| narrow " in text and "IoU" in text


def test_iou_command_reports_missing_weights(tmp_path, capsys):
    assert main(["iou", "--weights", str(tmp_path / "none"), "--out", str(tmp_path / "x.md")]) == 2
    assert "mask predictor weights not found" in capsys.readouterr().err
    assert not (tmp_path / "x.md").exists()
