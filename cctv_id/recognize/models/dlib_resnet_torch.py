"""dlib's face recognition ResNet v1 (the distillation teacher) as a PyTorch module.

Owns the network definition, the conversion of the parsed ``.dat`` (``dlib_format``) into a
``state_dict``, its on-disk cache and dlib's input normalisation. The structure, as the
``.dat`` holds it and as measured against dlib's own output (150 px RGB chip):

    input   (pixel - mean_rgb) / 256, means (122.782, 117.001, 104.298)
    stem    conv 7x7/2 pad 0, 32 ch -> 72x72; affine; relu; max_pool 3x3/2 pad 0 -> 35x35
    stage 0 3 blocks   32 ch @ 35x35
    stage 1 4 blocks   64 ch @ 17x17 (the first downsamples)
    stage 2 3 blocks  128 ch @ 8x8   (the first downsamples)
    stage 3 3 blocks  256 ch @ 4x4   (the first downsamples: its convolution gives 3x3, the
                                      skip 4x4; the sum is 4x4, the block's output zero-padded
                                      on the bottom/right)
    stage 4 1 block   256 ch @ 2x2   (downsamples: conv 1x1, skip 2x2)
    head    mean over all positions (padded zeros included) -> fc 256 -> 128, no bias

A block is conv 3x3 (stride s) -> affine -> relu -> conv 3x3/1 -> affine, added to the skip
(the block input; avg_pool 2x2/2 of it when s = 2), then relu. dlib pads stride-1 convolutions
by k//2 and strided convolutions and pools by 0. ``add_prev`` sums tensors of different shapes
as if the smaller were zero-padded (channels at the end, rows/columns at the bottom/right).
The affine layers are stored as ``affine_`` records (per-channel gamma, beta: batch norm
already folded in), here per-channel ``weight`` (scale) and ``bias`` (shift) parameters.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelError
from ..dlib_format import MARKER, DlibLayer, DlibNet, read_net

log = logging.getLogger(__name__)

INPUT_SIZE = 150
# dlib's stored means (float32), R, G, B; checked against the .dat on conversion.
INPUT_MEANS_RGB = (122.782, 117.001, 104.298)
INPUT_SCALE = 256.0
DESCRIPTOR_DIM = 128
# (channels, blocks, stride of the first block), from the input side
STAGES: tuple[tuple[int, int, int], ...] = ((32, 3, 1), (64, 4, 2), (128, 3, 2), (256, 3, 2), (256, 1, 2))
STEM_CHANNELS = 32
CACHE_VERSION = 1


def dlib_padding(kernel: int, stride: int) -> int:
    """dlib's default padding: kernel // 2 for stride 1, else 0."""
    return kernel // 2 if stride == 1 else 0


