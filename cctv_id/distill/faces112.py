"""The paper recipe's training faces: 112x112 aligned chips, and their HR/LR batches.

Owns the A-SKD paper's data path (insightface's ``faces_webface_112x112`` and the like):

- ``Faces112``: a torch ``Dataset`` of ``(BGR uint8 (112, 112, 3), class id)`` over either
  insightface's RecordIO layout (``root/train.rec`` + ``train.idx``, optional ``property``)
  or a plain folder ``root/<identity>/*.jpg|jpeg|png`` (identities in sorted order get
  labels 0..K-1; identities without images get none).
- ``to_tensor``: ``(x - 127.5) / 127.5`` in BGR order, as the authors' cv2 + ToTensor +
  Normalize(0.5, 0.5) pipeline gives.
- ``make_lr``: the authors' low-resolution faces: nearest down to ``size``, nearest back up,
  then a fixed anisotropic 5x5 Gaussian blur (sigma x 0.1, y 2.0: in effect a vertical blur).
- ``PairCollate``: the DataLoader ``collate_fn`` making ``(hr, lr, labels)``, one random
  horizontal flip per sample applied before the LR is made.

insightface's RecordIO layout: record 0 is a header whose labels ``(a, b)`` say that records
``1..a-1`` are the images and records ``a..b-1`` one per identity (each labelled with the
range of its images), so there are ``b - a`` classes; ``property`` reads ``K,112,112``.
Without such a header every record is an image and the class count comes from
``property`` (or, failing that, from a scan of the labels).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, get_worker_info

from ..errors import InputError
from .recordio import RecordIOReader, image_label

SIZE = 112
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
BLUR_KERNEL = (5, 5)  # (x, y), as torchvision's gaussian_blur takes them
BLUR_SIGMA = (0.1, 2.0)  # (x, y)


def _read_property(path: Path) -> int | None:
    if not path.is_file():
        return None
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        num_classes = int(text.split(",")[0])
    except ValueError:
        raise InputError(f"{path} should read 'num_classes,height,width', got {text[:40]!r}") from None
    if num_classes < 1:
        raise InputError(f"{path} says {num_classes} classes")
    return num_classes


class Faces112(Dataset):
    """Aligned 112x112 training faces with integer class ids."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._reader: RecordIOReader | None = None
        self._keys: np.ndarray | range = range(0)
        self._paths: np.ndarray = np.empty(0, dtype=str)
        self._labels: np.ndarray = np.empty(0, dtype=np.int64)
        rec = self.root if self.root.suffix == ".rec" else self.root / "train.rec"
        if rec.is_file():
            self.num_classes = self._open_recordio(rec)
        elif self.root.is_dir():
            self.num_classes = self._open_folder()
        else:
            raise InputError(f"training faces not found: {self.root}")

    def _open_recordio(self, rec: Path) -> int:
        reader = self._reader = RecordIOReader(rec)
        prop_path = rec.parent / "property"
        declared = _read_property(prop_path)
        header = reader.read_header(0) if 0 in reader else None
        if header is not None and header.flag >= 2:
            first_id, end = int(header.label[0]), int(header.label[1])
            if not 1 <= first_id <= end:
                raise InputError(f"{rec}: header record 0 gives an impossible range ({first_id}, {end})")
            self._keys = range(1, first_id)
            keys = np.asarray(reader.keys, dtype=np.int64)  # unique: the index is a mapping
            present = int(np.count_nonzero((keys >= 1) & (keys < first_id)))
            if present != len(self._keys):
                raise InputError(
                    f"{reader.idx_path} has {present} of the {len(self._keys)} image records "
                    f"(keys 1..{first_id - 1}) that {rec.name}'s header announces"
                )
            num_classes = end - first_id
            if declared is not None and declared != num_classes:
                raise InputError(
                    f"{prop_path} says {declared} classes but {rec.name}'s header has {num_classes} identities"
                )
        else:
            self._keys = np.asarray(reader.keys, dtype=np.int64)
            num_classes = declared if declared is not None else self._scan_classes()
        if len(self._keys) == 0:
            raise InputError(f"{rec} holds no image records")
        return num_classes

    def _scan_classes(self) -> int:
        assert self._reader is not None
        return 1 + max(image_label(self._reader.read_header(int(k))) for k in self._keys)

    def _open_folder(self) -> int:
        paths: list[str] = []
        labels: list[int] = []
        people = sorted(p for p in self.root.iterdir() if p.is_dir())
        label = 0
        for person in people:
            images = sorted(p for p in person.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())
            if images:
                paths += [str(p) for p in images]
                labels += [label] * len(images)
                label += 1
        if not paths:
            raise InputError(
                f"no images in {self.root} (expected train.rec + train.idx, or one sub-folder of images per identity)"
            )
        self._paths = np.asarray(paths)  # numpy, not lists: forked workers do not copy it page by page
        self._labels = np.asarray(labels, dtype=np.int64)
        return int(self._labels[-1]) + 1

    def __len__(self) -> int:
        return len(self._keys) if self._reader is not None else len(self._paths)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} faces")
        if self._reader is not None:
            key = int(self._keys[i])
            image, label = self._reader.read_image(key)
            if not 0 <= label < self.num_classes:
                raise InputError(
                    f"{self._reader.rec_path}: record {key} has label {label}, outside 0..{self.num_classes - 1}"
                )
        else:
            path = str(self._paths[i])
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                raise InputError(f"cannot read image {path}")
            label = int(self._labels[i])
        return resize_face(image, SIZE), label


