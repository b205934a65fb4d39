"""Improved ResNets ("IR" nets of insightface/ArcFace), optionally with CBAM, for the A-SKD
paper recipe ("Teaching Where to Look", ECCV 2022).

Owns the network definition and the collection of CBAM's attention logits, the tensors the
paper distils. Layout for an ``S`` px input (``S`` a multiple of 16; 112 in the paper):

    stem    conv 3x3/1 (3 -> 64) -> BN -> PReLU                          64 @ S
    stage k (k = 0..3) ``ARCHS[arch][k]`` IR blocks of width 64/128/256/512, the first of each
            stage with stride 2                                  -> S/2, S/4, S/8, S/16
    head    BN -> Dropout -> flatten -> fc (512 (S/16)^2 -> embedding) -> BatchNorm1d

An IR block's residual branch is BN -> conv 3x3/1 -> BN -> PReLU -> conv 3x3/s -> BN, then (with
``cbam``) CBAM, added to the shortcut (identity, or conv 1x1/s -> BN when the shape changes);
no activation after the sum. CBAM gates the branch by channel attention (a shared MLP C -> C/16
-> C over the global average and max pools, summed) and then spatial attention (conv 3x3 over
the channel mean and max); the logits before each sigmoid are returned by
``forward_with_maps``. Parameter names follow insightface's ``iresnet.py`` (``conv1``,
``layer1.0.bn1``, ``fc``, ``features`` ...), so its CBAM-free checkpoints load into
``cbam=False`` models. Inputs are RGB in [-1, 1]; the embedding is not normalised.
"""

from __future__ import annotations

import torch
from torch import nn

from ...errors import ConfigError

ARCHS: dict[str, list[int]] = {
    "iresnet18": [2, 2, 2, 2],
    "iresnet34": [3, 4, 6, 3],
    "iresnet50": [3, 4, 14, 3],
    "iresnet100": [3, 13, 30, 3],
}
WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
CBAM_REDUCTION = 16

AttentionMaps = tuple[torch.Tensor, torch.Tensor]  # (channel logits (B, C), spatial logits (B, 1, H, W))


class CBAM(nn.Module):
    """Channel then spatial attention; ``forward`` returns the gated input and both logits."""

    def __init__(self, channels: int, reduction: int = CBAM_REDUCTION):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
        )
        self.spatial = nn.Conv2d(2, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        pooled = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))])  # both pools through one MLP call
        mlp = self.mlp(pooled)
        channel_logits = mlp[:n] + mlp[n:]
        x = x * torch.sigmoid(channel_logits)[:, :, None, None]
        desc = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        spatial_logits = self.spatial(desc)
        return x * torch.sigmoid(spatial_logits), channel_logits, spatial_logits


class IRBlock(nn.Module):
    """insightface's ``IBasicBlock`` with an optional CBAM on the residual branch."""

    def __init__(self, cin: int, cout: int, stride: int, cbam: bool):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.cbam = CBAM(cout) if cbam else None
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, AttentionMaps | None]:
        y = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        maps = None
        if self.cbam is not None:
            y, channel_logits, spatial_logits = self.cbam(y)
            maps = (channel_logits, spatial_logits)
        shortcut = x if self.downsample is None else self.downsample(x)
        return y + shortcut, maps


class IResNet(nn.Module):
    def __init__(
        self,
        layers: list[int],
        cbam: bool = True,
        embedding_size: int = 512,
        input_size: int = 112,
        dropout: float = 0.4,
    ):
        super().__init__()
        if len(layers) != len(WIDTHS) or min(layers) < 1:
            raise ConfigError(f"an IResNet needs {len(WIDTHS)} stages of at least one block, got {layers}")
        if input_size < 16 or input_size % 16:
            raise ConfigError(f"iresnet input_size must be a positive multiple of 16, got {input_size}")
        self.layers_per_stage = list(layers)
        self.cbam = cbam
        self.embedding_size = embedding_size
        self.input_size = input_size
        self.conv1 = nn.Conv2d(3, WIDTHS[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(WIDTHS[0])
        self.prelu = nn.PReLU(WIDTHS[0])
        cin = WIDTHS[0]
        info: list[tuple[int, int]] = []
        size = input_size
        for k, (width, n) in enumerate(zip(WIDTHS, layers)):
            size //= 2
            stage = nn.ModuleList()
            for j in range(n):
                stage.append(IRBlock(cin, width, 2 if j == 0 else 1, cbam))
                info.append((width, size))
                cin = width
            self.add_module(f"layer{k + 1}", stage)
        self._block_info = info
        self.bn2 = nn.BatchNorm2d(cin)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(cin * size * size, embedding_size)
        self.features = nn.BatchNorm1d(embedding_size)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def blocks(self) -> list[IRBlock]:
        """Every IR block, from the input side."""
        return [b for k in range(len(WIDTHS)) for b in getattr(self, f"layer{k + 1}")]

    def block_info(self) -> list[tuple[int, int]]:
        """(channels, spatial size of the output at ``input_size``) per block, in order."""
        return list(self._block_info)

    def _run(self, x: torch.Tensor, maps: list[AttentionMaps] | None) -> torch.Tensor:
        y = self.prelu(self.bn1(self.conv1(x)))
        for k in range(len(WIDTHS)):
            for block in getattr(self, f"layer{k + 1}"):
                y, m = block(y)
                if maps is not None:
                    maps.append(m)
        y = self.dropout(self.bn2(y))
        return self.features(self.fc(torch.flatten(y, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` in [-1, 1] -> ``(B, embedding_size)``, not normalised."""
        return self._run(x, None)

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[AttentionMaps]]:
        """The embedding and, for every block in order, CBAM's (channel logits ``(B, C)``,
        spatial logits ``(B, 1, H, W)``) before the sigmoid."""
        if not self.cbam:
            raise ValueError("this IResNet has no CBAM modules: build it with cbam=True for attention maps")
        maps: list[AttentionMaps] = []
        emb = self._run(x, maps)
        return emb, maps


def build_iresnet(
    arch: str,
    cbam: bool = True,
    embedding_size: int = 512,
    input_size: int = 112,
    dropout: float = 0.4,
) -> IResNet:
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHS)}")
    return IResNet(ARCHS[arch], cbam=cbam, embedding_size=embedding_size, input_size=input_size, dropout=dropout)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