def add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum over the larger shape, each input zero-padded at the end
    of the channel, row and column axes."""
    if a.shape == b.shape:
        return a + b
    c = max(a.shape[1], b.shape[1])
    h = max(a.shape[2], b.shape[2])
    w = max(a.shape[3], b.shape[3])

    def pad(t: torch.Tensor) -> torch.Tensor:
        if t.shape[1:] == (c, h, w):
            return t
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))

    return pad(a) + pad(b)


class Affine(nn.Module):
    """Per-channel ``x * weight + bias`` (dlib's ``affine_`` in CONV_MODE)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class ResidualBlock(nn.Module):
    """dlib's ``ares`` / ``ares_down`` without the final relu (``forward`` returns the sum)."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, dlib_padding(3, stride))
        self.affine1 = Affine(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, dlib_padding(3, 1))
        self.affine2 = Affine(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        skip = F.avg_pool2d(x, 2, 2) if self.stride != 1 else x
        return add_padded(y, skip)


def _out(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * dlib_padding(kernel, stride) - kernel) // stride + 1


class DlibResNet(nn.Module):
    """dlib_face_recognition_resnet_model_v1. ``forward(x)``: raw 128-d descriptors (not
    normalised) of ``x`` (N, 3, 150, 150) already normalised by ``preprocess``.

    ``block_info[i]`` = (stage 0..4 from the input side, channels, spatial size) of the i-th
    residual block, the i-th map of ``forward_with_maps``.
    """

    def __init__(self, input_size: int = INPUT_SIZE) -> None:
        """``input_size``: the chip size the network reads (dlib's own: 150). The network is
        fully convolutional up to its global average pool, so a student of the same
        architecture may read smaller chips; ``block_info`` follows the size."""
        super().__init__()
        self.input_size = int(input_size)
        self.conv1 = nn.Conv2d(3, STEM_CHANNELS, 7, 2, dlib_padding(7, 2))
        self.affine1 = Affine(STEM_CHANNELS)
        blocks = []
        info: list[tuple[int, int, int]] = []
        size = _out(_out(self.input_size, 7, 2), 3, 2)
        channels = STEM_CHANNELS
        for stage, (width, count, stride) in enumerate(STAGES):
            for j in range(count):
                s = stride if j == 0 else 1
                blocks.append(ResidualBlock(channels, width, s))
                if s != 1:
                    size = max(_out(size, 3, s), _out(size, 2, 2))
                channels = max(channels, width)
                info.append((stage, channels, size))
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(channels, DESCRIPTOR_DIM, bias=False)
        self.block_info: list[tuple[int, int, int]] = info
        self.dat_sha256: str | None = None  # set by load_teacher

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.affine1(self.conv1(x))), 3, 2)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._stem(x)
        for block in self.blocks:
            x = F.relu(block(x))
        return self._head(x)

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(descriptor, maps)``: maps[i] is block i's output before its final relu."""
        maps = []
        x = self._stem(x)
        for block in self.blocks:
            pre = block(x)
            maps.append(pre)
            x = F.relu(pre)
        return self._head(x), maps


def preprocess(
    chips_bgr_uint8: np.ndarray,
    device: torch.device | str | None = None,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """dlib's input layer: (N, 150, 150, 3) uint8 BGR chips -> float32 (N, 3, 150, 150) RGB,
    (pixel - mean) / 256. The uint8 array is moved to ``device`` before conversion."""
    chips = np.asarray(chips_bgr_uint8)
    if chips.ndim == 3:
        chips = chips[None]
    if chips.ndim != 4 or chips.shape[3] != 3 or chips.dtype != np.uint8:
        raise ValueError(f"expected (N, H, W, 3) uint8 BGR chips, got {chips.shape} {chips.dtype}")
    t = torch.from_numpy(np.ascontiguousarray(chips)).to(device)
    mean = torch.tensor(INPUT_MEANS_RGB[::-1], dtype=torch.float32, device=t.device)  # B, G, R
    x = ((t.float() - mean) / INPUT_SCALE).flip(3)  # -> R, G, B
    return x.permute(0, 3, 1, 2).contiguous(memory_format=memory_format)


# ------------------------------------------------------------------ .dat -> state_dict


def state_dict_from_net(net: DlibNet, model: DlibResNet | None = None) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of ``DlibResNet`` for a parsed ``.dat``; ModelError if its layers
    are not this network (every kernel, stride, padding and channel count is checked)."""
    model = model or DlibResNet()
    layers = list(net.layers)
    pos = 0
    sd: dict[str, torch.Tensor] = {}

    def take(kind: str, **expect: int) -> DlibLayer:
        nonlocal pos
        if pos >= len(layers) or layers[pos].kind != kind:
            got = layers[pos].kind if pos < len(layers) else "end of network"
            raise ModelError(f"dlib network differs from DlibResNet at layer {pos}: expected {kind}, found {got}")
        layer = layers[pos]
        for key, want in expect.items():
            if layer.fields.get(key) != want:
                raise ModelError(f"dlib network differs from DlibResNet at layer {pos} ({kind}): "
                                 f"{key} = {layer.fields.get(key)}, expected {want}")
        pos += 1
        return layer

    def conv(prefix: str, m: nn.Conv2d) -> None:
        layer = take("con", num_filters=m.out_channels, nr=m.kernel_size[0], nc=m.kernel_size[1],
                     stride_y=m.stride[0], stride_x=m.stride[1], padding_y=m.padding[0], padding_x=m.padding[1])
        w = layer.arrays["weight"]
        if tuple(w.shape) != tuple(m.weight.shape) or "bias" not in layer.arrays:
            raise ModelError(f"dlib network differs from DlibResNet at {prefix}: filters {w.shape}")
        sd[f"{prefix}.weight"] = torch.from_numpy(np.array(w, order="C"))
        sd[f"{prefix}.bias"] = torch.from_numpy(np.array(layer.arrays["bias"], order="C"))

    def affine(prefix: str, m: Affine) -> None:
        layer = take("affine", mode=0)
        if layer.arrays["gamma"].shape != tuple(m.weight.shape):
            raise ModelError(f"dlib network differs from DlibResNet at {prefix}: {layer.arrays['gamma'].shape}")
        sd[f"{prefix}.weight"] = torch.from_numpy(np.array(layer.arrays["gamma"], order="C"))
        sd[f"{prefix}.bias"] = torch.from_numpy(np.array(layer.arrays["beta"], order="C"))

    means = np.float32(net.input_means)
    if net.input_size not in (None, (INPUT_SIZE, INPUT_SIZE)) or not np.array_equal(means, np.float32(INPUT_MEANS_RGB)):
        raise ModelError(f"dlib network input differs from DlibResNet: {net.input_record} {net.input}")
    conv("conv1", model.conv1)
    affine("affine1", model.affine1)
    take("relu")
    take("max_pool", nr=3, nc=3, stride_y=2, stride_x=2, padding_y=0, padding_x=0)
    for i, block in enumerate(model.blocks):
        take(MARKER)  # tag1: the block input
        conv(f"blocks.{i}.conv1", block.conv1)
        affine(f"blocks.{i}.affine1", block.affine1)
        take("relu")
        conv(f"blocks.{i}.conv2", block.conv2)
        affine(f"blocks.{i}.affine2", block.affine2)
        if block.stride != 1:
            take(MARKER)  # tag2: the block output
            take(MARKER)  # skip1: back to the block input
            take("avg_pool", nr=2, nc=2, stride_y=2, stride_x=2, padding_y=0, padding_x=0)
        take("add_prev")
        take("relu")
    take("avg_pool", nr=0, nc=0)  # avg_pool_everything
    fc = take("fc", num_outputs=model.fc.out_features, num_inputs=model.fc.in_features)
    if "bias" in fc.arrays:
        raise ModelError("dlib network differs from DlibResNet: its fc layer has a bias")
    sd["fc.weight"] = torch.from_numpy(np.array(fc.arrays["weight"], order="C"))
    if pos != len(layers):
        raise ModelError(f"dlib network differs from DlibResNet: {len(layers) - pos} extra layers")
    return sd


def cache_dir() -> Path:
    """``$CCTV_ID_CACHE`` or ``~/.cache/cctv-id``."""
    env = os.environ.get("CCTV_ID_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cctv-id"


def _cache_path(sha256: str) -> Path:
    return cache_dir() / "dlib_resnet_torch" / f"{sha256}-v{CACHE_VERSION}.pt"


def _load_cached(path: Path, model: DlibResNet) -> bool:
    if not path.is_file():
        return False
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
        return True
    except Exception as exc:  # noqa: BLE001 - a bad cache file is rebuilt from the .dat
        log.warning("ignoring unreadable teacher cache %s: %s", path, exc)
        return False


def _save_cached(path: Path, sd: dict[str, torch.Tensor]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(fd)
        try:
            torch.save(sd, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        log.warning("cannot write teacher cache %s: %s", path, exc)


def load_teacher(path: str | Path | None = None) -> DlibResNet:
    """dlib's ResNet from its ``.dat`` (default: the ``face_recognition_models`` copy), in eval
    mode on the CPU with its parameters frozen (``requires_grad_(True)`` to train them). The
    converted weights are cached under ``cache_dir()`` by the file's sha256
    (``model.dat_sha256``); nothing is downloaded."""
    from ..base import file_sha256
    from ..dlib_resnet import MODEL_FILE, default_model_path

    p = Path(path).expanduser() if path is not None else default_model_path()
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.is_file():
        raise ModelError(f"dlib recogniser weights not found: {p}")
    sha = file_sha256(p)
    model = DlibResNet()
    cached = _cache_path(sha)
    if not _load_cached(cached, model):
        sd = state_dict_from_net(read_net(p), model)
        model.load_state_dict(sd, strict=True)
        _save_cached(cached, sd)
    model.dat_sha256 = sha
    model.requires_grad_(False)
    return model.eval()
