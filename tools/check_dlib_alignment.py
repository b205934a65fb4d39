#!/usr/bin/env python
"""Check DLIB_150 alignment against dlib's own: same-image cosine and pairs.txt accuracy.

For every image of one pairs.txt fold: embedding A = our path (RetinaFace landmarks + the
DLIB_150 template + cv2 warp), embedding B = dlib's path (HOG detector + 5-point shape
predictor + get_face_chip). Prints mean/min cosine(A, B) and each path's verification
accuracy on the fold (best threshold on the fold itself, same for both paths). Pairs where
either detector misses a face are dropped from both.

Usage: python tools/check_dlib_alignment.py [--fold 0] [--celeba DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def best_accuracy(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    best = (0.0, 0.0)
    for t in np.unique(scores):
        acc = float(np.mean((scores >= t) == same))
        if acc > best[0]:
            best = (acc, float(t))
    return best


def main(argv=None) -> int:
    import dlib
    import face_recognition_models as frm

    from cctv_id.config import RecognizerConfig
    from cctv_id.recognize.base import build_encoder
    from cctv_id.recognize.offline_landmarks import detect_landmarks

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--celeba", default=str(REPO.parent / "shared" / "data" / "faces" / "celeba"))
    ap.add_argument("--fold", type=int, default=0)
    args = ap.parse_args(argv)
    root = Path(args.celeba)
    lines = (root / "pairs.txt").read_text().split("\n")
    n_folds, n = map(int, lines[0].split())
    block = lines[1 + args.fold * 2 * n : 1 + (args.fold + 1) * 2 * n]

    def path(p, k):
        return root / p / f"{p}_{int(k):04d}.jpg"

    pairs = []
    for ln in block:
        f = ln.split()
        if len(f) == 3:
            pairs.append((path(f[0], f[1]), path(f[0], f[2]), True))
        elif len(f) == 4:
            pairs.append((path(f[0], f[1]), path(f[2], f[3]), False))

    enc = build_encoder(RecognizerConfig(backend="dlib"))
    detector = dlib.get_frontal_face_detector()
    sp5 = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    ours, theirs = {}, {}
    images = sorted({p for a, b, _ in pairs for p in (a, b)})
    for i, p in enumerate(images):
        img = cv2.imread(str(p))
        rgb = np.ascontiguousarray(img[..., ::-1])
        _, _, lms = detect_landmarks(img)
        dets = detector(rgb, 1)
        if len(lms) == 0 or len(dets) == 0:
            continue
        ours[p] = enc.embed_faces(img, lms[:1]).vectors[0]
        det = max(dets, key=lambda r: r.area())
        chip = dlib.get_face_chip(rgb, sp5(rgb, det), size=150, padding=0.25)
        theirs[p] = enc.embed_chips(np.ascontiguousarray(chip[None, ..., ::-1])).vectors[0]
        if (i + 1) % 200 == 0:
            print(f"{i + 1}/{len(images)}", file=sys.stderr, flush=True)
    common = [p for p in images if p in ours]
    cos = np.array([ours[p] @ theirs[p] for p in common])
    kept = [(a, b, s) for a, b, s in pairs if a in ours and b in ours]
    same = np.array([s for _, _, s in kept])
    s_ours = np.array([ours[a] @ ours[b] for a, b, _ in kept])
    s_theirs = np.array([theirs[a] @ theirs[b] for a, b, _ in kept])
    acc_o, t_o = best_accuracy(s_ours, same)
    acc_t, t_t = best_accuracy(s_theirs, same)
    print(f"fold {args.fold}: {len(images)} images, {len(common)} with both detections; pairs kept {len(kept)}/{len(pairs)}")
    print(f"cosine(our alignment, dlib alignment), same image: mean {cos.mean():.4f}, median {np.median(cos):.4f}, min {cos.min():.4f}, 5th pct {np.percentile(cos, 5):.4f}")
    print(f"verification accuracy: ours {acc_o * 100:.2f} % (t={t_o:.4f}), dlib's own {acc_t * 100:.2f} % (t={t_t:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
