"""The shipped student re-evaluated: its figures must match the metrics in weights/MANIFEST.yaml.

A slow test (the real protocols on the real test split, people the student never saw): Yale B
hard light at 16 px, AT&T at native size, and CelebA hr-lr verification at 16 px on folds
1-3, each against the figure recorded when the weights were shipped.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("dlib")

from cctv_id.recognize.manifest import model_entry  # noqa: E402
from cctv_id.recognize.student import DEFAULT_STUDENT  # noqa: E402

CHECKED = [("yaleb", 16.0), ("att", 0.0), ("celeba", 16.0)]


def recorded(set_name: str, size: float, recognizer: str = "student", landmarks: str = "full") -> float:
    rows = model_entry(DEFAULT_STUDENT)["metrics"]["results"]
    hit = [r for r in rows if r["label"] == "student" and r["set"] == set_name and float(r["size"]) == size
           and r["recognizer"] == recognizer and r["landmarks"] == landmarks]  # not the ablation rows
    assert hit, f"no MANIFEST metric for {set_name} at {size} px"
    return float(hit[0]["value"])


@pytest.mark.slow
@pytest.mark.parametrize("set_name,size", CHECKED)
def test_shipped_student_matches_manifest(shared_data, set_name, size):
    from cctv_id.distill.data import split_people
    from cctv_id.evaluate import protocols
    from cctv_id.evaluate.recognizers import build_recognizer

    faces = shared_data / "faces"
    people = split_people(faces, [set_name], val_people=0, seed=0)[set_name]["test"]
    recognizer = build_recognizer("student")
    if set_name == "celeba":
        got = protocols.verification(faces / "celeba" / "pairs.txt", faces / "celeba", size, "hr-lr",
                                     recognizer, "full", folds="1-3")["accuracy"]
    elif set_name == "yaleb":
        got = protocols.yaleb_hard_light(faces / "yaleb", size, recognizer, "full", people=people)["rank1"]
    else:
        got = protocols.att(faces / "att", size, recognizer, "full", people=people)["rank1"]
    assert got == pytest.approx(recorded(set_name, size), abs=0.003)
