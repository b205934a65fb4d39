"""Investigator review and retro-matching end to end on the shared processed street world:
enrol someone seen earlier, find them in the stored tracks (retro hits), reject / name /
merge, process the footage again and find the decisions on the new rows."""

from __future__ import annotations

import json

import investigation as I
import street_scenario as S
from cli_run import one_error_line

from cctv_id.store import Repository


def _json(proc):
    return json.loads(proc.stdout)


def _reviews_in_audit(world) -> list[dict]:
    repo = Repository(world.db_url)
    try:
        return repo.list_audit(action="review")
    finally:
        repo.close()


def _tracks(world, run_id: int | None = None) -> list[dict]:
    repo = Repository(world.db_url)
    try:
        return repo.list_tracks(run_id=run_id)
    finally:
        repo.close()


def test_retro_match_reviews_and_reprocessing(world):
    truth = world.scenario.truth
    world.ok("enroll", "--no-retro", "--largest", "--name", I.LATER, *map(str, world.photos(I.LATER)[1:3]))
    retro = _json(world.ok("retro-match", "--person", I.LATER, "--format", "json"))
    assert len(retro) == 1, retro
    (hit,) = retro
    tracks = {t["track_id"]: t for t in _tracks(world)}
    assert S.person_at_best_shot(truth, tracks[hit["track_id"]]) == I.LATER  # the right track
    assert hit["origin"] == "retro" and hit["score"] >= hit["threshold"]
    actor = {a.name: a for a in truth.actors}[I.LATER]
    assert actor.start_s - 1 <= hit["first_seen_s"] and hit["last_seen_s"] <= actor.end_s + 1
    # everyone enrolled now: nothing more, above all nothing on the strangers' tracks
    assert _json(world.ok("retro-match", "--format", "json")) == []
    listed = {h["hit_id"]: h for h in _json(world.ok("hits", "--format", "json"))}
    assert listed[hit["hit_id"]]["origin"] == "retro"
    assert all(h["person"] not in S.STRANGERS for h in listed.values())

    # reviews: reject the retro hit, name a stranger's track, merge two unattributed tracks
    rev = ("--operator", "alice", "review")
    out = _json(world.ok(*rev, "reject", str(hit["hit_id"]), "--note", "wrong coat", "--format", "json"))
    assert out["review_status"] == "rejected" and out["track_status"] == "unknown"
    stranger = next(t for t in tracks.values() if S.person_at_best_shot(truth, t) == "7213")
    named = world.ok(*rev, "name", str(stranger["track_id"]), "7213", "--create")
    assert f"track {stranger['track_id']} named 7213" in named.stdout
    loose = [t["track_id"] for t in tracks.values()
             if S.person_at_best_shot(truth, t) is None and t["status"] == "unknown"][:2]
    assert len(loose) == 2
    merged = _json(world.ok(*rev, "merge", *map(str, loose), "--format", "json"))
    assert merged["cluster_id"] == min(loose) and merged["person"] is None
    shown = {h["hit_id"]: h for h in _json(world.ok("hits", "--format", "json"))}
    assert (shown[hit["hit_id"]]["review_status"], shown[hit["hit_id"]]["reviewed_by"]) == ("rejected", "alice")
    listed_reviews = _json(world.ok("review", "list", "--format", "json"))
    assert [r["kind"] for r in listed_reviews] == ["reject", "name", "merge", "merge"]
    assert [e["params"]["kind"] for e in _reviews_in_audit(world)] == ["reject", "name", "merge"]
    assert {e["operator"] for e in _reviews_in_audit(world)} == {"alice"}

    # the footage again: 7218 is enrolled now, so the pipeline itself hits them; the reviewer's
    # rejection, naming and merge come back on the new rows
    world.ok("process", str(world.scenario.video), "--camera", I.CAMERA, "--start-time",
             I.START.isoformat(), "--restart", "--no-progress")
    new_tracks = [t for t in _tracks(world) if t["track_id"] not in tracks]
    assert new_tracks
    new_ids = {t["track_id"] for t in new_tracks}
    hits_now = _json(world.ok("hits", "--format", "json"))
    again = [h for h in hits_now if h["track_id"] in new_ids and h["person"] == I.LATER]
    assert len(again) == 1 and again[0]["origin"] == "auto"  # the pipeline's own hit ...
    assert (again[0]["review_status"], again[0]["reviewed_by"]) == ("rejected", "alice")  # ... rejected
    assert {t["track_id"]: t for t in new_tracks}[again[0]["track_id"]]["status"] == "unknown"
    manual = [h for h in hits_now if h["track_id"] in new_ids and h["origin"] == "manual"]
    assert [h["person"] for h in manual] == ["7213"]
    by_id = {t["track_id"]: t for t in new_tracks}
    assert S.person_at_best_shot(truth, by_id[manual[0]["track_id"]]) == "7213"
    clustered = [t for t in new_tracks if t["cluster_id"] is not None]
    assert len(clustered) == 2 and {t["cluster_id"] for t in clustered} == {min(loose)}
    assert {(t["first_frame"], t["last_frame"]) for t in clustered} == {
        (tracks[i]["first_frame"], tracks[i]["last_frame"]) for i in loose}
    # re-applying is no operator's action: the audit log has the three reviews only
    assert len(_reviews_in_audit(world)) == 3


def test_review_bad_ids_are_one_line_errors(world):
    hits = _json(world.ok("hits", "--format", "json"))
    tracks = _tracks(world)
    unknown = next(t for t in tracks if t["status"] == "unknown")
    cases = [
        (("review", "confirm", "999"), "unknown hit 999"),
        (("review", "reject", "999"), "unknown hit 999"),
        (("review", "name", "999", "7201"), "unknown track 999"),
        (("review", "name", str(unknown["track_id"]), "nobody"), "unknown person 'nobody'"),
        (("review", "name", str(hits[0]["track_id"]), "7230"), f"already named {hits[0]['person']}"),
        (("review", "merge", str(unknown["track_id"]), "998", "999"), "unknown tracks 998, 999"),
        (("review", "merge", str(unknown["track_id"])), "at least two"),
        (("review", "merge", str(hits[0]["track_id"]), str(hits[1]["track_id"])), "different people"),
        (("retro-match", "--person", "nobody"), "unknown person 'nobody'; enrolled: 7201, 7230"),
        (("review", "list", "--person", "nobody"), "unknown person 'nobody'"),
    ]
    for args, message in cases:
        proc = world.cli(*args)
        assert proc.returncode != 0, args
        assert message in one_error_line(proc), (args, proc.stderr)
    # nothing was recorded by the failures; a good confirm is recorded once
    assert _reviews_in_audit(world) == [] and _json(world.ok("review", "list", "--format", "json")) == []
    world.ok("--operator", "bob", "review", "confirm", str(hits[0]["hit_id"]))
    (entry,) = _reviews_in_audit(world)
    assert (entry["operator"], entry["params"]["kind"], entry["params"]["hit_id"]) == (
        "bob", "confirm", hits[0]["hit_id"])
    shown = {h["hit_id"]: h for h in _json(world.ok("hits", "--format", "json"))}
    assert shown[hits[0]["hit_id"]]["review_status"] == "confirmed"
    assert "confirm" in world.ok("review", "list").stdout
