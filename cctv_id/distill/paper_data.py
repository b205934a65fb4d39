"""Batches for the paper trainer: which faces, in which order, flipped or not, at what size.

Owns the resumable part of the data path. All randomness lives in ``EpochBatches``, a batch
sampler whose epoch order is torch's ``DistributedSampler`` (seed + epoch; one shard per
process under torchrun, a single shard otherwise) and whose per-sample flips come from a
NumPy generator seeded by ``(seed, epoch, rank)``. A run resumed at step ``k`` therefore sees
exactly the batches an uninterrupted one would: ``set_epoch(epoch, start_batch)`` skips the
first batches of the epoch without reading them. The loader's workers only decode, resize
and make the LR faces (``faces112.PairCollate`` with its own flips off), so neither their
number nor their seeds change a batch.

The images (``faces112.Faces112``: RecordIO or a folder) are resized to the model's input
size when it is not 112.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..errors import InputError
from .faces112 import Faces112, PairCollate, resize_face


class FlippedFaces(Dataset):
    """``base[idx]`` looked up by ``(idx, flip)`` keys, mirrored when ``flip``, at ``size`` px."""

    def __init__(self, base: Dataset, size: int):
        self.base = base
        self.size = size

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, bool]) -> tuple[np.ndarray, int]:
        idx, flip = key
        image, label = self.base[int(idx)]
        if flip:
            image = image[:, ::-1]
        return np.ascontiguousarray(resize_face(image, self.size)), int(label)


class EpochBatches:
    """Batch sampler of ``(index, flip)`` keys, ``batch_size`` per process, last partial batch
    dropped. ``set_epoch(e, start)`` selects epoch ``e`` and skips its first ``start`` batches."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1, flip: bool = True,
                 limit: int | None = None):
        self.n = n if limit is None else min(n, limit)
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.flip = flip
        self.sampler = DistributedSampler(range(self.n), num_replicas=world_size, rank=rank, shuffle=True,
                                          seed=seed, drop_last=True)
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start = epoch, start_batch
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def epoch_keys(self) -> list[tuple[int, bool]]:
        """Every key of the current epoch for this process, in order."""
        order = list(self.sampler)
        rng = np.random.default_rng([self.seed, self.epoch, self.rank])
        flips = rng.random(len(order)) < 0.5 if self.flip else np.zeros(len(order), bool)
        return [(int(i), bool(f)) for i, f in zip(order, flips)]

    def __iter__(self) -> Iterator[list[tuple[int, bool]]]:
        keys = self.epoch_keys()
        b = self.batch_size
        for k in range(self.start, len(self)):
            yield keys[k * b:(k + 1) * b]


def open_faces(root: Path) -> Faces112:
    """The training faces under ``root`` (``InputError`` when missing or unusable)."""
    if not root.exists():
        raise InputError(f"training faces not found: {root} (insightface's train.rec + train.idx, "
                         "or one sub-folder of images per identity)")
    return Faces112(root)


def make_loader(items: FlippedFaces, batches: EpochBatches, lr_size: int, blur: bool, num_workers: int,
                pin_memory: bool, seed: int) -> DataLoader:
    """The DataLoader over ``batches``; yields ``(hr, lr, labels)`` (``lr is hr`` at full size).

    It gets its own generator so that starting an epoch does not draw from torch's global
    generator (whose state a checkpoint restores for dropout)."""
    return DataLoader(
        items,
        batch_sampler=batches,
        num_workers=num_workers,
        collate_fn=PairCollate(lr_size, blur=blur, flip=False),
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
