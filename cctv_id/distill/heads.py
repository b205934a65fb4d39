"""Margin classification heads over the training identities: ArcFace and CosFace.

Each head owns one weight row per class (``(num_classes, embedding_size)``, normal init: the
rows are normalised before use, so only their directions matter) and turns embeddings into
scaled margin logits for ``F.cross_entropy``:

- ArcFace (additive angular margin): ``s * cos(theta + m)`` at the label, ``s * cos(theta)``
  elsewhere; where ``theta + m`` would pass pi (``cos theta <= cos(pi - m)``) the target logit
  is ``s * (cos theta - m sin(pi - m))`` instead, insightface's monotone fallback;
- CosFace (additive cosine margin): ``s * (cos theta - m)`` at the label.

Cosines are computed in float32 whatever the embeddings' dtype (the heads are called outside
autocast by the trainers, but work inside it too).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

HEADS = ("arcface", "cosface")


class _MarginHead(nn.Module):
    def __init__(self, embedding_size: int, num_classes: int, s: float, m: float, device=None):
        super().__init__()
        if num_classes < 1 or embedding_size < 1:
            raise ConfigError(f"a margin head needs at least one class and dimension, got {num_classes} x {embedding_size}")
        self.weight = nn.Parameter(torch.randn(num_classes, embedding_size, device=device) * 0.01)
        self.s, self.m = float(s), float(m)

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``(B, num_classes)`` cosines between the embeddings and the class rows."""
        return F.normalize(embeddings.float(), dim=1) @ F.normalize(self.weight.float(), dim=1).T

    def extra_repr(self) -> str:
        n, d = self.weight.shape
        return f"embedding_size={d}, num_classes={n}, s={self.s}, m={self.m}"


class ArcFace(_MarginHead):
    def __init__(self, embedding_size: int, num_classes: int, s: float = 32.0, m: float = 0.5, device=None):
        super().__init__(embedding_size, num_classes, s, m, device)
        self.cos_m, self.sin_m = math.cos(m), math.sin(m)
        self.th = math.cos(math.pi - m)  # cos theta above this: theta + m stays below pi
        self.mm = math.sin(math.pi - m) * m

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosines(embeddings)
        idx = labels.long()[:, None]
        target = cos.gather(1, idx)
        sin = torch.sqrt((1.0 - target * target).clamp(min=1e-9))
        with_margin = target * self.cos_m - sin * self.sin_m
        target = torch.where(target > self.th, with_margin, target - self.mm)
        return self.s * cos.scatter(1, idx, target)


class CosFace(_MarginHead):
    def __init__(self, embedding_size: int, num_classes: int, s: float = 30.0, m: float = 0.35, device=None):
        super().__init__(embedding_size, num_classes, s, m, device)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosines(embeddings)
        onehot = torch.zeros_like(cos).scatter_(1, labels.long()[:, None], 1.0)
        return self.s * (cos - self.m * onehot)


def build_head(
    name: str,
    embedding_size: int,
    num_classes: int,
    s: float | None = None,
    m: float | None = None,
    device=None,
) -> ArcFace | CosFace:
    """The head ``name`` ("arcface" or "cosface"); ``s``/``m`` default to the head's own."""
    classes = {"arcface": ArcFace, "cosface": CosFace}
    if name not in classes:
        raise ConfigError(f"unknown head {name!r}; choose from {', '.join(HEADS)}")
    kwargs = {k: v for k, v in (("s", s), ("m", m)) if v is not None}
    return classes[name](embedding_size, num_classes, device=device, **kwargs)
