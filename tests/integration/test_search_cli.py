"""Investigator search through the real CLI on the shared processed street clip (``world``):
search --photo over known and unknown tracks, checked against the clip's ground truth;
filters; the audit log; models never mixed; tracks --unknown; timeline; bad input."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import cv2
import numpy as np
import pytest

from cli_run import one_error_line
from investigation import CAMERA, START
from cctv_id.store import Repository, TrackRecord
from cctv_id.store.models import HitRow


def truth_name(truth, track: dict) -> str | None:
    """Who the track really is: the ground-truth face under most of its trajectory points."""
    votes = Counter()
    points = track["trajectory"] or [[track["best_shot_frame"], *track["best_shot_bbox"]]]
    for frame, x1, y1, x2, y2 in points:
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        for face in truth.faces_at(int(frame)):
            bx1, by1, bx2, by2 = face.box
            if bx1 <= cx <= bx2 and by1 <= cy <= by2:
                votes[face.name] += 1
    return votes.most_common(1)[0][0] if votes else None


def _json(proc):
    return json.loads(proc.stdout)


def _tracks(world, *args) -> list[dict]:
    return _json(world.ok("tracks", "--format", "json", *args))


def _searches(world) -> list[dict]:
    repo = Repository(world.db_url)
    try:
        return repo.list_audit(action="search")
    finally:
        repo.close()


def test_search_by_photo_ranks_the_unknown_person_first(world):
    truth = world.scenario.truth
    by_id = {t["track_id"]: t for t in _tracks(world)}
    names = {tid: truth_name(truth, t) for tid, t in by_id.items()}
    assert "7218" in names.values(), names
    photo = world.photos("7218")[1]  # not the photo pasted into the clip
    assert photo != world.scenario.pasted_photos["7218"]
    proc = world.ok("--operator", "ann", "search", "--photo", str(photo), "--format", "json")
    results = _json(proc)
    repo = Repository(world.db_url)
    try:  # every track with an embedding is a candidate (too_small ones have none)
        searchable = [t for t in repo.list_tracks() if t["embedding"] is not None]
    finally:
        repo.close()
    assert len(results) == min(10, len(searchable))
    best = results[0]
    assert names[best["track_id"]] == "7218"
    assert best["person"] is None  # still unknown: 7218 was never enrolled
    assert set(best) >= {"track_id", "person", "score", "camera", "first_seen_s", "last_seen_s",
                         "first_seen_at", "run_id", "status", "n_detections", "max_face_px",
                         "crop_path", "source_path"}
    assert best["camera"] == CAMERA and best["first_seen_at"].endswith("Z")
    assert best["first_seen_s"] == pytest.approx(by_id[best["track_id"]]["first_seen_s"])
    # every track of 7218 that carries a usable face ranks above every track of someone else
    ranks = {r["track_id"]: r["rank"] for r in results}
    mine = [ranks[t] for t, n in names.items() if n == "7218" and t in ranks
            and by_id[t]["max_face_px"] >= 20]
    others = [ranks[t] for t, n in names.items() if n != "7218" and t in ranks]
    assert mine and max(mine) < min(others), (ranks, names)
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True) and -1.0 <= scores[-1] <= scores[0] <= 1.0
    # the search is audited once, by the operator, with what was asked and what came back
    (entry,) = _searches(world)
    assert entry["operator"] == "ann"
    assert entry["params"]["top"] == 10 and len(entry["params"]["photo_sha256"]) == 64
    assert entry["outcome"]["n_results"] == len(results)
    assert entry["outcome"]["track_ids"] == [r["track_id"] for r in results]
    # the index was cached beside the data, and a second search uses it (same answer)
    assert list((world.data_dir / "index").glob("tracks-*.faiss"))
    again = _json(world.ok("search", "--photo", str(photo), "--top", "3", "--format", "json"))
    assert [r["track_id"] for r in again] == [r["track_id"] for r in results[:3]]
    assert len(_searches(world)) == 2


def test_search_known_person_filters_and_models_never_mix(world):
    truth = world.scenario.truth
    # a track embedded by another recogniser, very like 7201's own: must not be searched
    repo = Repository(world.db_url)
    try:
        known = [t for t in repo.list_tracks() if t["best_person"] == "7201" and t["status"] == "matched"]
        assert known
        src = known[0]
        run = src["run_id"]
        cam = src["camera_id"]
        rec = TrackRecord(track_key=9999, status="unknown", first_frame=0, last_frame=5,
                          first_pts_s=0.0, last_pts_s=0.5, first_seen_at=START,
                          last_seen_at=START + timedelta(seconds=0.5), n_detections=6,
                          max_face_px=40.0, quality=0.5, model="other-recogniser",
                          embedding=src["embedding"])
        repo.save_track_results(run, cam, [rec])
        alien = [t["track_id"] for t in repo.list_tracks() if t["model"] == "other-recogniser"]
    finally:
        repo.close()
    photo = world.photos("7201")[1]
    proc = world.ok("search", "--photo", str(photo), "--camera", CAMERA, "--format", "json")
    results = _json(proc)
    assert results[0]["person"] == "7201" and results[0]["track_id"] == src["track_id"]
    assert truth_name(truth, src) == "7201"
    assert alien[0] not in [r["track_id"] for r in results]
    note = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(note) == 1 and "1 track(s)" in note[0] and "other-recogniser" in note[0] \
        and "cctv-id reembed" in note[0]
    # --since keeps exactly the tracks still seen at or after that time
    since = START + timedelta(seconds=8.7)
    proc = world.ok("search", "--photo", str(photo), "--since", since.isoformat(), "--top", "50",
                    "--format", "json")
    got = {r["track_id"] for r in _json(proc)}
    expected = {t["track_id"] for t in _tracks(world, "--since", since.isoformat())
                if t["model"] != "other-recogniser" and t["dim"] is not None}  # too small: no embedding
    assert got == expected and src["track_id"] not in got  # 7201 left at 5.9 s
    assert 0 < len(got) < len(_tracks(world))
    # nothing was seen after the clip: an empty list, not an error
    late = (START + timedelta(hours=1)).isoformat()
    assert _json(world.ok("search", "--photo", str(photo), "--since", late, "--format", "json")) == []
    assert len(_searches(world)) == 3


def test_search_bad_input_is_one_line(world, tmp_path, insightface_images):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 240, 3), 127, np.uint8))
    proc = world.cli("search", "--photo", str(blank))
    assert proc.returncode == 3 and "no face found" in one_error_line(proc)
    group = insightface_images / "t1.jpg"
    proc = world.cli("search", "--photo", str(group))
    assert proc.returncode == 3 and "faces found" in one_error_line(proc)
    photo = str(world.photos("7218")[1])
    proc = world.cli("search", "--photo", photo, "--camera", "roof")
    assert proc.returncode == 6 and f"unknown camera 'roof'; known: {CAMERA}" in one_error_line(proc)
    proc = world.cli("search", "--photo", photo, "--since", "yesterday")
    assert proc.returncode == 3 and "invalid --since 'yesterday'" in one_error_line(proc)
    proc = world.cli("search", "--photo", photo, "--since", "2026-05-02", "--until", "2026-05-01")
    assert proc.returncode == 3 and "after --until" in one_error_line(proc)
    proc = world.cli("search", "--photo", str(tmp_path / "missing.jpg"))
    assert proc.returncode == 3 and "no such photo" in one_error_line(proc)
    assert _searches(world) == []  # failed searches found nothing and are not logged


def test_tracks_unknown_and_timeline(world):
    every = _tracks(world)
    hits = _json(world.ok("hits", "--format", "json"))
    named = {h["track_id"] for h in hits}
    unknown = _tracks(world, "--unknown")
    assert {t["track_id"] for t in unknown} == {t["track_id"] for t in every} - named
    assert unknown and all(t["person"] is None for t in unknown)
    assert {t["person"] for t in every if t["track_id"] in named} == {"7201", "7230"}
    starts = [datetime.fromisoformat(t["first_seen_at"]) for t in every]
    assert starts == sorted(starts)
    assert [t["track_id"] for t in _tracks(world, "--person", "7230")] == \
        [h["track_id"] for h in hits if h["person"] == "7230"]
    assert len(_tracks(world, "--limit", "2")) == 2
    csv_out = world.ok("tracks", "--unknown", "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("track_id,") and len(csv_out) == len(unknown) + 1
    assert "7201" in world.ok("tracks").stdout

    line = json.loads(world.ok("timeline", "7201", "--format", "json").stdout)
    assert [h["hit_id"] for h in line] == [h["hit_id"] for h in hits if h["person"] == "7201"]
    seen = [datetime.fromisoformat(h["first_seen_at"]) for h in line]
    assert seen == sorted(seen)
    table = world.ok("timeline", "7201").stdout.splitlines()
    assert table[0].split() == ["when", "camera", "score", "origin", "review", "face_px", "track"]
    assert len(table) == len(line) + 1 and CAMERA in table[1] and "auto" in table[1]
    # a rejected hit leaves the timeline, and its track becomes unknown again
    repo = Repository(world.db_url)
    try:
        repo._transact(lambda s: s.query(HitRow).filter(HitRow.id == line[0]["hit_id"])
                       .update({"review_status": "rejected"}), write=True)
    finally:
        repo.close()
    assert len(json.loads(world.ok("timeline", "7201", "--format", "json").stdout)) == len(line) - 1
    assert line[0]["track_id"] in {t["track_id"] for t in _tracks(world, "--unknown")}

    for args, code, text in [(["timeline", "nobody"], 6, "unknown person 'nobody'"),
                             (["tracks", "--person", "nobody"], 6, "unknown person 'nobody'"),
                             (["tracks", "--camera", "roof"], 6, "unknown camera 'roof'"),
                             (["tracks", "--run", "999"], 6, "unknown run 999"),
                             (["timeline", "7201", "--until", "13/05/2026"], 3, "invalid --until")]:
        proc = world.cli(*args)
        assert proc.returncode == code and text in one_error_line(proc), (args, proc.stderr)
