#!/usr/bin/env python
"""Calibrate a recogniser's per-band thresholds on CelebA impostor pairs -> weights/MANIFEST.yaml.

Protocol: see cctv_id/recognize/calibrate.py. About 600 images x 6 resolutions through dlib
take ~5 minutes on one core.

Usage: python tools/calibrate_thresholds.py [--backend dlib] [--celeba DIR] [--max-people N] [--dry-run]
       python tools/calibrate_thresholds.py --backend student --gallery-backend dlib-torch \
           --people-file weights/askd-student-v2.test-people.txt --per-person 4
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    from cctv_id.config import RecognizerConfig
    from cctv_id.recognize.base import build_encoder
    from cctv_id.recognize.calibrate import calibrate, write_to_manifest

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="dlib")
    ap.add_argument("--model-path", default=None)
    ap.add_argument("--gallery-backend", default=None,
                    help="recogniser of the full-size gallery (a student is calibrated against its teacher: dlib-torch)")
    ap.add_argument("--people-file", default=None, help="only these CelebA people (one name per line)")
    ap.add_argument("--celeba", default=str(REPO.parent / "shared" / "data" / "faces" / "celeba"))
    ap.add_argument("--per-person", type=int, default=2)
    ap.add_argument("--max-people", type=int, default=None)
    ap.add_argument("--manifest", default=str(REPO / "weights" / "MANIFEST.yaml"))
    ap.add_argument("--model-name", default=None, help="manifest entry (default: the encoder's name)")
    ap.add_argument("--dry-run", action="store_true", help="print the results, do not write the manifest")
    args = ap.parse_args(argv)

    encoder = build_encoder(RecognizerConfig(backend=args.backend, model_path=args.model_path, small_faces=None))
    gallery = (build_encoder(RecognizerConfig(backend=args.gallery_backend, small_faces=None))
               if args.gallery_backend else None)
    people = None
    if args.people_file:
        people = {ln.strip() for ln in Path(args.people_file).read_text().splitlines() if ln.strip()}
    result = calibrate(encoder, args.celeba, per_person=args.per_person, max_people=args.max_people,
                       gallery_encoder=gallery, people=people)
    print(json.dumps(result, indent=1))
    if not args.dry_run:
        write_to_manifest(args.manifest, args.model_name or encoder.name, result)
        print(f"written to {args.manifest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
