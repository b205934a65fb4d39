"""End to end through the CLI: enrol CelebA people, process a composite street clip with
known faces, and check detection recall per face size, hit recall and precision against the
ground truth, one hit per track, times and boxes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

import street_scenario as S

START = datetime(2026, 5, 1, 8, 0, 0, tzinfo=timezone.utc)


def cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "cctv_id.cli.main", *args],
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"cctv-id {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def street(tmp_path_factory, celeba_dir, vtest_path):
    out = tmp_path_factory.mktemp("street")
    scenario = S.build(out, celeba_dir, vtest_path, seconds=15.0)
    db = f"sqlite:///{out / 'hits.db'}"
    for person, photos in scenario.enrol_photos.items():
        cli("--db", db, "enroll", "--largest", "--name", person, *map(str, photos))
    run = cli("--db", db, "process", str(scenario.video), "--camera", "street",
              "--start-time", START.isoformat(), "--no-progress")
    hits = json.loads(cli("--db", db, "hits", "--format", "json").stdout)
    return scenario, db, run, hits


def test_detection_recall_per_face_size(street):
    from cctv_id.config import DetectorConfig
    from cctv_id.detect.base import build_detector
    from cctv_id.video.source import open_video

    scenario = street[0]
    detector = build_detector(DetectorConfig())
    found = {}
    with open_video(scenario.video, stride=3) as source:
        for frame in source:
            found[frame.index] = detector.detect(frame.image, frame.index)
    recall = S.detection_recall(scenario.truth, found)
    print("detection recall per band:", recall)
    minimum = {"9-14": 0.6, "14-20": 0.85, "20-30": 0.9, "30-45": 0.9}
    for band, (hit, total) in recall.items():
        assert total > 0, f"no ground-truth faces in band {band}"
        assert hit / total >= minimum[band], f"recall {hit}/{total} in band {band}"


def test_enrolled_people_with_usable_faces_are_found(street):
    scenario, _, _, hits = street
    named = {h["person"] for h in hits}
    # the enrolled people whose faces reach 24 px or more must all be found
    for name, _, _, _, _, px0, px1 in S.SCHEDULE:
        if name in S.ENROLLED and max(px0, px1) >= 24:
            assert name in named, f"no hit for enrolled person {name} ({hits})"


def test_no_wrong_or_stranger_hits(street):
    scenario, _, _, hits = street
    truth = scenario.truth
    actors = {a.name: a for a in truth.actors}
    for h in hits:
        assert h["person"] in S.ENROLLED
        assert h["person"] not in S.STRANGERS
        actor = actors[h["person"]]
        # seen while that person was in the clip (within a second)
        assert h["first_seen_s"] >= actor.start_s - 1.0
        assert h["last_seen_s"] <= actor.end_s + 1.0
        # the best shot box is where that person's face was drawn in that frame
        frame = round(h["best_shot_s"] * truth.fps)
        faces = {f.name: f for f in truth.faces_at(frame)}
        assert h["person"] in faces, f"{h['person']} not in frame {frame}"
        assert S.box_contains(faces[h["person"]].box, S.center(h["best_shot_bbox"]))


def test_one_hit_per_track_and_wall_clock_times(street):
    hits = street[3]
    keys = [(h["run_id"], h["track_id"]) for h in hits]
    assert len(keys) == len(set(keys))
    for h in hits:
        first = datetime.fromisoformat(h["first_seen_at"].replace("Z", "+00:00"))
        assert abs(first - (START + timedelta(seconds=h["first_seen_s"]))) < timedelta(milliseconds=5)
        assert h["camera"] == "street"
        assert 0 < h["score"] <= 1 and h["face_px"] > 0
        assert h["last_seen_s"] >= h["first_seen_s"]


def test_queries_filter_and_formats(street):
    _, db, _, hits = street
    person = hits[0]["person"]
    only = json.loads(cli("--db", db, "hits", "--person", person, "--format", "json").stdout)
    assert only and {h["person"] for h in only} == {person}
    late = json.loads(cli("--db", db, "hits", "--since", (START + timedelta(seconds=8)).isoformat(),
                          "--format", "json").stdout)
    assert all(datetime.fromisoformat(h["last_seen_at"].replace("Z", "+00:00"))
               >= START + timedelta(seconds=8) for h in late)
    assert len(late) < len(hits)
    rows = list(csv.DictReader(io.StringIO(cli("--db", db, "hits", "--format", "csv").stdout)))
    assert len(rows) == len(hits) and "best_shot_bbox" in rows[0]
    table = cli("--db", db, "hits").stdout
    assert person in table
    persons = json.loads(cli("--db", db, "persons", "--format", "json").stdout)
    assert {p["name"] for p in persons} == set(S.ENROLLED)


def test_unknown_tracks_are_stored_with_embeddings(street):
    from cctv_id.store.repository import Repository

    repo = Repository(street[1])
    tracks = repo.list_tracks()
    unknown = [t for t in tracks if t["status"] == "unknown"]
    assert unknown, "strangers should be stored as unknown tracks"
    assert all(t["embedding"] is not None and t["dim"] == 128 for t in unknown)
    run = repo.list_runs()[0]
    assert run["status"] == "completed"
    assert run["source_sha256"] and set(run["model_sha256s"]) == {"detector", "recognizer", "recognizer_small"}
    repo.close()


def test_fast_preset_finds_the_same_people(street, tmp_path):
    scenario, _, _, hits = street
    db = f"sqlite:///{tmp_path / 'fast.db'}"
    for person, photos in scenario.enrol_photos.items():
        cli("--db", db, "enroll", "--largest", "--name", person, *map(str, photos))
    cli("--db", db, "process", str(scenario.video), "--preset", "fast", "--camera", "street",
        "--start-time", START.isoformat(), "--no-progress")
    fast = json.loads(cli("--db", db, "hits", "--format", "json").stdout)
    assert {h["person"] for h in fast} == {h["person"] for h in hits}
    assert len(fast) == len({(h["run_id"], h["track_id"]) for h in fast})
