"""Re-embedding stored faces when the recogniser changes (``cctv-id reembed``).

Owns recomputing, with the current recogniser, every stored embedding another model made:

- tracks: from the saved best-shot crop (``tracks.crop_path`` under data_dir) aligned on its
  stored landmarks (``tracks.crop_landmarks``); a track stored without landmarks has its face
  found again in the crop (the crop is the face box grown by one box per side, so the face
  nearest the centre is the one); a track without a readable crop or face gets no embedding
  (NULL) and is reported; a track stored without an embedding (a face too small to identify)
  keeps none and only takes the current model's name. Written in batches (new index sequence numbers, epoch bump), so an
  interrupted run resumes where it stopped;
- enrolments: from the stored photo copy (or the original photo when it still exists with
  the same sha256); the old model's rows of a re-embedded photo are replaced in one
  transaction with one watchlist generation bump; photos that cannot be read are reported and
  keep their old rows (never mixed in: a watchlist is always read for one model).

Then the FAISS caches under data_dir are brought in step and one "reembed" audit entry
records the counts.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import InputError

log = logging.getLogger(__name__)

DETECT_FACE_PX = 120.0  # crops are enlarged so that their face is about this tall to find it


def _read(path: Path):
    from .watchlist.enrol import read_image

    try:
        return read_image(path)
    except InputError:
        return None


def _find_landmarks(crop: np.ndarray, detector) -> np.ndarray | None:
    """Landmarks (5, 2) of the face nearest the centre of ``crop``, in crop coordinates."""
    import cv2

    h, w = crop.shape[:2]
    scale = max(1.0, DETECT_FACE_PX / max(h / 3.0, 1.0))
    big = cv2.resize(crop, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC) \
        if scale > 1.0 else crop
    dets = detector.detect(big)
    if len(dets) == 0:
        return None
    centres = (dets.boxes[:, :2] + dets.boxes[:, 2:]) / 2.0
    target = np.array([big.shape[1] / 2.0, big.shape[0] / 2.0], np.float32)
    i = int(np.argmin(np.linalg.norm(centres - target, axis=1)))
    return dets.landmarks[i] / scale


def _encoder_for(encoder, face_px: float):
    return encoder.encoder_for(face_px) if hasattr(encoder, "encoder_for") else encoder


def embed_track_crop(track: dict, data_dir: Path, encoder, detector_factory: Callable
                     ) -> tuple[np.ndarray | None, str]:
    """(embedding or None, how): how is "landmarks", "detected", "no crop" or "no face"."""
    if not track.get("crop_path"):
        return None, "no crop"
    crop = _read(Path(data_dir) / track["crop_path"])
    if crop is None:
        return None, "no crop"
    lms = track.get("crop_landmarks")
    how = "landmarks"
    if lms is None:
        lms = _find_landmarks(crop, detector_factory())
        how = "detected"
        if lms is None:
            return None, "no face"
    lms = np.asarray(lms, np.float32).reshape(1, 5, 2)
    emb = _encoder_for(encoder, track["max_face_px"]).embed_faces(crop, lms)
    return emb.vectors[0], how


def enrolment_image(entry: dict, data_dir: Path):
    """The enrolment photo to re-embed: the stored copy, else the original if unchanged."""
    if entry.get("stored_photo"):
        img = _read(Path(data_dir) / entry["stored_photo"])
        if img is not None:
            return img
    original = Path(entry.get("photo_path") or "")
    if entry.get("photo_path") and original.is_file():
        if hashlib.sha256(original.read_bytes()).hexdigest() == entry["photo_sha256"]:
            return _read(original)
    return None


def reembed(repo, data_dir: Path, encoder, detector_factory: Callable, operator: str,
            batch: int = 64, progress: Callable[[int], None] | None = None) -> dict:
    """Re-embed every stored track and enrolment not made by ``encoder`` (see module doc).

    ``detector_factory()`` returns a photo detector (called at most once, only when needed).
    ``progress(n)`` is told every n items done (tracks, then enrolment photos).
    """
    from .watchlist.enrol import choose_face

    model = encoder.name
    if batch < 1:
        raise InputError("--batch must be at least 1")
    cached = {}

    def detector():
        if "d" not in cached:
            cached["d"] = detector_factory()
        return cached["d"]

    done = {"model": model, "n_tracks": 0, "n_tracks_landmarks": 0, "n_tracks_detected": 0,
            "n_tracks_unembedded": 0, "tracks_failed": [], "n_enrolments": 0, "enrolments_failed": []}
    models_before = repo.embedding_models()
    last_id = 0
    while True:
        todo = repo.tracks_to_reembed(model, limit=batch, after_id=last_id)
        if not todo:
            break
        updates = []
        for t in todo:
            if not t["embedded"]:  # never embedded (too small to identify): stays so
                updates.append((t["id"], None))
                done["n_tracks_unembedded"] += 1
                continue
            vector, how = embed_track_crop(t, data_dir, encoder, detector)
            updates.append((t["id"], vector))
            if vector is None:
                done["tracks_failed"].append({"track_id": t["id"], "reason": how})
            else:
                done[f"n_tracks_{how}"] += 1
        repo.set_track_embeddings(model, updates)
        done["n_tracks"] += len(todo)
        last_id = todo[-1]["id"]
        if progress:
            progress(len(todo))

    items = []
    for entry in repo.enrolments_to_reembed(model):
        image = enrolment_image(entry, data_dir)
        if image is None:
            done["enrolments_failed"].append({"person": entry["person"],
                                              "photo_sha256": entry["photo_sha256"],
                                              "reason": "photo not found"})
        else:
            dets = detector().detect(image)
            try:
                i = choose_face(dets, entry["stored_photo"] or entry["photo_path"], largest=True)
            except InputError:
                done["enrolments_failed"].append({"person": entry["person"],
                                                  "photo_sha256": entry["photo_sha256"],
                                                  "reason": "no face"})
            else:
                emb = encoder.embed_faces(image, dets.landmarks[i:i + 1])
                items.append({**entry, "embedding": emb.vectors[0],
                              "face_px": float(dets.heights[i])})
        if progress:
            progress(1)
    replaced = repo.replace_enrolment_models(model, items)
    done["n_enrolments"] = len(items)
    done["n_enrolment_rows_removed"] = replaced["n_old_removed"]

    from .governance import refresh_indexes

    done["indexes"] = refresh_indexes(repo, data_dir)
    done["models_before"] = models_before
    done["models_after"] = repo.embedding_models()
    repo.record_audit(operator, "reembed", params={"model": model, "batch": batch},
                      outcome={k: done[k] for k in ("n_tracks", "n_tracks_landmarks",
                                                    "n_tracks_detected", "n_tracks_unembedded",
                                                    "n_enrolments")}
                      | {"n_tracks_failed": len(done["tracks_failed"]),
                         "n_enrolments_failed": len(done["enrolments_failed"])})
    return done


def count_todo(repo, model: str) -> tuple[int, int]:
    """(tracks, enrolment photos) that :func:`reembed` would recompute for ``model``."""
    return len(repo.tracks_to_reembed(model)), len(repo.enrolments_to_reembed(model))
