"""ESPCN / FSRCNN / LapSRN (``sr-espcn``, ``sr-fsrcnn``, ``sr-lapsrn``): the torch module and
the protobuf reader against TensorFlow running the frozen graphs themselves, the graphs' input
convention read off the graphs, and the colour pipeline against OpenCV's functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.methods.feedforward.sr_networks import (
    NETWORKS,
    OUTPUT_NODE,
    FrozenGraphNet,
    SRNetworkUpscale,
    read_graph_def,
    rgb_to_ycbcr,
    ycbcr_to_rgb,
)
from inpaintbench.core.tasks import SuperResolution

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SR_WEIGHTS = SHARED / "weights" / "sr"
GRAPHS = [(net, scale) for net, info in NETWORKS.items() for scale in info.scales
          if (net, scale) != ("lapsrn", 8)]  # x8 is published but not in ../shared
TOLERANCE = 1e-4


def _graph_path(network: str, scale: int) -> Path:
    path = SR_WEIGHTS / NETWORKS[network].filename(scale)
    if not path.is_file():
        pytest.skip(f"{path} is absent (the SR graphs live in ../shared/weights/sr beside the checkout)")
    return path


def _rng(n: int) -> SampleRNG:
    return SampleRNG.for_samples(0, "sr-test", sample_ids=[str(i) for i in range(n)])


@pytest.fixture(scope="module")
def tf():
    tf = pytest.importorskip("tensorflow", reason="TensorFlow (extra [tf]) runs the graphs as the oracle")
    return tf


def _tf_graph(tf, path: Path):
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    return graph_def, graph


def _run_tf(tf, graph, nhwc: np.ndarray, output: str = OUTPUT_NODE) -> np.ndarray:
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(f"{output}:0", {"IteratorGetNext:0": nhwc})


# --------------------------------------------------------------------------- against TensorFlow

@pytest.mark.parametrize(("network", "scale"), GRAPHS)
def test_protobuf_reader_equals_tensorflows(tf, network, scale):
    from tensorflow.python.framework import tensor_util

    path = _graph_path(network, scale)
    graph_def, _ = _tf_graph(tf, path)
    ours = read_graph_def(path)
    assert list(ours) == [n.name for n in graph_def.node]
    for node in graph_def.node:
        mine = ours[node.name]
        assert mine.op == node.op and mine.inputs == list(node.input), node.name
        if node.op == "Const":
            expected = tensor_util.MakeNdarray(node.attr["value"].tensor)
            assert mine.attrs["value"].dtype == expected.dtype, node.name
            np.testing.assert_array_equal(mine.attrs["value"], expected, err_msg=node.name)
        for key in ("padding", "data_format"):
            if key in node.attr:
                assert mine.attrs[key] == node.attr[key].s.decode(), (node.name, key)
        if "block_size" in node.attr:
            assert mine.attrs["block_size"] == node.attr["block_size"].i


@pytest.mark.parametrize(("network", "scale"), GRAPHS)
def test_torch_module_equals_the_graph_run_by_tensorflow(tf, network, scale):
    path = _graph_path(network, scale)
    _, graph = _tf_graph(tf, path)
    net = FrozenGraphNet(read_graph_def(path)).eval()
    rng = np.random.default_rng(scale)
    worst = 0.0
    for h, w in ((17, 23), (7, 7), (32, 20)):  # odd sizes: TF's SAME puts the extra pad bottom/right
        luma = rng.random((2, h, w, 1), dtype=np.float32)
        expected = _run_tf(tf, graph, luma)
        with torch.no_grad():
            got = net(torch.from_numpy(luma).permute(0, 3, 1, 2)).numpy()
        assert got.shape == expected.shape == (2, 1, scale * h, scale * w)
        worst = max(worst, float(np.abs(got - expected).max()))
    print(f"{path.name}: max |torch - TF| = {worst:.3g}")
    assert worst <= TOLERANCE


def test_lapsrn_x4_intermediate_x2_output_matches_too(tf):
    path = _graph_path("lapsrn", 4)
    nodes = read_graph_def(path)
    _, graph = _tf_graph(tf, path)
    luma = np.random.default_rng(0).random((1, 12, 9, 1), dtype=np.float32)
    with torch.no_grad():
        got = FrozenGraphNet(nodes, output="NCHW_output_2x")(torch.from_numpy(luma).permute(0, 3, 1, 2)).numpy()
    assert np.abs(got - _run_tf(tf, graph, luma, "NCHW_output_2x")).max() <= TOLERANCE


# --------------------------------------------------------------------------- the input convention

@pytest.mark.parametrize(("network", "scale"), GRAPHS)
def test_layout_read_from_the_graph_nhwc_luma_in_nchw_out(network, scale):
    nodes = read_graph_def(_graph_path(network, scale))
    placeholders = [n for n in nodes.values() if n.op == "Placeholder"]
    assert [p.name for p in placeholders] == ["IteratorGetNext"]
    assert placeholders[0].attrs["dtype"] == ("dtype", 1)  # DT_FLOAT
    assert placeholders[0].attrs.get("shape") in (None, ("shape", None))  # no fixed shape
    convs = [n for n in nodes.values() if n.op == "Conv2D"]
    assert {n.attrs["data_format"] for n in convs} == {"NHWC"}
    assert {n.attrs["padding"] for n in convs} == {"SAME"}
    first = [n for n in convs if n.inputs[0] == "IteratorGetNext"]
    assert first and all(nodes[n.inputs[1]].attrs["value"].shape[2] == 1 for n in first)  # HWIO: 1 input channel
    out = nodes[OUTPUT_NODE]
    assert out.op == "Transpose" and nodes[out.inputs[1]].attrs["value"].tolist() == [0, 3, 1, 2]
    assert {n.attrs["block_size"] for n in nodes.values() if n.op == "DepthToSpace"} == {scale if network != "lapsrn" else 2}


def _photos(n: int = 4) -> torch.Tensor:
    folder = SHARED / "data" / "celebahq-256" / "images"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (real photographs in ../shared/data)")
    from PIL import Image

    files = sorted(folder.iterdir())[:n]
    return torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255)
                        .permute(2, 0, 1) for f in files])


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


@pytest.mark.parametrize(("network", "scale"), [(n, 2) for n in NETWORKS] + [("lapsrn", 4)])
def test_value_range_is_zero_one_read_off_the_graph_on_real_photographs(network, scale):
    """The graphs carry no range, so run them: on photographs' luma scaled to [0, 1] the network
    is at least as good as bicubic upsampling; the same images scaled to [0, 255] or [-1, 1]
    give far worse results (measured x2: ESPCN 36.5 dB vs 7.1 / 8.1, bicubic 36.0)."""
    net = FrozenGraphNet(read_graph_def(_graph_path(network, scale))).eval()
    luma = rgb_to_ycbcr(_photos())[:, :1]
    low = F.avg_pool2d(luma, scale)
    with torch.no_grad():
        candidates = {"[0, 1]": net(low).clamp(0, 1),
                      "[0, 255]": (net(low * 255) / 255).clamp(0, 1),
                      "[-1, 1]": ((net(2 * low - 1) + 1) / 2).clamp(0, 1)}
    bicubic = F.interpolate(low, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
    scores = {k: _psnr(v, luma) for k, v in candidates.items()}
    print(f"{network} x{scale}: bicubic {_psnr(bicubic, luma):.2f} dB, " +
          ", ".join(f"{k} {v:.2f} dB" for k, v in scores.items()))
    assert scores["[0, 1]"] >= _psnr(bicubic, luma) - 0.1
    assert scores["[0, 1]"] >= max(scores["[0, 255]"], scores["[-1, 1]"]) + 3.0


# --------------------------------------------------------------------------- colour, as OpenCV

def test_ycbcr_equals_opencvs_bt601_conversion():
    cv2 = pytest.importorskip("cv2")
    rgb = np.random.default_rng(0).random((9, 11, 3), dtype=np.float32)
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    ours = rgb_to_ycbcr(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, ycrcb[..., [0, 2, 1]], atol=1e-6)
    back = ycbcr_to_rgb(torch.from_numpy(ours).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(back, cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2RGB), atol=1e-6)


def test_rgb_pipeline_equals_opencv_dnn_superres_steps_with_the_graph(tf):
    """RGB through the method == OpenCV's dnn_superres steps done with OpenCV and TF: YCrCb,
    the graph on Y, INTER_CUBIC on Cr and Cb, back to RGB, clipped."""
    cv2 = pytest.importorskip("cv2")
    path = _graph_path("fsrcnn", 3)
    _, graph = _tf_graph(tf, path)
    method = SRNetworkUpscale("fsrcnn", weights_dir=str(SR_WEIGHTS))
    rgb = np.random.default_rng(1).random((10, 13, 3), dtype=np.float32)
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    y = np.clip(_run_tf(tf, graph, ycrcb[None, :, :, :1])[0, 0], 0, 1)
    crcb = cv2.resize(ycrcb[..., 1:], (39, 30), interpolation=cv2.INTER_CUBIC)
    expected = np.clip(cv2.cvtColor(np.dstack([y, crcb]).astype(np.float32), cv2.COLOR_YCrCb2RGB), 0, 1)
    got = method.upscale(torch.from_numpy(rgb).permute(2, 0, 1)[None], 3, rng=_rng(1))[0].permute(1, 2, 0).numpy()
    assert np.abs(got - expected).max() <= TOLERANCE


# --------------------------------------------------------------------------- the methods

@pytest.mark.parametrize("network", sorted(NETWORKS))
def test_methods_in_the_registry_upscale_grey_digits_at_x2_and_x4(network, digits):
    from inpaintbench.core.registry import method_registry

    if not SR_WEIGHTS.is_dir():
        pytest.skip(f"{SR_WEIGHTS} is absent")
    method = method_registry().create(f"sr-{network}", weights_dir=str(SR_WEIGHTS))
    assert method.tasks == ("super-resolution",) and method.weight_files()
    for scale in (2, 4):
        task = SuperResolution(scale, tuple(digits.shape))
        out = method.restore(task.observe(digits), _rng(len(digits))).image
        assert out.shape == digits.shape and 0 <= out.min() and out.max() <= 1
        luma = method.upscale_luma(task.observe(digits).image, scale)
        torch.testing.assert_close(out, luma.clamp(0, 1))  # grey: the network alone


def test_a_scale_without_a_graph_is_a_clear_error():
    if not SR_WEIGHTS.is_dir():
        pytest.skip(f"{SR_WEIGHTS} is absent")
    lapsrn = SRNetworkUpscale("lapsrn", weights_dir=str(SR_WEIGHTS))
    with pytest.raises(InputError, match=r"LapSRN has no x3 model \(published: x2, x4, x8\)"):
        lapsrn.upscale(torch.rand(1, 1, 8, 8), 3, rng=_rng(1))
    with pytest.raises(InputError, match="LapSRN_x8.pb does not exist"):
        lapsrn.upscale(torch.rand(1, 1, 8, 8), 8, rng=_rng(1))
    with pytest.raises(InputError, match="ESPCN has no x5 model"):
        SRNetworkUpscale("espcn", weights_dir=str(SR_WEIGHTS)).upscale(torch.rand(1, 1, 8, 8), 5, rng=_rng(1))


def test_missing_graphs_name_the_files_and_where_they_are_published(tmp_path, monkeypatch):
    monkeypatch.delenv("INPAINTBENCH_SR_WEIGHTS", raising=False)
    with pytest.raises(MethodUnavailable, match=r"ESPCN_x2\.pb.*INPAINTBENCH_SR_WEIGHTS.*github\.com/fannymonori/TF-ESPCN"):
        SRNetworkUpscale("espcn")
    with pytest.raises(MethodUnavailable, match=r"FSRCNN_x2\.pb, FSRCNN_x3\.pb, FSRCNN_x4\.pb is in .*Saafke/FSRCNN_Tensorflow"):
        SRNetworkUpscale("fsrcnn", weights_dir=str(tmp_path))
    monkeypatch.setenv("INPAINTBENCH_SR_WEIGHTS", str(tmp_path))
    with pytest.raises(MethodUnavailable, match="LapSRN_x2.pb"):
        SRNetworkUpscale("lapsrn")
    (tmp_path / "ESPCN_x2.pb").write_bytes(b"\xff\xff\xff")
    with pytest.raises(MethodUnavailable, match=r"ESPCN_x2\.pb is not a TensorFlow GraphDef.*TF-ESPCN"):
        SRNetworkUpscale("espcn")


def test_unsupported_ops_are_refused_when_the_module_is_built():
    from inpaintbench.methods.feedforward.sr_networks import GraphNode

    nodes = {"IteratorGetNext": GraphNode("IteratorGetNext", "Placeholder"),
             "NCHW_output": GraphNode("NCHW_output", "Softmax", ["IteratorGetNext"])}
    with pytest.raises(InputError, match="op 'Softmax' is not supported"):
        FrozenGraphNet(nodes)
