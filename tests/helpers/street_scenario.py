"""A composite street scene with known faces: CelebA people pasted into vtest.avi frames.

Used by the integration tests and the benchmarks. People were chosen once, by a rule, from
the first 60 CelebA identities in ../shared/data/faces/celeba: ENROLLED are people whose
first photo (pasted into the video) and next two photos (enrolled) agree under dlib at full
size (cosine >= 0.96), STRANGERS are people whose first photo is least like anyone else's
(max impostor cosine <= 0.88). The choice isolates what the pipeline adds (detection,
tracking, alignment of tiny faces) from look-alike failures of dlib itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2

from cctv_id.video.synth import FaceActor, GroundTruth, compose_video

ENROLLED = ["7201", "7218", "7230", "7254", "7247"]
STRANGERS = ["7213", "7233"]

# name, start_s, end_s, start (x, y), end (x, y), start_px, end_px
SCHEDULE = [
    ("7201", 0.0, 6.0, (90, 140), (650, 170), 40, 30),
    ("7218", 2.0, 9.0, (690, 260), (120, 240), 34, 26),
    ("7230", 6.0, 13.0, (80, 380), (620, 350), 30, 24),
    ("7254", 8.5, 14.8, (700, 200), (150, 190), 22, 16),
    ("7247", 1.0, 14.0, (120, 520), (640, 500), 14, 12),
    ("7213", 3.0, 11.0, (650, 470), (160, 440), 30, 28),
    ("7233", 4.0, 12.0, (200, 60), (600, 80), 12, 10),
]

# face-size bands for detection recall: [lo, hi)
DETECTION_BANDS = [(9, 14), (14, 20), (20, 30), (30, 45)]


@dataclass(frozen=True)
class Scenario:
    video: Path
    truth: GroundTruth
    enrol_photos: dict[str, list[Path]]  # person -> photos to enrol (never the pasted one)
    pasted_photos: dict[str, Path]


def person_photos(celeba_dir: Path, person: str) -> list[Path]:
    return sorted((Path(celeba_dir) / person).glob("*.jpg"))


def build(out_dir: Path, celeba_dir: Path, vtest: Path, seconds: float = 15.0,
          seed: int = 0) -> Scenario:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    actors, pasted = [], {}
    for name, t0, t1, xy0, xy1, px0, px1 in SCHEDULE:
        if t0 >= seconds:
            continue
        photo_path = person_photos(celeba_dir, name)[0]
        pasted[name] = photo_path
        actors.append(FaceActor(
            name=name, photo=cv2.imread(str(photo_path)), start_s=t0, end_s=min(t1, seconds),
            start_xy=xy0, end_xy=xy1, start_px=px0, end_px=px1, wobble_px=1.5,
        ))
    video = out_dir / "street.mp4"
    truth = compose_video(video, vtest, actors, fps=10.0, duration_s=seconds, seed=seed)
    truth.to_json(out_dir / "street.truth.json")
    enrol = {p: person_photos(celeba_dir, p)[1:3] for p in ENROLLED}
    return Scenario(video, truth, enrol, pasted)


def box_contains(box, point) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def center(box) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


def detection_recall(truth: GroundTruth, detections_by_frame: dict, bands=DETECTION_BANDS,
                     unsearched: dict | None = None) -> dict[str, tuple[int, int]]:
    """Per band: (found, total) ground-truth faces, a face counting as found when a detection's
    centre lies inside its box and the detection's box holds the face's centre. Faces whose
    centre lies in one of ``unsearched[frame]``'s rectangles (crops of tracks that rested in
    that detection round) are not counted: recall on the frames the detector searched them."""
    out = {f"{lo}-{hi}": [0, 0] for lo, hi in bands}
    unsearched = unsearched or {}
    for index, dets in detections_by_frame.items():
        for face in truth.faces_at(index):
            if face.visible < 0.9:
                continue
            if any(box_contains(r, center(face.box)) for r in unsearched.get(index, ())):
                continue
            key = next((f"{lo}-{hi}" for lo, hi in bands if lo <= face.face_px < hi), None)
            if key is None:
                continue
            out[key][1] += 1
            c = center(face.box)
            if any(box_contains(face.box, center(b)) and box_contains(b, c) for b in dets.boxes):
                out[key][0] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def person_at_best_shot(truth: GroundTruth, track: dict) -> str | None:
    """The ground-truth person whose face holds the centre of a stored track's best shot
    (``best_shot_bbox`` and ``best_shot_frame`` of a track row), or None."""
    if track["best_shot_bbox"] is None or track["best_shot_frame"] is None:
        return None
    c = center(track["best_shot_bbox"])
    for face in truth.faces_at(track["best_shot_frame"]):
        if box_contains(face.box, c):
            return face.name
    return None
