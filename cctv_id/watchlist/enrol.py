"""Enrolment: photos -> one face each -> teacher embedding -> database (+ a stored copy).

All photos of a command are checked first (readable, exactly one face, or the largest
with ``largest=True``) and only then written, in one transaction per photo batch, so a bad
photo leaves the watchlist as it was. Faces much smaller than the main face in a photo
(under ``BACKGROUND_RATIO`` of its height) are treated as background people.

Each enrolled photo is copied under ``data_dir`` as ``enrolments/<person id>/<sha256><ext>``
(``enrolments.stored_photo``; what re-embedding and the web pages read). Same protocol as the
evidence crops: the copy is written as ``<name>.pending`` before the database transaction,
renamed into place after it commits, removed if it fails. Stored photos that no enrolment
references any more (re-enrolment with ``replace``) are deleted after the commit.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import CctvIdError, EnrolmentError, InputError
from ..types import FaceDetections

BACKGROUND_RATIO = 0.5
STORED_PHOTOS_DIR = "enrolments"
PENDING_SUFFIX = ".pending"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class EnrolmentItem:
    person: str
    photo_path: Path
    photo_sha256: str
    face_px: float
    embedding: np.ndarray


def read_image(path: Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such photo: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"cannot read image {path}: not a supported image file")
    return image


def photos_from_dir(root: Path) -> list[tuple[str, Path]]:
    """(person, photo) pairs from ``root/<person>/<photo>``."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"no such folder: {root}")
    pairs = []
    for person_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        photos = sorted(p for p in person_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        pairs += [(person_dir.name, p) for p in photos]
    if not pairs:
        raise InputError(f"no photos found under {root} (expected one sub-folder per person)")
    return pairs


def choose_face(dets: FaceDetections, photo: Path, largest: bool) -> int:
    if len(dets) == 0:
        raise EnrolmentError(f"no face found in {photo}")
    heights = dets.heights
    main = int(np.argmax(heights))
    rivals = np.nonzero(heights >= BACKGROUND_RATIO * heights[main])[0]
    if len(rivals) > 1 and not largest:
        boxes = ", ".join(
            "[" + ",".join(str(int(round(v))) for v in dets.boxes[i]) + "]" for i in rivals
        )
        raise EnrolmentError(
            f"{len(rivals)} faces found in {photo} (boxes {boxes}); "
            "crop the photo or pass --largest to use the largest face"
        )
    return main


def prepare(photos: list[tuple[str, Path]], detector, encoder, largest: bool = False
            ) -> list[EnrolmentItem]:
    """Check every photo and compute its embedding; raises on the first bad photo."""
    items = []
    for person, photo in photos:
        if not person.strip():
            raise InputError("person name must not be empty")
        image = read_image(photo)
        dets = detector.detect(image)
        i = choose_face(dets, photo, largest)
        emb = encoder.embed_faces(image, dets.landmarks[i:i + 1])
        sha = hashlib.sha256(Path(photo).read_bytes()).hexdigest()
        items.append(EnrolmentItem(person.strip(), Path(photo), sha, float(dets.heights[i]),
                                   emb.vectors[0]))
    return items


def stored_photo_relpath(person_id: int, photo: Path, sha256: str) -> str:
    ext = Path(photo).suffix.lower()
    ext = ext if ext in IMAGE_SUFFIXES else ".img"
    return f"{STORED_PHOTOS_DIR}/{int(person_id)}/{sha256}{ext}"


def _write_pending(data_dir: Path, rel: str, source: Path) -> Path:
    final = Path(data_dir) / rel
    pending = final.with_name(final.name + PENDING_SUFFIX)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(pending, "wb") as fh:
            fh.write(Path(source).read_bytes())
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        try:
            pending.unlink(missing_ok=True)
        except OSError:  # e.g. its folder could not be made: nothing was written
            pass
        raise CctvIdError(f"cannot store enrolment photo {final}: {exc.strerror or exc}") from exc
    return pending


def delete_stored_photos(data_dir: Path, rels) -> int:
    """Delete stored photo files (relative paths) and their emptied person folders."""
    n = 0
    for rel in rels:
        path = Path(data_dir) / rel
        if path.is_file():
            path.unlink()
            n += 1
        try:
            path.parent.rmdir()  # only when empty
        except OSError:
            pass
    return n


def commit(repo, items: list[EnrolmentItem], model: str, data_dir: Path | None = None,
           operator: str | None = None, replace: bool = False) -> dict:
    """Store ``items`` (photo copies under ``data_dir`` when given) in one transaction.

    ``replace``: the persons' previous enrolments (every model) and their stored photos go.
    ``operator``: the enrolment is audited in the same transaction. Returns the repository's
    :meth:`~cctv_id.store.persons.PersonsMixin.enrol` result plus "n_photos_stored".
    """
    rows, pendings = [], {}  # final path -> pending file
    try:
        for it in items:
            row = dict(person_name=it.person, photo_path=str(it.photo_path.resolve()),
                       photo_sha256=it.photo_sha256, model=model, embedding=it.embedding,
                       face_px=it.face_px)
            if data_dir is not None:
                # the person row first (harmless alone: it does not change the watchlist)
                rel = stored_photo_relpath(repo.add_person(it.person), it.photo_path,
                                           it.photo_sha256)
                final = Path(data_dir) / rel
                if final not in pendings:
                    pendings[final] = _write_pending(data_dir, rel, it.photo_path)
                row["stored_photo"] = rel
            rows.append(row)
        result = repo.enrol(rows, operator=operator, replace=replace)
    except BaseException:
        for pending in pendings.values():
            pending.unlink(missing_ok=True)
        raise
    for final, pending in pendings.items():
        os.replace(pending, final)
    if data_dir is not None:
        delete_stored_photos(data_dir, result["orphaned_photos"])
    return {**result, "n_photos_stored": len(pendings)}
