#!/usr/bin/env python
"""Derive where RetinaFace's 5 landmarks fall in dlib's own 150 px face chip.

dlib's ResNet expects chips made by ``dlib.get_face_chip(img, shape, size=150, padding=0.25)``
from its 5-point shape predictor (eye corners + nose base). Our pipeline has RetinaFace
landmarks (eye centres, nose tip, mouth corners). For each CelebA image: dlib HOG detector ->
``shape_predictor_5_face_landmarks`` -> ``get_face_chip`` -> RetinaFace on the chip (padded
with a replicated border so the face is not cut by the image edge) -> its 5 points in chip
pixels. The per-coordinate median over all images is ``DLIB_150_TEMPLATE`` in
``cctv_id/recognize/dlib_resnet.py``.

Usage: python tools/derive_dlib_template.py [--celeba DIR] [--n 600]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cctv_id.recognize.offline_landmarks import detect_landmarks  # noqa: E402

PAD = 75


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--celeba", default=str(REPO.parent / "shared" / "data" / "faces" / "celeba"))
    ap.add_argument("--n", type=int, default=600, help="number of images (one per identity, cycling)")
    args = ap.parse_args(argv)

    import dlib
    import face_recognition_models as frm

    detector = dlib.get_frontal_face_detector()
    sp5 = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())

    root = Path(args.celeba)
    ids = sorted(p for p in root.iterdir() if p.is_dir())
    images: list[Path] = []
    k = 0
    while len(images) < args.n and k < 50:
        for d in ids:
            files = sorted(d.glob("*.jpg"))
            if k < len(files):
                images.append(files[k])
            if len(images) >= args.n:
                break
        k += 1

    found = []
    n_nodlib = n_noretina = 0
    for path in images:
        bgr = cv2.imread(str(path))
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        dets = detector(rgb, 1)
        if len(dets) == 0:
            n_nodlib += 1
            continue
        det = max(dets, key=lambda r: r.width() * r.height())
        shape = sp5(rgb, det)
        chip = dlib.get_face_chip(rgb, shape, size=150, padding=0.25)
        chip_bgr = cv2.copyMakeBorder(chip[..., ::-1], PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
        _, scores, lms = detect_landmarks(chip_bgr, score_threshold=0.5)
        if len(lms) == 0:
            n_noretina += 1
            continue
        centres = lms.mean(axis=1) - PAD
        best = int(np.argmin(np.linalg.norm(centres - 75.0, axis=1)))
        found.append(lms[best] - PAD)
    pts = np.stack(found)
    med = np.median(pts, axis=0)
    q1, q3 = np.percentile(pts, [25, 75], axis=0)
    print(f"images: {len(images)}, used: {len(pts)}, no dlib face: {n_nodlib}, no RetinaFace on chip: {n_noretina}")
    names = ["left eye", "right eye", "nose tip", "left mouth", "right mouth"]
    for name, m, a, b in zip(names, med, q1, q3):
        print(f"  {name:12s} x={m[0]:7.2f} (IQR {a[0]:6.2f}..{b[0]:6.2f})  y={m[1]:7.2f} (IQR {a[1]:6.2f}..{b[1]:6.2f})")
    print("DLIB_150_TEMPLATE = np.array([")
    for m in med:
        print(f"    [{m[0]:.2f}, {m[1]:.2f}],")
    print("], dtype=np.float32)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
