"""Pretrained single-image super-resolution networks: ESPCN, FSRCNN, LapSRN (``sr-espcn``,
``sr-fsrcnn``, ``sr-lapsrn``), from the frozen TensorFlow graphs OpenCV's ``dnn_superres``
module uses (``ESPCN_x2.pb``, ``FSRCNN_x4.pb``, ``LapSRN_x2.pb``, ...), run in torch.

No TensorFlow is needed: :func:`read_graph_def` decodes the ``GraphDef`` protobuf itself (a
few dozen nodes of a dozen op types), and :class:`FrozenGraphNet` is a torch module holding
the graph's constants (convolution kernels, biases, PReLU slopes, the deconvolution kernels
LapSRN writes as convolution + depth-to-space) that evaluates the graph's nodes with torch
ops, node for node. The tests check both against TensorFlow itself (``tf.compat.v1``
``GraphDef`` import and ``Session.run``).

What the graphs hold (read from them, see ``tests/test_sr_networks.py``):

* input: one ``float32`` placeholder ``IteratorGetNext`` without a fixed shape, consumed by
  ``NHWC`` convolutions: ``[N, H, W, 1]``, one luma (Y) channel, values in ``[0, 1]`` (the
  graphs carry no range; running them on real photographs scaled to [0, 1] beats bicubic
  upsampling, scaled to [0, 255] it is ruined -- ESPCN ends in ``tanh``);
* output: ``NCHW_output``, a ``[0, 3, 1, 2]`` transpose of the ``NHWC`` result, i.e.
  ``[N, 1, s*H, s*W]`` (LapSRN x4 also exposes its x2 level as ``NCHW_output_2x``);
* ESPCN: 5x5 (64) -> 3x3 (32) -> 3x3 (s^2) convolutions with ReLU, depth-to-space, ``tanh``;
  FSRCNN: 5x5 (56) feature extraction, 1x1 shrink to 12, four 3x3 maps, 1x1 expand to 56
  (PReLU after each, written as ``relu(x) + alpha * (x - |x|) / 2``), a 1x1 convolution to
  s^2 channels, depth-to-space, bias; LapSRN: per x2 level a 10-layer 3x3 feature branch
  (leaky ReLU 0.2) ending in a 4x4 convolution + depth-to-space, added to the image branch's
  4x4 convolution + depth-to-space of the previous level's output. All convolutions ``SAME``
  (zero padding; TensorFlow puts the odd pixel of an even kernel's padding at the bottom/right).

Colour (as OpenCV's ``dnn_superres``): RGB is converted to YCbCr with BT.601 full-range
coefficients (OpenCV's ``COLOR_RGB2YCrCb``: ``Y = 0.299 R + 0.587 G + 0.114 B``,
``Cb = 0.564 (B - Y) + 1/2``, ``Cr = 0.713 (R - Y) + 1/2``), the network upscales Y, Cb and Cr
are upscaled bicubically, and the result is converted back; grey images are their own luma.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from inpaintbench.core.errors import InputError, MethodUnavailable
from inpaintbench.core.method import Method
from inpaintbench.core.seeding import SampleRNG
from inpaintbench.core.images import check_image_batch
from inpaintbench.core.tasks import check_scale

#: Environment variable with the folder of the ``.pb`` files (used when ``weights_dir=`` is not given).
SR_WEIGHTS_ENV = "INPAINTBENCH_SR_WEIGHTS"


@dataclass(frozen=True)
class NetworkInfo:
    """A published network: file stem, the scales it was released for, where to get it."""

    stem: str
    scales: tuple[int, ...]
    source: str

    def filename(self, scale: int) -> str:
        """``<stem>_x<scale>.pb``."""
        return f"{self.stem}_x{scale}.pb"


#: The models OpenCV's dnn_superres documentation links (Apache-2.0 repositories).
NETWORKS: dict[str, NetworkInfo] = {
    "espcn": NetworkInfo("ESPCN", (2, 3, 4), "https://github.com/fannymonori/TF-ESPCN (folder export/)"),
    "fsrcnn": NetworkInfo("FSRCNN", (2, 3, 4), "https://github.com/Saafke/FSRCNN_Tensorflow (folder models/)"),
    "lapsrn": NetworkInfo("LapSRN", (2, 4, 8), "https://github.com/fannymonori/TF-LapSRN (folder export/)"),
}
#: The graph node every one of these networks exposes as its result.
OUTPUT_NODE = "NCHW_output"


# --------------------------------------------------------------------------- GraphDef decoding
#
# Protocol-buffer wire format: a message is a sequence of (field number, wire type, value);
# wire types 0 varint, 1 fixed 64 bit, 2 length-delimited bytes, 5 fixed 32 bit. Only the
# fields of GraphDef / NodeDef / AttrValue / TensorProto these graphs use are interpreted
# (field numbers from tensorflow/core/framework/*.proto).

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, Any]]:
    out, pos, end = [], 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, wire, value))
    if pos != end:
        raise ValueError("truncated protobuf message")
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _packed_varints(wire: int, value: Any) -> list[int]:
    if wire == 0:
        return [_signed(value)]
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(_signed(v))
    return out


# TensorFlow DataType enum -> numpy dtype (the types these graphs can hold).
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64, 10: np.bool_}


def _shape(buf: bytes) -> tuple[int, ...] | None:
    dims: list[int] = []
    for number, _, value in _fields(buf):
        if number == 2:  # dim
            size = 0
            for n, _, v in _fields(value):
                if n == 1:
                    size = _signed(v)
            dims.append(size)
        elif number == 3 and value:  # unknown_rank
            return None
    return tuple(dims)


def _tensor(buf: bytes) -> np.ndarray:
    dtype, shape, content = None, (), None
    floats: list[float] = []
    ints: list[int] = []
    for number, wire, value in _fields(buf):
        if number == 1:
            dtype = value
        elif number == 2:
            shape = _shape(value) or ()
        elif number == 4:
            content = value
        elif number == 5:  # float_val, packed or one at a time
            floats += list(struct.unpack(f"<{len(value) // 4}f", value))
        elif number in (7, 10, 11):  # int_val, int64_val, bool_val
            ints += _packed_varints(wire, value)
    if dtype not in _DTYPES:
        raise ValueError(f"unsupported tensor dtype enum {dtype}")
    np_dtype = _DTYPES[dtype]
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        array = np.frombuffer(content, dtype=np.dtype(np_dtype).newbyteorder("<")).astype(np_dtype)
    else:
        values = floats if np_dtype in (np.float32, np.float64) else ints
        # TensorProto stores a constant fill once: the last value repeats to the full size.
        array = np.array(values + values[-1:] * (count - len(values)) if values else [0] * count, dtype=np_dtype)
    return array.reshape(shape)


def _attr(buf: bytes) -> Any:
    for number, wire, value in _fields(buf):
        if number == 1:  # list: the int entries (strides, dilations) are all these graphs use
            return [i for n, w, v in _fields(value) if n == 3 for i in _packed_varints(w, v)]
        if number == 2:
            return value.decode("utf-8", "replace")
        if number == 3:
            return _signed(value)
        if number == 4:
            return struct.unpack("<f", value)[0]
        if number == 5:
            return bool(value)
        if number == 6:
            return ("dtype", value)
        if number == 7:
            return ("shape", _shape(value))
        if number == 8:
            return _tensor(value)
    return None


@dataclass
class GraphNode:
    """One ``NodeDef``: name, op type, input names (``"^x"`` control inputs dropped, ``"x:0"``
    read as ``"x"``), and attributes (``value`` of a ``Const`` is a numpy array)."""

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


def read_graph_def(path: str | os.PathLike) -> dict[str, GraphNode]:
    """The nodes of a frozen TensorFlow ``GraphDef`` file (``.pb``), by name, in file order.

    Raises:
        InputError: the file is not a decodable ``GraphDef``.
    """
    path = Path(path)
    try:
        nodes: dict[str, GraphNode] = {}
        for number, _, value in _fields(path.read_bytes()):
            if number != 1:  # GraphDef.node; versions and the function library are not needed
                continue
            node = GraphNode("", "")
            for n, _, v in _fields(value):
                if n == 1:
                    node.name = v.decode()
                elif n == 2:
                    node.op = v.decode()
                elif n == 3:
                    name = v.decode()
                    if not name.startswith("^"):
                        node.inputs.append(name[:-2] if name.endswith(":0") else name)
                elif n == 5:
                    key = val = None
                    for kn, _, kv in _fields(v):
                        if kn == 1:
                            key = kv.decode()
                        elif kn == 2:
                            val = _attr(kv)
                    node.attrs[key] = val
            nodes[node.name] = node
    except (ValueError, IndexError, UnicodeDecodeError, struct.error) as err:
        raise InputError(f"{path} is not a TensorFlow GraphDef file ({err})") from err
    if not nodes:
        raise InputError(f"{path} is not a TensorFlow GraphDef file (no nodes)")
    return nodes


# --------------------------------------------------------------------------- the torch module

def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    # TensorFlow's SAME: output ceil(size / stride), the odd pixel of padding after.
    span = (kernel - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


class FrozenGraphNet(nn.Module):
    """A frozen single-input super-resolution ``GraphDef`` evaluated with torch ops.

    The node list is reduced to what ``output`` depends on and sorted; constants become
    buffers (kernels as ``[out, in, kh, kw]``, per-channel vectors as ``[1, C, 1, 1]``). The
    graph's ``NHWC`` tensors are held as ``NCHW`` torch tensors throughout, so the graph's
    final ``NHWC -> NCHW`` transpose is a no-op.

    Supported ops: ``Placeholder``, ``Const``, ``Identity``, ``Conv2D`` (``NHWC``, ``SAME`` or
    ``VALID``, any strides / dilations), ``Add``, ``AddV2``, ``BiasAdd``, ``Sub``, ``Mul``,
    ``Abs``, ``Relu``, ``Tanh``, ``DepthToSpace`` (``NHWC``) and ``Transpose`` by
    ``[0, 3, 1, 2]``; any other op is refused when the module is built.

    Args:
        nodes: :func:`read_graph_def`'s result.
        output: the node to compute (default :data:`OUTPUT_NODE`).

    Call: ``[B, C_in, h, w]`` float32 (the graph's ``[B, h, w, C_in]`` input in torch layout)
    -> ``[B, C_out, H, W]``.
    """

    _ELEMENTWISE: ClassVar[dict[str, Any]] = {"Add": torch.add, "AddV2": torch.add, "BiasAdd": torch.add,
                                              "Sub": torch.sub, "Mul": torch.mul}
    _UNARY: ClassVar[dict[str, Any]] = {"Abs": torch.abs, "Relu": torch.relu, "Tanh": torch.tanh,
                                        "Identity": lambda x: x}

    def __init__(self, nodes: dict[str, GraphNode], output: str = OUTPUT_NODE):
        super().__init__()
        if output not in nodes:
            raise InputError(f"the graph has no node {output!r}")
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str) -> None:  # depth-first topological sort of what output needs
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise InputError(f"the graph has a cycle through {name!r}")
            if name not in nodes:
                raise InputError(f"the graph references a missing node {name!r}")
            state[name] = 1
            for parent in nodes[name].inputs:
                visit(parent)
            state[name] = 2
            order.append(name)

        visit(output)
        placeholders = [n for n in order if nodes[n].op == "Placeholder"]
        if len(placeholders) != 1:
            raise InputError(f"expected one input placeholder, found {placeholders}")
        self.input_name, self.output_name = placeholders[0], output
        kernels = {nodes[n].inputs[1] for n in order if nodes[n].op == "Conv2D"}
        self.steps: list[tuple[str, str, list[str], dict[str, Any]]] = []
        self._buffers_of: dict[str, str] = {}
        for name in order:
            node = nodes[name]
            if node.op == "Const":
                value = np.asarray(node.attrs["value"])
                if name in kernels:  # HWIO -> OIHW
                    tensor = torch.from_numpy(np.ascontiguousarray(value.transpose(3, 2, 0, 1)))
                elif value.ndim == 1 and value.dtype.kind == "f":  # per-channel vector (last NHWC axis)
                    tensor = torch.from_numpy(value.copy()).reshape(1, -1, 1, 1)
                else:
                    tensor = torch.from_numpy(np.array(value))
                key = f"c{len(self._buffers_of)}"
                self.register_buffer(key, tensor)
                self._buffers_of[name] = key
                continue
            if node.op == "Placeholder":
                continue
            self._check_supported(node)
            self.steps.append((node.op, name, list(node.inputs), dict(node.attrs)))
        self.const_names = dict(self._buffers_of)  # graph const name -> buffer name

    @classmethod
    def _check_supported(cls, node: GraphNode) -> None:
        op, attrs = node.op, node.attrs
        if op in cls._ELEMENTWISE or op in cls._UNARY:
            if op == "BiasAdd" and attrs.get("data_format", "NHWC") != "NHWC":
                raise InputError(f"node {node.name!r}: BiasAdd data_format {attrs['data_format']!r} unsupported")
            return
        if op in ("Conv2D", "DepthToSpace"):
            if attrs.get("data_format", "NHWC") != "NHWC":
                raise InputError(f"node {node.name!r}: {op} data_format {attrs['data_format']!r} unsupported")
            if op == "Conv2D" and attrs.get("padding") not in ("SAME", "VALID"):
                raise InputError(f"node {node.name!r}: Conv2D padding {attrs.get('padding')!r} unsupported")
            return
        if op == "Transpose":
            return
        raise InputError(f"node {node.name!r}: op {op!r} is not supported by FrozenGraphNet")

    def _value(self, env: dict[str, torch.Tensor], name: str) -> torch.Tensor:
        return env[name] if name in env else getattr(self, self._buffers_of[name])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C_in, h, w]`` -> the output node, ``[B, C_out, H, W]``."""
        env = {self.input_name: x}
        for op, name, inputs, attrs in self.steps:
            args = [self._value(env, i) for i in inputs]
            if op in self._ELEMENTWISE:
                env[name] = self._ELEMENTWISE[op](args[0], args[1])
            elif op in self._UNARY:
                env[name] = self._UNARY[op](args[0])
            elif op == "Conv2D":
                env[name] = self._conv(args[0], args[1], attrs)
            elif op == "DepthToSpace":
                env[name] = self._depth_to_space(args[0], int(attrs["block_size"]))
            elif op == "Transpose":
                perm = [int(p) for p in args[1].tolist()]
                if perm != [0, 3, 1, 2]:  # NHWC -> NCHW is the storage layout already
                    raise InputError(f"node {name!r}: Transpose by {perm} is not supported")
                env[name] = args[0]
        return env[self.output_name]

    @staticmethod
    def _conv(x: torch.Tensor, kernel: torch.Tensor, attrs: dict[str, Any]) -> torch.Tensor:
        strides = attrs.get("strides") or [1, 1, 1, 1]
        dilations = attrs.get("dilations") or [1, 1, 1, 1]
        (sh, sw), (dh, dw) = strides[1:3], dilations[1:3]
        if attrs["padding"] == "SAME":
            top, bottom = _same_padding(x.shape[-2], kernel.shape[-2], sh, dh)
            left, right = _same_padding(x.shape[-1], kernel.shape[-1], sw, dw)
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, kernel, stride=(sh, sw), dilation=(dh, dw))

    @staticmethod
    def _depth_to_space(x: torch.Tensor, block: int) -> torch.Tensor:
        # TF (NHWC): out[h*b + i, w*b + j, c] = in[h, w, (i*b + j) * C + c]. torch's
        # pixel_shuffle orders the input channels (c, i, j) instead, so reorder explicitly.
        b, channels, h, w = x.shape
        c = channels // (block * block)
        x = x.reshape(b, block, block, c, h, w).permute(0, 3, 4, 1, 5, 2)
        return x.reshape(b, c, h * block, w * block)


