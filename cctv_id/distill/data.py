"""The training set: images split by person, annotations, cached teacher targets, degraded bank.

- ``split_people``: the fixed by-person split. Test people are never trained on: CelebA — the
  people of folds 1-3 of ``pairs.txt`` (the folds the anchors are measured on); Yale B — every
  other person in sorted order (yaleB01, yaleB03, ...); AT&T — s1..s20. A few CelebA training
  people are held out for validation (seeded).
- ``TeacherTargets``: the teacher's L2-normalised embedding of every full-size training face
  (and of its mirror image when flips are on) plus its standardised attention maps for the
  block pairs the student is trained on, and (feature hints) whole block outputs. Computed
  once and cached on disk (``$CCTV_ID_CACHE`` or ``~/.cache/cctv-id/distill``), keyed by the
  teacher's sha256, the images, the landmarks, the block pairs and the hinted blocks.
- ``build_bank``: ``variants_per_image`` degraded chips per training image at the student's
  input size, reproducible from the seed (a generator per image), cached on disk likewise.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..align import AlignSpec, align_faces
from ..errors import InputError
from ..evaluate.annotate import read_image
from .degrade import DegradeSettings, degrade_to_chip

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".pgm", ".bmp")
TIGHT_SETS = {"yaleb", "att"}  # tight crops: face size = image height


def cache_dir() -> Path:
    base = os.environ.get("CCTV_ID_CACHE")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "cctv-id"
    path = root / "distill"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Sample:
    dataset: str
    person: str
    path: Path
    landmarks: np.ndarray  # (5, 2) full-size image coordinates
    face_px: float


def _people(root: Path) -> list[str]:
    if not root.is_dir():
        raise InputError(f"training data folder not found: {root}")
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def celeba_test_people(celeba: Path, folds: tuple[int, ...] = (1, 2, 3)) -> set[str]:
    pairs = celeba / "pairs.txt"
    if not pairs.is_file():
        raise InputError(f"CelebA pairs file not found: {pairs}")
    lines = [ln.split() for ln in pairs.read_text().splitlines() if ln.strip()]
    n_folds, per_fold = int(lines[0][0]), int(lines[0][1])
    rows = lines[1:]
    people: set[str] = set()
    for f in folds:
        for row in rows[(f - 1) * 2 * per_fold : f * 2 * per_fold]:
            people.add(row[0])
            if len(row) == 4:
                people.add(row[2])
    return people


def split_people(root: Path, sets: list[str], val_people: int, seed: int) -> dict[str, dict[str, list[str]]]:
    """``{set: {"train": [...], "val": [...], "test": [...]}}`` by person."""
    out: dict[str, dict[str, list[str]]] = {}
    for name in sets:
        people = _people(root / name)
        if len(people) < 2:
            raise InputError(f"training set {root / name} needs at least 2 people, found {len(people)}")
        if name == "celeba":
            test = celeba_test_people(root / name)
        elif name == "yaleb":
            test = set(people[0::2])
        elif name == "att":
            test = {p for p in people if p.startswith("s") and p[1:].isdigit() and int(p[1:]) <= 20}
        else:  # pragma: no cover - the recipe restricts the names
            raise InputError(f"unknown training set {name}")
        rest = [p for p in people if p not in test]
        val: list[str] = []
        if name == "celeba" and val_people:
            rng = np.random.default_rng(seed)
            val = sorted(rng.choice(rest, size=min(val_people, len(rest) // 5), replace=False).tolist())
        train = [p for p in rest if p not in set(val)]
        out[name] = {"train": train, "val": val, "test": sorted(test)}
    return out


def list_images(root: Path, dataset: str, people: list[str], max_per_person: int | None = None) -> list[tuple[str, Path]]:
    items = []
    for person in people:
        files = sorted(p for p in (root / dataset / person).iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if max_per_person:
            files = files[:max_per_person]
        items.extend((person, f) for f in files)
    return items


def annotate_samples(root: Path, dataset: str, items: list[tuple[str, Path]], progress: bool = False) -> list[Sample]:
    """Landmarks and face size of every image (cached by ``cctv_id.evaluate.annotate``)."""
    from ..evaluate.annotate import annotate

    notes = annotate([p for _, p in items], tight=dataset in TIGHT_SETS, progress=progress)
    out = []
    for (person, path), note in zip(items, notes):
        if note.landmarks is None:
            continue
        out.append(Sample(dataset, person, path, np.asarray(note.landmarks, np.float32), float(note.face_px)))
    return out


def _key(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def samples_key(samples: list[Sample]) -> list:
    return [[s.dataset, str(s.path), np.round(s.landmarks, 3).tolist(), round(s.face_px, 3)] for s in samples]


# ------------------------------------------------------------------ teacher targets
@dataclass
class TeacherTargets:
    embeddings: np.ndarray  # (V, N, 128) float32, L2-normalised; V = 2 with flips (0: as is, 1: mirrored)
    spatial: list[np.ndarray]  # per block pair: (V, N, h*w) float16
    channel: list[np.ndarray | None]  # per block pair: (V, N, C) float16 or None
    features: list[np.ndarray] = ()  # per hinted block: (V, N, C*H*W) float16, before the relu


def hr_chips(samples: list[Sample], spec: AlignSpec) -> np.ndarray:
    chips = np.zeros((len(samples), spec.size, spec.size, 3), np.uint8)
    for i, s in enumerate(samples):
        chips[i] = align_faces(read_image(s.path), s.landmarks[None], spec)[0]
    return chips


def compute_teacher_targets(samples, teacher, teacher_sha: str, pairs, flip: bool, progress=None,
                            feature_blocks: tuple[int, ...] = ()) -> TeacherTargets:
    import torch

    from ..recognize.dlib_resnet import DLIB_150
    from ..recognize.models.dlib_resnet_torch import preprocess
    from .attention import teacher_targets as pair_targets

    key_parts = ["teacher-v1", teacher_sha, samples_key(samples), [p.__dict__ for p in pairs], flip]
    if feature_blocks:
        key_parts.append(["features", list(feature_blocks)])
    key = _key(*key_parts)
    path = cache_dir() / f"teacher-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            n = int(z["n_pairs"])
            spatial = [z[f"s{i}"] for i in range(n)]
            channel = [z[f"c{i}"] if f"c{i}" in z else None for i in range(n)]
            features = [z[f"f{i}"] for i in range(len(feature_blocks))]
            return TeacherTargets(z["emb"], spatial, channel, features)
    views = 2 if flip else 1
    n = len(samples)
    emb = np.zeros((views, n, 128), np.float32)
    spatial = [np.zeros((views, n, p.size * p.size), np.float16) for p in pairs]
    channel = [np.zeros((views, n, teacher.block_info[p.teacher][1]), np.float16) if p.channel else None for p in pairs]
    features = [np.zeros((views, n, teacher.block_info[b][1] * teacher.block_info[b][2] ** 2), np.float16)
                for b in feature_blocks]
    step = 32
    for start in range(0, n, step):
        chips = hr_chips(samples[start : start + step], DLIB_150)
        for v in range(views):
            batch = chips if v == 0 else chips[:, :, ::-1]
            with torch.inference_mode():
                e, maps = teacher.forward_with_maps(preprocess(np.ascontiguousarray(batch)))
                targets = pair_targets(maps, pairs)
            e = torch.nn.functional.normalize(e.float(), dim=1)
            emb[v, start : start + len(batch)] = e.numpy()
            for i, (sp, ch) in enumerate(targets):
                spatial[i][v, start : start + len(batch)] = sp.numpy().astype(np.float16)
                if ch is not None:
                    channel[i][v, start : start + len(batch)] = ch.numpy().astype(np.float16)
            for i, b in enumerate(feature_blocks):
                features[i][v, start : start + len(batch)] = maps[b].reshape(len(batch), -1).numpy().astype(np.float16)
        if progress:
            progress(min(start + step, n), n)
    arrays = {"emb": emb, "n_pairs": np.array(len(pairs))}
    for i in range(len(pairs)):
        arrays[f"s{i}"] = spatial[i]
        if channel[i] is not None:
            arrays[f"c{i}"] = channel[i]
    for i, f in enumerate(features):
        arrays[f"f{i}"] = f
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return TeacherTargets(emb, spatial, channel, features)


# ------------------------------------------------------------------ degraded bank
def build_bank(samples, spec: AlignSpec, settings: DegradeSettings, variants: int, seed: int, progress=None) -> np.ndarray:
    """``(N, variants, S, S, 3)`` uint8 degraded chips; generator per image seeded by (seed, i)."""
    key = _key("bank-v1", samples_key(samples), spec.size, spec.template, settings.__dict__, variants, seed)
    path = cache_dir() / f"bank-{key}.npy"
    if path.is_file():
        return np.load(path, mmap_mode=None)
    bank = np.zeros((len(samples), variants, spec.size, spec.size, 3), np.uint8)
    for i, s in enumerate(samples):
        image = read_image(s.path)
        rng = np.random.default_rng([seed, i])
        for k in range(variants):
            bank[i, k] = degrade_to_chip(image, s.landmarks, s.face_px, spec, rng, settings)
        if progress and (i % 64 == 0 or i == len(samples) - 1):
            progress(i + 1, len(samples))
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, bank)
    os.replace(tmp, path)
    return bank


def fixed_probe_chips(samples, spec: AlignSpec, target_px: float, seed: int) -> np.ndarray:
    """One clean (area-shrunk, no noise) chip per sample at ``target_px``: validation probes."""
    plain = DegradeSettings(blur_prob=0, noise_prob=0, jpeg_prob=0, h264_prob=0, restore_prob=0,
                            landmark_jitter=0, grey_prob=0, interpolations=("area",))
    out = np.zeros((len(samples), spec.size, spec.size, 3), np.uint8)
    for i, s in enumerate(samples):
        out[i] = degrade_to_chip(read_image(s.path), s.landmarks, s.face_px, spec,
                                 np.random.default_rng([seed, i]), plain, target_px=target_px)
    return out
