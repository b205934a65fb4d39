"""Open-set thresholds per face-size band, calibrated on impostor pairs (HR gallery vs LR probe).

Protocol (``PROTOCOL`` below is written into ``weights/MANIFEST.yaml`` with the numbers):

- Data: CelebA identity subset (``../shared/data/faces/celeba``), ``per_person`` images per
  identity (the first ones, in file-name order, on which RetinaFace finds a face).
- Landmarks and face size come from RetinaFace-MobileNet0.25 on the full-size image
  (``offline_landmarks.detect_landmarks``, best-scoring face); face size = its box height,
  the unit the pipeline's detector reports (``types.py``: face_px). On CelebA it is about
  1.27x dlib's HOG box height (median; IQR 1.19-1.36 over 118 images), the unit of the
  DESIGN.md anchors, so "10 px" here is roughly 8 px there.
- Gallery: every image at full size, aligned and embedded once.
- Probe at band b: every image shrunk so that its face box height is the band's
  representative size (area averaging), enlarged back (bicubic), aligned with the
  full-size landmarks, embedded.
- Pairs: gallery image x vs probe image y for all x != y. Same identity -> genuine,
  different identity -> impostor. Score: cosine of L2-normalised embeddings.
- Threshold at FMR f: the smallest cosine t such that at most a fraction f of impostor
  pairs score >= t (rule: match iff cosine >= t), rounded up to 1e-4. TAR: fraction of
  genuine pairs scoring >= t.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..align import shrink_and_restore
from .base import FaceEncoder
from .offline_landmarks import detect_landmarks


@dataclass(frozen=True)
class BandSpec:
    name: str
    min_px: float
    max_px: float | None  # None: no upper bound
    rep_px: float  # face height the probes are shrunk to for this band


# Face-size bands (face_px = detector box height in the frame). Below 10 px the decision
# stage marks faces "too_small" by default (DecisionConfig.min_identify_px), so the lowest
# band is calibrated at 10 px. Representatives sit inside each band, near its middle.
BANDS: tuple[BandSpec, ...] = (
    BandSpec("lt12", 0.0, 12.0, 10.0),
    BandSpec("12-16", 12.0, 16.0, 14.0),
    BandSpec("16-24", 16.0, 24.0, 20.0),
    BandSpec("24-40", 24.0, 40.0, 32.0),
    BandSpec("ge40", 40.0, None, 64.0),
)
FMRS: tuple[float, ...] = (1e-3, 1e-2)

PROTOCOL = {
    "name": "celeba-hr-vs-lr-v1",
    "data": "CelebA identity subset (../shared/data/faces/celeba), first per_person images per identity with a RetinaFace face",
    "face_px": "RetinaFace-MobileNet0.25 box height on the full-size image",
    "gallery": "full-size image, aligned with RetinaFace landmarks",
    "probe": "whole image shrunk (INTER_AREA) so the face box height = band rep_px, enlarged back (INTER_CUBIC), aligned with the full-size landmarks",
    "pairs": "every gallery image vs every probe image of another image; same identity = genuine, different = impostor",
    "score": "cosine similarity of L2-normalised embeddings; match iff score >= threshold",
    "threshold": "smallest t with (impostor pairs >= t) / n_impostor <= fmr, rounded up to 1e-4",
}


@dataclass
class Item:
    person: str
    path: Path
    landmarks: np.ndarray  # (5, 2)
    face_px: float


def select_items(celeba_dir: str | Path, per_person: int = 2, max_people: int | None = None,
                 people_filter: set[str] | None = None) -> list[Item]:
    root = Path(celeba_dir)
    items: list[Item] = []
    people = sorted(p for p in root.iterdir() if p.is_dir() and (people_filter is None or p.name in people_filter))
    n_people = 0
    for person in people:
        chosen: list[Item] = []
        for path in sorted(person.glob("*.jpg")):
            image = cv2.imread(str(path))
            if image is None:
                continue
            boxes, _, lms = detect_landmarks(image)
            if len(boxes) == 0:
                continue
            chosen.append(Item(person.name, path, lms[0], float(boxes[0, 3] - boxes[0, 1])))
            if len(chosen) == per_person:
                break
        if len(chosen) == per_person:
            items.extend(chosen)
            n_people += 1
            if max_people is not None and n_people >= max_people:
                break
    return items


def embed_items(
    encoder: FaceEncoder, items: list[Item], rep_px: float | None, log=None
) -> np.ndarray:
    """Embeddings ``(len(items), D)``; probes degraded to ``rep_px`` (None: full size)."""
    chips = np.zeros((len(items), encoder.align_spec.size, encoder.align_spec.size, 3), np.uint8)
    for i, item in enumerate(items):
        image = cv2.imread(str(item.path))
        if rep_px is not None:
            image = shrink_and_restore(image, face_px=item.face_px, target_px=rep_px)
        chips[i] = encoder.align(image, item.landmarks[None])[0]
    t0 = time.time()
    out = []
    step = 64
    for s in range(0, len(chips), step):
        out.append(encoder.embed_chips(chips[s : s + step]).vectors)
        if log:
            log(f"  {rep_px or 'full'}: {min(s + step, len(chips))}/{len(chips)} ({time.time() - t0:.0f} s)")
    return np.concatenate(out, axis=0)


def pair_scores(gallery: np.ndarray, probes: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) cosine scores over all gallery x probe pairs of different images."""
    sims = gallery @ probes.T
    lab = np.asarray(labels)
    same = lab[:, None] == lab[None, :]
    diag = np.eye(len(lab), dtype=bool)
    return sims[same & ~diag].astype(np.float64), sims[~same].astype(np.float64)


