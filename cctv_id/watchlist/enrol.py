"""Enrolment: photos -> one face each -> teacher embedding -> database.

All photos of a command are checked first (readable, exactly one face, or the largest
with ``largest=True``) and only then written, in one transaction per photo batch, so a bad
photo leaves the watchlist as it was. Faces much smaller than the main face in a photo
(under ``BACKGROUND_RATIO`` of its height) are treated as background people.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import EnrolmentError, InputError
from ..types import FaceDetections

BACKGROUND_RATIO = 0.5
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


def commit(repo, items: list[EnrolmentItem], model: str) -> list[int]:
    return repo.add_enrolments([
        dict(person_name=it.person, photo_path=str(it.photo_path.resolve()),
             photo_sha256=it.photo_sha256, model=model, embedding=it.embedding,
             face_px=it.face_px)
        for it in items
    ])
