"""The compact low-resolution student: a small ResNet that reads a 32-48 px face chip natively.

It lives in the runtime package (``recognize``) because the shipped recogniser backend builds
it; the trainer in ``cctv_id.distill`` builds the same class. The architecture is described by
a small frozen ``CompactSpec`` that travels inside every checkpoint, so a weights file can be
rebuilt without the recipe that trained it.

Layout (defaults, 48 px input): stem 3x3/1 conv -> 3x3/2 conv (24x24), then stages of basic
residual blocks with widths 32/64/128/256 at 24/12/6/3 px (the teacher's widths, so the
channel-attention term of A-SKD applies block for block), a BN -> flatten -> FC head to the
teacher's 128-d space. Its input is normalised like the teacher's (``dlib_resnet_torch.preprocess``).
``forward_with_maps`` also returns every block's output before its
final ReLU, the tensors attention similarity is computed on; ``block_info`` names their
(stage, channels, spatial size) like the teacher port does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

@dataclass(frozen=True)
class CompactSpec:
    input_size: int = 48
    widths: tuple[int, ...] = (32, 64, 128, 256)
    blocks: tuple[int, ...] = (2, 2, 2, 1)
    embedding_dim: int = 128
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> CompactSpec:
        d = dict(data)
        for key in ("widths", "blocks"):
            if key in d:
                d[key] = tuple(int(x) for x in d[key])
        return cls(**d)

    def stage_sizes(self) -> list[int]:
        size = (self.input_size + 1) // 2  # the stem's strided conv
        sizes = []
        for stage in range(len(self.widths)):
            if stage > 0:
                size = (size + 1) // 2
            sizes.append(size)
        return sizes


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip: nn.Module
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.skip = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output BEFORE the final ReLU."""
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return y + self.skip(x)


class CompactStudent(nn.Module):
    def __init__(self, spec: CompactSpec | None = None):
        super().__init__()
        self.spec = spec or CompactSpec()
        s = self.spec
        w0 = s.widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(3, w0, 3, 1, 1, bias=False),
            nn.BatchNorm2d(w0),
            nn.ReLU(inplace=True),
            nn.Conv2d(w0, w0, 3, 2, 1, bias=False),
            nn.BatchNorm2d(w0),
            nn.ReLU(inplace=True),
        )
        blocks: list[nn.Module] = []
        info: list[tuple[int, int, int]] = []
        cin = w0
        sizes = s.stage_sizes()
        for stage, (width, n) in enumerate(zip(s.widths, s.blocks)):
            for j in range(n):
                stride = 2 if (stage > 0 and j == 0) else 1
                blocks.append(_Block(cin, width, stride))
                info.append((stage, width, sizes[stage]))
                cin = width
        self.blocks = nn.ModuleList(blocks)
        self.block_info: list[tuple[int, int, int]] = info
        last = sizes[-1]
        self.head = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.Dropout(s.dropout) if s.dropout > 0 else nn.Identity(),
            nn.Flatten(),
            nn.Linear(cin * last * last, s.embedding_dim),
        )

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = []
        y = self.stem(x)
        for block in self.blocks:
            pre = block(y)
            maps.append(pre)
            y = torch.relu(pre)
        return self.head(y), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        for block in self.blocks:
            y = torch.relu(block(y))
        return self.head(y)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