def threshold_at_fmr(impostor: np.ndarray, fmr: float) -> float:
    """Smallest t (rounded up to 1e-4) with mean(impostor >= t) <= fmr."""
    s = np.sort(np.asarray(impostor, np.float64))[::-1]
    k = int(math.floor(fmr * len(s)))  # allowed false matches
    if k >= len(s):
        return -1.0
    t = math.ceil(s[k] * 1e4 + 1e-9) / 1e4  # strictly above the (k+1)-th highest impostor
    if t <= s[k]:
        t += 1e-4
    return round(t, 4)


def calibrate(
    encoder: FaceEncoder,
    celeba_dir: str | Path,
    bands: tuple[BandSpec, ...] = BANDS,
    fmrs: tuple[float, ...] = FMRS,
    per_person: int = 2,
    max_people: int | None = None,
    log=None,
    gallery_encoder: FaceEncoder | None = None,
    people: set[str] | None = None,
) -> dict:
    """Run the protocol; returns ``{"thresholds": [...], "reference_full": {...}, "protocol": {...}}``.

    ``gallery_encoder`` embeds the full-size gallery (default: ``encoder``), ``encoder`` the
    shrunk probes: a student that lives in its teacher's space is calibrated against the
    teacher's gallery, as the pipeline uses it. ``people`` restricts the identities (a
    trained model is calibrated on people it never saw).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    items = select_items(celeba_dir, per_person, max_people, people)
    labels = [it.person for it in items]
    log(f"{len(items)} images of {len(set(labels))} people; face_px median {np.median([i.face_px for i in items]):.0f}")
    gallery = embed_items(gallery_encoder or encoder, items, None, log)
    rows = []
    full_probes = gallery if gallery_encoder is None or gallery_encoder is encoder else embed_items(encoder, items, None, log)
    gen, imp = pair_scores(gallery, full_probes, labels)
    reference = {"n_genuine": int(len(gen)), "n_impostor": int(len(imp))}
    for fmr in fmrs:
        t = threshold_at_fmr(imp, fmr)
        reference[f"fmr_{fmr:g}"] = {"threshold": t, "tar": round(float(np.mean(gen >= t)), 4)}
    log(f"full vs full: {reference}")
    for band in bands:
        probes = embed_items(encoder, items, band.rep_px, log)
        gen, imp = pair_scores(gallery, probes, labels)
        for fmr in fmrs:
            t = threshold_at_fmr(imp, fmr)
            row = {
                "band": band.name,
                "min_px": band.min_px,
                "max_px": band.max_px,
                "rep_px": band.rep_px,
                "fmr": fmr,
                "threshold": t,
                "tar": round(float(np.mean(gen >= t)), 4),
                "measured_fmr": round(float(np.mean(imp >= t)), 6),
                "n_impostor": int(len(imp)),
                "n_genuine": int(len(gen)),
            }
            rows.append(row)
            log(f"  {row}")
    protocol = dict(PROTOCOL)
    if gallery_encoder is not None and gallery_encoder is not encoder:
        protocol["gallery"] = f"full-size image embedded by {gallery_encoder.name}, aligned with RetinaFace landmarks"
        protocol["probe_recognizer"] = encoder.name
        protocol["reference_full"] = "full-size probes embedded by the probe recogniser against the gallery"
    if people is not None:
        protocol["people"] = "the people of the model's test split only (never trained on)"
    protocol["n_people"] = len(set(labels))
    protocol["n_images"] = len(items)
    protocol["bands"] = {b.name: {"min_px": b.min_px, "max_px": b.max_px, "rep_px": b.rep_px} for b in bands}
    return {"thresholds": rows, "reference_full": reference, "protocol": protocol}


def write_to_manifest(manifest_path: str | Path, model_name: str, result: dict) -> None:
    """Store ``result`` under ``models.<model_name>`` in the manifest, keeping everything else."""
    import yaml

    path = Path(manifest_path)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    data = data or {}
    models = data.setdefault("models", {})
    entry = models.setdefault(model_name, {})
    entry["thresholds"] = result["thresholds"]
    entry["calibration"] = {"protocol": result["protocol"], "reference_full": result["reference_full"]}
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=120), encoding="utf-8")