# --------------------------------------------------------------------------- colour

def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 full-range YCbCr of ``[B, 3, H, W]`` RGB in ``[0, 1]`` (OpenCV's ``RGB2YCrCb``
    coefficients for float images, channel order Y, Cb, Cr); all three in ``[0, 1]``."""
    r, g, b = rgb.unbind(dim=1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return torch.stack((y, 0.564 * (b - y) + 0.5, 0.713 * (r - y) + 0.5), dim=1)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (OpenCV's ``YCrCb2RGB`` coefficients), not clipped."""
    y, cb, cr = ycbcr.unbind(dim=1)
    cb, cr = cb - 0.5, cr - 0.5
    return torch.stack((y + 1.403 * cr, y - 0.714 * cr - 0.344 * cb, y + 1.773 * cb), dim=1)


# --------------------------------------------------------------------------- the method

def _wanted(info: NetworkInfo) -> str:
    return ", ".join(info.filename(s) for s in info.scales)


def _none_present(network: str, folder: Path) -> str:
    info = NETWORKS[network]
    return (f"sr-{network}: none of {_wanted(info)} is in {folder}. They are OpenCV dnn_superres's model files, "
            f"published at {info.source}.")


class SRNetworkUpscale(Method):
    """A pretrained luma super-resolution network from OpenCV's ``dnn_superres`` model files
    (``sr-espcn``, ``sr-fsrcnn``, ``sr-lapsrn``), run in torch by :class:`FrozenGraphNet`.

    Grey images ``[B, 1, h, w]`` are their own luma; RGB images are converted to YCbCr
    (:func:`rgb_to_ycbcr`), Y goes through the network, Cb and Cr are upscaled bicubically
    (``F.interpolate(mode="bicubic")``, OpenCV's ``INTER_CUBIC``), and the result is converted
    back, as ``cv2.dnn_superres.DnnSuperResImpl.upsample`` does. Y and the RGB result are
    clipped to ``[0, 1]``. Any input size works (``SAME`` zero padding at the borders).

    Args:
        network: ``"espcn"``, ``"fsrcnn"`` or ``"lapsrn"`` (see :data:`NETWORKS`).
        weights_dir: folder holding ``<NAME>_x<scale>.pb`` (e.g. ``ESPCN_x2.pb``); default
            ``$INPAINTBENCH_SR_WEIGHTS``. Every published scale whose file is present is loaded.

    Raises:
        MethodUnavailable: no folder, none of the network's files in it, or a file that is not
            a supported graph (the message names the ``.pb`` files and where they are published).
        InputError: unknown ``network``; at call time, a scale the network was not published
            for (LapSRN has no x3) or whose file is absent.
    """

    tasks: ClassVar[tuple[str, ...]] = ("super-resolution",)

    def __init__(self, network: str = "espcn", weights_dir: str | None = None):
        super().__init__(network=network, weights_dir=weights_dir)
        self.folder = self._weights_folder(network, weights_dir)
        self.info = NETWORKS[network]
        self.nets = nn.ModuleDict()
        self.loaded_files: list[str] = []
        for scale in self.info.scales:
            path = self.folder / self.info.filename(scale)
            if path.is_file():
                try:
                    self.nets[str(scale)] = FrozenGraphNet(read_graph_def(path)).eval()
                except InputError as err:  # a damaged or foreign file: unavailable, with the reason
                    raise MethodUnavailable(f"sr-{network}: {err}. Get {path.name} from {self.info.source}.") from err
                self.loaded_files.append(str(path))
        if not self.loaded_files:
            raise MethodUnavailable(_none_present(network, self.folder))

    @classmethod
    def check_available(cls, network: str = "espcn", weights_dir: str | None = None, **_: Any) -> None:
        """Raise :class:`MethodUnavailable` (naming the folder and the ``.pb`` files) where
        building would find no weights folder or none of the network's files in it; nothing
        is read (a damaged file is found when built)."""
        folder = cls._weights_folder(network, weights_dir)
        info = NETWORKS[network]
        if not any((folder / info.filename(scale)).is_file() for scale in info.scales):
            raise MethodUnavailable(_none_present(network, folder))

    @staticmethod
    def _weights_folder(network: str, weights_dir: str | None) -> Path:
        """``weights_dir`` or ``$INPAINTBENCH_SR_WEIGHTS``, expanded; InputError for an unknown
        network, MethodUnavailable when neither is set."""
        if network not in NETWORKS:
            raise InputError(f"unknown super-resolution network {network!r}; choose from {sorted(NETWORKS)}")
        info = NETWORKS[network]
        source = weights_dir if weights_dir is not None else os.environ.get(SR_WEIGHTS_ENV)
        if not source:
            raise MethodUnavailable(
                f"sr-{network} needs its TensorFlow graphs ({_wanted(info)}): pass weights_dir=FOLDER or set "
                f"${SR_WEIGHTS_ENV}. They are OpenCV dnn_superres's model files, published at {info.source}.")
        return Path(source).expanduser()

    @property
    def scales(self) -> tuple[int, ...]:
        """The scales this instance can run (published and present)."""
        return tuple(int(s) for s in self.nets)

    def to(self, device: torch.device | str) -> "SRNetworkUpscale":
        super().to(device)
        self.nets.to(self.device)
        return self

    def _net(self, scale: int) -> FrozenGraphNet:
        check_scale(scale)
        if scale not in self.info.scales:
            published = ", ".join(f"x{s}" for s in self.info.scales)
            raise InputError(f"{self.info.stem} has no x{scale} model (published: {published})")
        if str(scale) not in self.nets:
            raise InputError(f"{self.folder / self.info.filename(scale)} does not exist: get it from {self.info.source}")
        return self.nets[str(scale)]

    @torch.no_grad()
    def upscale_luma(self, luma: torch.Tensor, scale: int) -> torch.Tensor:
        """The network alone: float32 ``[B, 1, h, w]`` luma in ``[0, 1]`` -> ``[B, 1, s*h, s*w]``
        (not clipped)."""
        return self._net(scale)(luma.to(self.device))

    @torch.no_grad()
    def upscale(self, low_res: torch.Tensor, scale: int, *, rng: SampleRNG) -> torch.Tensor:
        """float32 ``[B, C, h, w]`` in ``[0, 1]`` (C = 1 or 3) -> ``[B, C, s*h, s*w]`` in
        ``[0, 1]``. Deterministic: ``rng`` is not drawn from."""
        check_image_batch(low_res, "low-resolution image")
        net = self._net(scale)
        x = low_res.to(self.device)
        if x.shape[1] == 1:
            return net(x).clamp(0.0, 1.0).to(low_res.device)
        ycbcr = rgb_to_ycbcr(x)
        luma = net(ycbcr[:, :1]).clamp(0.0, 1.0)
        chroma = F.interpolate(ycbcr[:, 1:], scale_factor=scale, mode="bicubic", align_corners=False)
        rgb = ycbcr_to_rgb(torch.cat((luma, chroma), dim=1))
        return rgb.clamp(0.0, 1.0).to(low_res.device)