def resize_face(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` at ``size x size`` (area when shrinking, bilinear when growing)."""
    if image.shape[:2] == (size, size):
        return image
    shrink = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def to_tensor(images_bgr_uint8: np.ndarray) -> torch.Tensor:
    """``(B, H, W, 3)`` or ``(H, W, 3)`` uint8 -> float ``(B, 3, H, W)`` in [-1, 1], BGR kept."""
    x = np.asarray(images_bgr_uint8)
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 images of shape (B, H, W, 3) or (H, W, 3), got {x.dtype} {x.shape}")
    t = torch.from_numpy(np.ascontiguousarray(x if x.ndim == 4 else x[None]))
    return (t.permute(0, 3, 1, 2).float() - 127.5) / 127.5


def _gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    half = (size - 1) * 0.5
    x = torch.linspace(-half, half, steps=size)
    pdf = torch.exp(-0.5 * (x / sigma).pow(2))
    return pdf / pdf.sum()


def blur_kernel() -> torch.Tensor:
    """The fixed ``(5, 5)`` kernel (rows: y) of the authors' ``gaussian_blur([5, 5], [0.1, 2.0])``."""
    kx = _gaussian_1d(BLUR_KERNEL[0], BLUR_SIGMA[0])
    ky = _gaussian_1d(BLUR_KERNEL[1], BLUR_SIGMA[1])
    return ky[:, None] @ kx[None, :]


def gaussian_blur(x: torch.Tensor) -> torch.Tensor:
    """The authors' blur of ``(B, C, H, W)``: reflect padding, depthwise convolution."""
    channels = x.shape[1]
    kernel = blur_kernel().to(dtype=x.dtype, device=x.device)
    kernel = kernel.expand(channels, 1, *kernel.shape)
    pad_x, pad_y = BLUR_KERNEL[0] // 2, BLUR_KERNEL[1] // 2
    padded = F.pad(x, [pad_x, pad_x, pad_y, pad_y], mode="reflect")
    return F.conv2d(padded, kernel, groups=channels)


def make_lr(hr: torch.Tensor, size: int, blur: bool = True) -> torch.Tensor:
    """The paper's LR face of ``hr (B, 3, H, W)``: nearest to ``size``, nearest back, blur.

    ``size`` equal to the input's (112) returns ``hr`` itself, unblurred (teacher training).
    """
    if hr.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(hr.shape)}")
    full = tuple(hr.shape[-2:])
    if full == (size, size):
        return hr
    lr = F.interpolate(F.interpolate(hr, size=size), size=full)
    return gaussian_blur(lr) if blur else lr


class PairCollate:
    """``collate_fn`` turning ``[(image, label), ...]`` into ``(hr, lr, labels)`` tensors.

    Each sample is flipped left-right with probability 1/2 (when ``flip``) before its LR is
    made, so HR and LR show the same view; ``lr_size`` 112 gives ``lr is hr``.

    Random streams: in the main process (``num_workers=0``) the flips come from one generator
    seeded with ``seed``. In a DataLoader worker they come from a generator seeded with
    ``(seed, worker_info.seed)``, created on the worker's first batch; ``worker_info.seed`` is
    ``base_seed + worker_id`` and the DataLoader draws ``base_seed`` afresh for every
    iterator (epoch) from its ``generator=`` (or torch's global RNG). So workers and epochs
    get distinct streams, and a run is reproducible when the DataLoader is given a seeded
    ``generator`` (or ``torch.manual_seed`` is called first).
    """

    def __init__(self, lr_size: int, blur: bool = True, flip: bool = True, seed: int = 0):
        if seed < 0:
            raise ValueError("seed must be >= 0")
        self.lr_size = int(lr_size)
        self.blur = blur
        self.flip = flip
        self.seed = int(seed)
        self._generator: torch.Generator | None = None
        self._owner: tuple[int, int | None] | None = None

    def generator(self) -> torch.Generator:
        """This process's flip generator (see the class docstring)."""
        info = get_worker_info()
        owner = (os.getpid(), None if info is None else info.seed)
        if self._generator is None or self._owner != owner:
            seed = self.seed
            if info is not None:
                seed = int(np.random.SeedSequence([self.seed, info.seed]).generate_state(1, np.uint64)[0])
            self._generator = torch.Generator().manual_seed(seed)
            self._owner = owner
        return self._generator

    def __call__(self, batch: Sequence[tuple[np.ndarray, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images = np.stack([image for image, _ in batch])
        labels = torch.as_tensor([int(label) for _, label in batch], dtype=torch.long)
        hr = to_tensor(images)
        if self.flip:
            flipped = torch.rand(len(batch), generator=self.generator()) < 0.5
            hr[flipped] = hr[flipped].flip(-1)
        lr = make_lr(hr, self.lr_size, self.blur)
        return hr, lr, labels

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_generator"] = state["_owner"] = None  # spawn workers build their own
        return state
