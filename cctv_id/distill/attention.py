"""Attention maps and the A-SKD attention-similarity loss.

For plain ResNets (dlib's teacher, the compact student) the maps come from every residual
block's output BEFORE its final ReLU:

- spatial attention: the channel-mean of squares, ``mean_c f^2`` -> ``(N, H, W)``;
- channel attention: the per-channel spatial mean, ``mean_hw f`` -> ``(N, C)``;

each flattened per sample and standardised (zero mean, unit std over the layer), so layers
of different magnitude weigh alike. Where the student's map is smaller than the teacher's,
the teacher's spatial map is average-pooled to the student's size; where channel widths
differ, only the spatial term is used. Only stages whose maps are at least ``min_size``
(~5x5) take part: the 3x3 and 1x1 stages of a 150 px ResNet carry no spatial information.

For models with CBAM modules (the paper recipe) the maps are CBAM's channel and spatial
attention logits before the sigmoid; ``askd_loss`` takes either kind, as pairs of tensors.

The loss is A-SKD's: ``lambda * sum over paired blocks of (1 - cos(S_s, S_t)) + (1 - cos(C_s,
C_t))``, averaged over the batch. The teacher side is always detached, so gradients flow only
into the student.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def standardise(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-sample z-score of ``(N, ...)`` flattened to ``(N, D)``."""
    flat = x.reshape(x.shape[0], -1).float()
    mean = flat.mean(dim=1, keepdim=True)
    std = flat.std(dim=1, keepdim=True, unbiased=False)
    return (flat - mean) / (std + eps)


def spatial_map(features: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """``(N, C, H, W)`` -> standardised spatial attention ``(N, h*w)``, pooled to ``size``."""
    m = features.float().pow(2).mean(dim=1, keepdim=True)
    if size is not None and m.shape[-1] != size:
        m = F.adaptive_avg_pool2d(m, size)
    return standardise(m)


def channel_map(features: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` -> standardised channel attention ``(N, C)``."""
    return standardise(features.float().mean(dim=(2, 3)))


@dataclass(frozen=True)
class BlockPair:
    """One student block matched with one teacher block."""

    student: int  # index into the student's block list
    teacher: int  # index into the teacher's block list
    size: int  # spatial size the maps are compared at (the student's)
    channel: bool  # whether the channel term applies (equal widths)


def pair_blocks(
    student_info: list[tuple[int, int, int]],
    teacher_info: list[tuple[int, int, int]],
    min_size: int = 5,
) -> list[BlockPair]:
    """Pair blocks stage by stage (stage index, channels, size tuples from ``block_info``).

    Within a stage, student block j of n_s is paired with teacher block
    ``ceil((j + 1) * n_t / n_s) - 1`` of n_t, so the last blocks always meet. Stages where
    either map is smaller than ``min_size`` are left out.
    """
    pairs: list[BlockPair] = []
    stages = sorted({s for s, _, _ in student_info} & {s for s, _, _ in teacher_info})
    for stage in stages:
        s_idx = [i for i, b in enumerate(student_info) if b[0] == stage]
        t_idx = [i for i, b in enumerate(teacher_info) if b[0] == stage]
        for j, si in enumerate(s_idx):
            k = -(-(j + 1) * len(t_idx) // len(s_idx)) - 1
            ti = t_idx[k]
            s_size, t_size = student_info[si][2], teacher_info[ti][2]
            if min(s_size, t_size) < min_size:
                continue
            pairs.append(BlockPair(si, ti, min(s_size, t_size), student_info[si][1] == teacher_info[ti][1]))
    return pairs


def teacher_targets(maps: list[torch.Tensor], pairs: list[BlockPair]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """The teacher's standardised (spatial, channel) maps per pair, detached (cacheable)."""
    out = []
    with torch.no_grad():
        for p in pairs:
            f = maps[p.teacher]
            out.append((spatial_map(f, p.size), channel_map(f) if p.channel else None))
    return out


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``1 - cos`` per sample of ``(N, D)`` tensors."""
    return 1.0 - F.cosine_similarity(a.float(), b.float(), dim=1, eps=1e-8)


def askd_loss(
    student_maps: list[torch.Tensor],
    targets: list[tuple[torch.Tensor, torch.Tensor | None]],
    pairs: list[BlockPair],
    weight: float = 1.0,
) -> torch.Tensor:
    """``weight`` x sum over pairs of (1 - cos) spatial + channel terms, batch mean."""
    if not pairs:
        return student_maps[0].new_zeros(())
    total = student_maps[0].new_zeros((student_maps[0].shape[0],), dtype=torch.float32)
    for p, (t_spatial, t_channel) in zip(pairs, targets):
        f = student_maps[p.student]
        total = total + cosine_distance(spatial_map(f, p.size), t_spatial.detach())
        if p.channel and t_channel is not None:
            total = total + cosine_distance(channel_map(f), t_channel.detach())
    return weight * total.mean()


def cbam_askd_loss(
    student: list[tuple[torch.Tensor, torch.Tensor]],
    teacher: list[tuple[torch.Tensor, torch.Tensor]],
    weight: float = 5.0,
) -> torch.Tensor:
    """The paper's form for CBAM models: per block (channel logits, spatial logits) pairs of
    student and teacher (before the sigmoid), flattened per sample; ``weight`` x sum of
    ``(1 - cos)`` over blocks and both maps, batch mean."""
    total = None
    for (cs, ss), (ct, st) in zip(student, teacher):
        n = cs.shape[0]
        term = cosine_distance(cs.reshape(n, -1), ct.detach().reshape(n, -1))
        term = term + cosine_distance(ss.reshape(n, -1), st.detach().reshape(n, -1))
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no attention maps given")
    return weight * total.mean()
