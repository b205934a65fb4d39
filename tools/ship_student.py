#!/usr/bin/env python
"""Ship a trained student: copy its weights into weights/, write its MANIFEST entry.

    python tools/ship_student.py RUN_DIR --report runs/report.json [--name askd-student-v2]

The entry records the file and its sha256 (checked at load), the teacher, the training data
and its terms of use, the by-person split, the resolved recipe, the training time and the
evaluation figures of ``tools/student_report.py``. Thresholds are added afterwards by
``tools/calibrate_thresholds.py --backend student --gallery-backend dlib-torch ...``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--report", required=True)
    ap.add_argument("--name", default="askd-student-v2")
    ap.add_argument("--manifest", default=str(REPO / "weights" / "MANIFEST.yaml"))
    args = ap.parse_args(argv)
    run = Path(args.run_dir)
    src = run / "student.pt"
    if not src.is_file():
        print(f"error: {src} not found (train to the end first)", file=sys.stderr)
        return 1
    dst = REPO / "weights" / f"{args.name}.pt"
    shutil.copyfile(src, dst)
    sha = hashlib.sha256(dst.read_bytes()).hexdigest()
    import torch

    payload = torch.load(dst, map_location="cpu", weights_only=True)
    split = json.loads((run / "split.json").read_text())
    recipe = json.loads((run / "recipe.json").read_text())
    report = json.loads(Path(args.report).read_text())
    people_file = REPO / "weights" / f"{args.name}.test-people.txt"
    people_file.write_text("\n".join(split["celeba"]["test"]) + "\n")
    data = yaml.safe_load(Path(args.manifest).read_text())
    old = data["models"].get(args.name, {})
    entry = {
        "role": "recognizer",
        "file": dst.name,
        "sha256": sha,
        "source": f"trained by this project: cctv-id train --recipe pipelines/distill/{recipe['name']}.yaml",
        "licence": "research use only (trained on CelebA, which is licensed for non-commercial research only; "
                   "Extended Yale B and AT&T: research use with credit)",
        "model_card": "Low-resolution student distilled from dlib's ResNet v1 for faces of 10-32 px. Research use "
                      "only. Trained and judged on small public sets (a few hundred identities): its figures say "
                      "how it behaves on those, not on a deployment's cameras.",
        "teacher": {"name": "dlib-resnet-v1", "sha256": payload.get("teacher_sha256")},
        "architecture": f"{payload['arch']} (input {payload['align']['size']} px)",
        "input_size": payload["align"]["size"],
        "normalisation": payload["normalisation"],
        "alignment": "DLIB_150 template scaled to the input size (cctv_id.recognize.dlib_resnet), bilinear, black border",
        "dim": 128,
        "precision": "fp16 weights, computed in fp32",
        "training_data": {
            "sets": recipe["data"]["sets"],
            "terms": {"celeba": "CelebA: non-commercial research use only", "yaleb": "Extended Yale B: research use, cite",
                      "att": "AT&T/ORL: credit Olivetti Research Laboratory"},
            "split": "by person: CelebA test = the people of pairs.txt folds 1-3, Yale B test = every other person "
                     "(yaleB01, yaleB03, ...), AT&T test = s1-s20; 12 CelebA training people held out for validation",
            "n_train_people": {k: len(v["train"]) for k, v in split.items()},
            "n_test_people": {k: len(v["test"]) for k, v in split.items()},
            "test_people_file": people_file.name,
        },
        "recipe": recipe,
        "train_seconds": payload.get("train_seconds"),
        "validation": payload.get("validation"),
        "metrics": {"protocol": "tools/student_report.py (cctv_id.evaluate protocols, pipeline alignment + cosine)",
                    "results": report["results"]},
    }
    for key in ("thresholds", "calibration"):
        if key in old:
            entry[key] = old[key]
    data["models"][args.name] = entry
    Path(args.manifest).write_text(yaml.safe_dump(data, sort_keys=False, width=120))
    print(f"shipped {dst} (sha256 {sha[:12]}...) as {args.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
