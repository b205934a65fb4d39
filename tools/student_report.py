#!/usr/bin/env python
"""Teacher vs student on the people the student never saw: every set, size and landmark mode.

Runs the ``cctv_id.evaluate`` protocols on the test split of ``cctv_id.distill.data``
(CelebA: folds 1-3 of pairs.txt, hr-lr verification; Yale B: hard light, every other person;
AT&T: s1-s20) and writes one JSON file with every figure plus a markdown table on stdout.

Usage:
  python tools/student_report.py --out runs/report.json [--weights runs/x/student.pt]
      [--recognizers dlib-torch,student,student-only] [--sizes 0,32,24,16,12]
      [--landmarks full,detected] [--sets celeba,yaleb,att]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def test_people(root: Path) -> dict[str, list[str]]:
    from cctv_id.distill.data import split_people

    split = split_people(root, ["celeba", "yaleb", "att"], val_people=0, seed=0)
    return {name: parts["test"] for name, parts in split.items()}


def run_one(set_name: str, root: Path, size: float, recognizer, landmarks: str, people) -> dict:
    from cctv_id.evaluate import protocols

    if set_name == "celeba":
        r = protocols.verification(root / "celeba" / "pairs.txt", root / "celeba", size, "hr-lr", recognizer,
                                   landmarks, folds="1-3")
        return {"metric": "accuracy", "value": r["accuracy"], "tar_at_far_1e-3": r.get("tar_at_far_1e-3"),
                "raw": r}
    if set_name == "yaleb":
        r = protocols.yaleb_hard_light(root / "yaleb", size, recognizer, landmarks, people=people)
    else:
        r = protocols.att(root / "att", size, recognizer, landmarks, people=people)
    return {"metric": "rank1", "value": r["rank1"], "raw": r}


def main(argv=None) -> int:
    from cctv_id.evaluate.recognizers import build_recognizer

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "faces"))
    ap.add_argument("--weights", default=None, help="student weights (default: the shipped student)")
    ap.add_argument("--recognizers", default="dlib-torch,student,student-only")
    ap.add_argument("--sizes", default="0,32,24,16,12")
    ap.add_argument("--landmarks", default="full,detected")
    ap.add_argument("--sets", default="celeba,yaleb,att")
    ap.add_argument("--label", default="", help="name of this model in the table (ablation rows)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    root = Path(args.data)
    people = test_people(root)
    results = []
    out = Path(args.out)
    if out.is_file():
        results = json.loads(out.read_text())["results"]
    done = {(r["label"], r["recognizer"], r["set"], r["size"], r["landmarks"]) for r in results}
    for rec_name in args.recognizers.split(","):
        weights = None if rec_name.startswith("dlib") else args.weights
        recognizer = build_recognizer(rec_name, weights)
        label = args.label or ("teacher" if rec_name.startswith("dlib") else "student")
        for set_name in args.sets.split(","):
            for landmarks in args.landmarks.split(","):
                for size in [float(s) for s in args.sizes.split(",")]:
                    key = (label, rec_name, set_name, size, landmarks)
                    if key in done:
                        continue
                    t0 = time.time()
                    r = run_one(set_name, root, size, recognizer, landmarks, people[set_name])
                    row = {"label": label, "recognizer": rec_name, "set": set_name, "size": size,
                           "landmarks": landmarks, "metric": r["metric"], "value": r["value"],
                           "tar_at_far_1e-3": r.get("tar_at_far_1e-3"), "seconds": round(time.time() - t0, 1),
                           "n": r["raw"].get("n_probes") or r["raw"].get("n_pairs"),
                           "n_undetected": r["raw"].get("n_undetected")}
                    results.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
                    out.write_text(json.dumps({"results": results}, indent=1))
    print(markdown(results))
    return 0


def markdown(results: list[dict]) -> str:
    sizes = sorted({r["size"] for r in results}, key=lambda s: (s != 0, -s))
    lines = ["| model | recogniser | set | landmarks | " + " | ".join("full" if s == 0 else f"{s:g} px" for s in sizes) + " |",
             "|---|---|---|---|" + "---|" * len(sizes)]
    keys = []
    for r in results:
        k = (r["label"], r["recognizer"], r["set"], r["landmarks"])
        if k not in keys:
            keys.append(k)
    for k in keys:
        cells = []
        for s in sizes:
            hit = [r for r in results if (r["label"], r["recognizer"], r["set"], r["landmarks"]) == k and r["size"] == s]
            cells.append(f"{100 * hit[0]['value']:.2f}" if hit else "")
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
