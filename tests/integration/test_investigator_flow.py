"""An investigator's session end to end, on the processed street world: someone seen but
unknown is enrolled later and found in the stored footage (retro-matching), searched for,
exported as a case, reviewed, and the retention and removal duties follow — every action
in the audit log once, under the operator's name."""

from __future__ import annotations

import json

from investigation import LATER


def test_enrol_later_search_export_review_purge_remove(world, tmp_path):
    photos = world.photos(LATER)
    as_ivy = ("--operator", "ivy")
    out = world.ok(*as_ivy, "enroll", "--name", LATER, *map(str, photos[1:3])).stdout
    assert f"retro hit: {LATER} in stored track" in out
    (hit,) = json.loads(world.ok("hits", "--person", LATER, "--format", "json").stdout)
    assert hit["origin"] == "retro" and hit["review_status"] is None

    results = json.loads(world.ok(*as_ivy, "search", "--photo", str(photos[3]), "--top", "3",
                                  "--format", "json").stdout)
    assert results[0]["track_id"] == hit["track_id"] and results[0]["person"] == LATER
    (sighting,) = json.loads(world.ok("timeline", LATER, "--format", "json").stdout)
    assert sighting["origin"] == "retro" and sighting["camera"] == "street"

    case = tmp_path / "case.zip"
    world.ok(*as_ivy, "export-case", "--person", LATER, "--no-progress", str(case))
    assert world.ok("verify-case", str(case)).returncode == 0
    world.ok(*as_ivy, "review", "confirm", str(hit["hit_id"]), "--note", "same jacket")

    unknown_before = json.loads(world.ok("tracks", "--unknown", "--format", "json").stdout)
    assert unknown_before  # strangers and not-yet-enrolled people
    crops = [world.data_dir / t["crop_path"] for t in unknown_before if t["crop_path"]]
    assert crops and all(p.is_file() for p in crops)
    world.ok(*as_ivy, "purge", "--unknown-older-than", "30d")  # the clip is from May 2026
    assert json.loads(world.ok("tracks", "--unknown", "--format", "json").stdout) == []
    assert not any(p.exists() for p in crops)
    assert [h["hit_id"] for h in json.loads(world.ok("hits", "--person", LATER, "--format",
                                                     "json").stdout)] == [hit["hit_id"]]

    world.ok(*as_ivy, "remove-person", LATER, "--yes")
    assert LATER not in {p["name"] for p in json.loads(world.ok("persons", "--format", "json").stdout)
                         if p["n_photos"]}

    audit = json.loads(world.ok("audit", "--operator", "ivy", "--format", "json").stdout)
    assert [e["action"] for e in audit] == ["enrol", "retro-match", "search", "export", "review",
                                            "purge", "remove-person"]
    assert audit[1]["outcome"]["n_hits"] == 1 and audit[2]["outcome"]["track_ids"][0] == hit["track_id"]
