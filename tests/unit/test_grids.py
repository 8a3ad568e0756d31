"""The comparison grid is one composed picture whose tiles are the saved images, upscaled exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from inpaintbench.report.leaderboard import comparison_grid
from inpaintbench.report.plots import GRID_EMPTY, GRID_SEPARATOR, _font, _wrap, compose_grid, grid_layout
from inpaintbench.store.artifacts import example_path, save_examples

IDS = ["s0", "s1", "s2"]
SIZE = 20  # 20 px images: scale ceil(96 / 20) = 5, 100 px tiles


def _upscaled(image: np.ndarray, k: int) -> np.ndarray:
    """``[C, h, w]`` -> ``[h k, w k, C]`` by repeating every pixel k x k (independent of the code under test)."""
    return np.kron(image.transpose(1, 2, 0), np.ones((k, k, 1), dtype=np.uint8))


@pytest.fixture
def saved(tmp_path):
    """Examples as a run saves them: 3 images, methods a and c complete, b lacks s1, d saved nothing."""
    gen = torch.Generator().manual_seed(0)
    originals = torch.rand(len(IDS), 1, SIZE, SIZE, generator=gen)
    masks = torch.zeros(len(IDS), 1, SIZE, SIZE, dtype=torch.bool)
    masks[:, :, 5:15, 3:12] = True
    save_examples(example_path(tmp_path, "toy", "box", "_input"), IDS, original=originals, mask=masks)
    outputs = {m: torch.rand(len(IDS), 1, SIZE, SIZE, generator=gen) for m in "abc"}
    save_examples(example_path(tmp_path, "toy", "box", "a"), IDS, output=outputs["a"])
    save_examples(example_path(tmp_path, "toy", "box", "b"), ["s0", "s2"], output=outputs["b"][[0, 2]])
    save_examples(example_path(tmp_path, "toy", "box", "c"), IDS, output=outputs["c"])
    from inpaintbench.store.artifacts import load_examples

    # What the grid must show: the uint8 arrays as stored (the saver quantises).
    inputs = load_examples(example_path(tmp_path, "toy", "box", "_input"))
    outs = {m: load_examples(example_path(tmp_path, "toy", "box", m)) for m in "abc"}
    return tmp_path, inputs, outs


def test_each_tile_is_the_saved_image_upscaled(saved, tmp_path):
    root, inputs, outs = saved
    path = comparison_grid(root, "toy", "box", ["a", "b", "c", "d"], tmp_path / "figures" / "grid.png")
    picture = np.asarray(Image.open(path))
    picture = picture[:, :, None] if picture.ndim == 2 else picture
    columns = ["original", "mask", "masked input", "a", "b", "c"]  # d saved nothing: no column
    layout = grid_layout(IDS, columns, "toy · box (mask: black = hole)", (SIZE, SIZE))
    assert layout.scale == 5 and layout.tile == (100, 100)
    assert picture.shape == (*layout.size, 1)  # grey images: one channel
    for r, sid in enumerate(IDS):
        original = inputs[sid]["original"]
        hole = inputs[sid]["mask"]
        expected = {"original": original, "mask": np.where(hole, 0, 255).astype(np.uint8),
                    "masked input": np.where(hole, 0, original).astype(np.uint8)}
        expected.update({m: outs[m][sid]["output"] for m in "ac"})
        for name, image in expected.items():
            tile = picture[layout.box(r, columns.index(name))]
            assert np.array_equal(tile, _upscaled(image, 5)), (sid, name)
    # Separators between tiles, in both directions.
    ys, xs = layout.box(0, 0)
    assert (picture[ys, xs.stop:xs.stop + layout.gap] == GRID_SEPARATOR).all()
    assert (picture[ys.stop:ys.stop + layout.gap, xs] == GRID_SEPARATOR).all()


def test_a_missing_output_is_an_empty_tile(saved, tmp_path):
    root, _, outs = saved
    path = comparison_grid(root, "toy", "box", ["a", "b", "c"], tmp_path / "grid.png")
    picture = np.asarray(Image.open(path))
    columns = ["original", "mask", "masked input", "a", "b", "c"]
    layout = grid_layout(IDS, columns, "toy · box (mask: black = hole)", (SIZE, SIZE))
    b = columns.index("b")
    empty = picture[layout.box(1, b)]
    # Grey everywhere but the small note in its middle: its border rows and columns are untouched.
    for edge in (empty[:10], empty[-10:], empty[:, :5], empty[:, -5:]):
        assert (edge == GRID_EMPTY).all()
    assert (empty != GRID_EMPTY).any()  # the "no output" note is drawn
    # The neighbours in b's column are b's own outputs.
    assert np.array_equal(picture[layout.box(0, b)], _upscaled(outs["b"]["s0"]["output"], 5)[:, :, 0])
    assert np.array_equal(picture[layout.box(2, b)], _upscaled(outs["b"]["s2"]["output"], 5)[:, :, 0])


def test_no_saved_examples_means_no_grid(tmp_path):
    assert comparison_grid(tmp_path, "toy", "box", ["a"], tmp_path / "grid.png") is None
    assert not (tmp_path / "grid.png").exists()


def test_colour_grid_shape_and_tiles():
    rng = np.random.default_rng(1)
    rgb = [rng.integers(0, 256, (3, 32, 32), dtype=np.uint8) for _ in range(2)]
    grey = rng.integers(0, 256, (1, 32, 32), dtype=np.uint8)
    cells = [[rgb[0], grey, None, rgb[1]], [rgb[1], grey, rgb[0], None]]
    picture, layout = compose_grid(["first", "second"], ["p", "q", "r", "s"], cells, "title")
    assert layout.scale == 3 and layout.tile == (96, 96)  # ceil(96 / 32) = 3
    assert picture.shape == (*layout.size, 3) and picture.dtype == np.uint8
    # The block: 2 rows, 4 columns of 96 px tiles and 3 px separators.
    ys, xs = layout.block
    assert (ys.stop - ys.start, xs.stop - xs.start) == (2 * 99 + 3, 4 * 99 + 3)
    assert picture.shape[0] > ys.stop and picture.shape[1] > xs.stop  # margins for labels and titles
    assert np.array_equal(picture[layout.box(0, 0)], _upscaled(rgb[0], 3))
    assert np.array_equal(picture[layout.box(1, 2)], _upscaled(rgb[0], 3))
    assert np.array_equal(picture[layout.box(1, 1)], np.repeat(_upscaled(grey, 3), 3, axis=2))  # grey on RGB
    assert (picture[layout.box(0, 2)][:10] == GRID_EMPTY).all()


def test_large_images_are_not_rescaled():
    image = np.arange(128 * 100, dtype=np.uint32).reshape(1, 128, 100).astype(np.uint8)
    picture, layout = compose_grid(["r"], ["c"], [[image]], "t")
    assert layout.scale == 1 and layout.tile == (128, 100)
    assert np.array_equal(picture[layout.box(0, 0)], image.transpose(1, 2, 0))


def test_long_titles_wrap_within_the_tile():
    font = _font(12)
    label = "ddpm-paste{paste_known=False}[strength=0.5]"
    lines = _wrap(label, font, 100)
    assert len(lines) > 1 and all(font.getlength(line) <= 100 for line in lines)
    assert "".join(lines).replace(" ", "") == label.replace(" ", "")
    assert _wrap("x" * 80, font, 40) and all(font.getlength(line) <= 40 for line in _wrap("x" * 80, font, 40))


def test_cells_must_match_rows_and_columns():
    with pytest.raises(ValueError, match="2 rows of 1"):
        compose_grid(["a", "b"], ["c"], [[None]], "t")
