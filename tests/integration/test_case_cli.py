"""export-case / verify-case end to end on the processed street world: a folder case and a
zip case verify; the clip decodes, lasts its window and shows the face boxed where the
stored trajectory (and the scene's ground truth) put it; tampering is named; a changed
source gives no clip (said in the manifest); bad input is one line and leaves nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import zipfile

import numpy as np
import pytest
from cli_run import one_error_line

from cctv_id.case.clips import BOX_BGR, BOX_THICKNESS


def _repo(world):
    from cctv_id.store.repository import Repository

    return Repository(world.db_url)


def _exports(world):
    with _repo(world) as repo:
        return repo.list_audit(action="export")


def _box_colour(px):
    return all(abs(int(v) - c) < 70 for v, c in zip(px, BOX_BGR))


def test_folder_case_verifies_clip_shows_the_box_and_tampering_is_named(world, tmp_path):
    out = tmp_path / "case-7201"
    proc = world.ok("--operator", "inspector-a", "export-case", "--person", "7201",
                    "--no-progress", str(out))
    assert "exported 1 hit(s) of 7201" in proc.stdout, proc.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp left behind"

    # the tables: the fields of `cctv-id hits`, plus the case's own files
    (listed,) = json.loads(world.ok("hits", "--person", "7201", "--format", "json").stdout)
    (row,) = json.loads((out / "hits.json").read_text())
    assert {k: row[k] for k in listed} == listed and row["origin"] == "auto"
    assert (row["case_crop"], row["case_context"], row["case_clip"]) == (
        f"crops/hit{row['hit_id']:06d}.jpg", f"context/hit{row['hit_id']:06d}.jpg",
        f"clips/hit{row['hit_id']:06d}.mp4")
    assert (out / "hits.csv").read_text().splitlines()[0].startswith("hit_id,run_id,")
    assert (out / row["case_crop"]).read_bytes() == (world.data_dir / row["crop_path"]).read_bytes()
    assert (out / row["case_context"]).read_bytes() == \
        (world.data_dir / row["context_path"]).read_bytes()

    # the manifest: provenance, and every file's sha256
    manifest = json.loads((out / "manifest.json").read_text())
    import cctv_id

    assert manifest["tool_version"] == cctv_id.__version__
    assert manifest["operator"] == "inspector-a" and manifest["query"]["person"] == "7201"
    (run,) = manifest["runs"]
    video_sha = hashlib.sha256(world.scenario.video.read_bytes()).hexdigest()
    assert run["source_sha256"] == video_sha and run["source_matches"] is True
    assert run["model_sha256s"] and all(len(v) == 64 for v in run["model_sha256s"].values())
    assert run["config"]["detector"] and run["status"] == "completed"
    for entry in manifest["files"]:
        data = (out / entry["path"]).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (entry["sha256"], entry["size"])
    assert sorted(e["path"] for e in manifest["files"]) == sorted(
        ["hits.csv", "hits.json", row["case_crop"], row["case_context"], row["case_clip"]])

    # the clip: decodes, covers first_seen - 2 s .. last_seen + 2 s, face boxed
    import av

    (clip,) = manifest["clips"]
    with av.open(str(out / row["case_clip"])) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(stream)]
        fps = float(stream.average_rate)
    expected_s = min(row["last_seen_s"] + 2.0, world.scenario.truth.n_frames / fps) \
        - max(0.0, row["first_seen_s"] - 2.0)
    assert len(frames) == clip["frames"]
    assert abs(len(frames) / fps - expected_s) <= 2.0 / fps, (len(frames), fps, expected_s)
    with _repo(world) as repo:
        (track,) = [t for t in repo.list_tracks(row["run_id"]) if t["track_id"] == row["track_id"]]
    traj = track["trajectory"]
    assert len(traj) == track["n_detections"]
    mid = traj[len(traj) // 2]
    img = frames[int(mid[0]) - clip["first_frame"]]
    x1, y1, x2, y2 = (int(round(v)) for v in mid[1:])
    pad = BOX_THICKNESS
    edge = [img[y1 - pad, x] for x in range(x1, x2)] + [img[y, x2 + pad] for y in range(y1, y2)]
    assert np.mean([_box_colour(p) for p in edge]) > 0.8
    # ... where the scene put 7201 at that time (ground truth of the composite)
    (truth,) = [f for f in world.scenario.truth.faces_at(int(mid[0])) if f.name == "7201"]
    tx, ty = (truth.box[0] + truth.box[2]) / 2, (truth.box[1] + truth.box[3]) / 2
    assert abs((x1 + x2) / 2 - tx) < 15 and abs((y1 + y2) / 2 - ty) < 15

    audits = _exports(world)
    assert len(audits) == 1 and audits[0]["operator"] == "inspector-a"
    assert audits[0]["outcome"]["status"] == "ok" and audits[0]["outcome"]["hits"] == 1

    ok = world.ok("verify-case", "--format", "json", str(out))
    assert json.loads(ok.stdout)["intact"] is True

    # tamper: one byte of the crop, and a file slipped in
    crop = out / row["case_crop"]
    data = bytearray(crop.read_bytes())
    data[len(data) // 2] ^= 0xFF
    crop.write_bytes(bytes(data))
    (out / "crops" / "planted.jpg").write_bytes(b"x")
    bad = world.cli("verify-case", str(out))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"changed: {row['case_crop']}" in bad.stdout and "unlisted: crops/planted.jpg" in bad.stdout


def test_zip_case_verifies_and_a_changed_member_fails(world, tmp_path):
    out = tmp_path / "case.zip"
    world.ok("export-case", "--person", "7230", "--no-clips", "--no-progress", str(out))
    with zipfile.ZipFile(out) as zf:
        names = sorted(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert "manifest.json" in names and not any(n.startswith("clips/") for n in names)
    assert manifest["query"]["clips"] is False and manifest["hits"] == 1
    report = json.loads(world.ok("verify-case", "--format", "json", str(out)).stdout)
    assert report["intact"] and report["kind"] == "zip" and report["checked"] == len(names) - 1

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(tampered, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data.replace(b'"7230"', b'"9999"') if name == "hits.json" else data)
    bad = world.cli("verify-case", "--format", "json", str(tampered))
    assert bad.returncode == 1 and json.loads(bad.stdout)["changed"] == ["hits.json"]


def test_rejected_hits_and_hits_outside_the_time_range_are_left_out(world, tmp_path):
    late = json.loads(world.ok("export-case", "--person", "7201", "--no-clips", "--format", "json",
                               "--since", "2026-05-01T08:00:07Z", str(tmp_path / "late")).stdout)
    assert late["hits"] == 0
    assert json.loads((tmp_path / "late" / "hits.json").read_text()) == []
    con = sqlite3.connect(world.db_path)
    con.execute("UPDATE hits SET review_status = 'rejected', reviewed_by = 'x' "
                "WHERE person_id = (SELECT id FROM persons WHERE name = '7230')")
    con.commit()
    con.close()
    out = json.loads(world.ok("export-case", "--person", "7230", "--format", "json", "--no-progress",
                              str(tmp_path / "rejected")).stdout)
    assert out["hits"] == 0 and out["clips"] == 0
    assert json.loads((tmp_path / "rejected" / "manifest.json").read_text())["hit_ids"] == []
    assert len(_exports(world)) == 2


def test_changed_or_missing_source_gives_no_clip_and_says_why(world, tmp_path):
    changed = tmp_path / "street-edited.mp4"
    shutil.copyfile(world.scenario.video, changed)
    with open(changed, "ab") as fh:
        fh.write(b"\0")
    con = sqlite3.connect(world.db_path)
    con.execute("UPDATE sources SET path = ?", (str(changed),))
    con.commit()
    con.close()
    out = tmp_path / "case"
    proc = world.ok("export-case", "--person", "7201", "--no-progress", str(out))
    assert "no clip for hit" in proc.stdout and "changed since it was processed" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["runs"][0]["source_matches"] is False
    assert manifest["clips"][0]["file"] is None and "changed" in manifest["clips"][0]["reason"]
    assert not (out / "clips").exists()
    changed.unlink()
    proc = world.ok("export-case", "--person", "7201", "--no-progress", str(tmp_path / "case2"))
    assert "is missing" in proc.stdout
    world.ok("verify-case", str(out))


@pytest.mark.parametrize("args, message", [
    (["--person", "nobody"], "unknown person 'nobody'; enrolled: 7201, 7230"),
    (["--person", "7201", "--since", "yesterday"], "invalid --since 'yesterday'"),
    (["--person", "7201", "--camera", "lobby"], "unknown camera 'lobby'"),
])
def test_bad_input_is_one_line_and_leaves_nothing(world, tmp_path, args, message):
    folder = tmp_path / "out"
    folder.mkdir()
    proc = world.cli("export-case", *args, str(folder / "case"))
    assert proc.returncode != 0
    assert message in one_error_line(proc)
    assert list(folder.iterdir()) == []
    assert _exports(world) == []


def test_existing_target_is_refused(world, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    for target in (folder / "exists", folder / "exists.zip"):
        target.mkdir() if target.suffix == "" else target.write_bytes(b"keep me")
        proc = world.cli("export-case", "--person", "7201", str(target))
        assert "already exists" in one_error_line(proc)
    assert (folder / "exists.zip").read_bytes() == b"keep me"
    assert list((folder / "exists").iterdir()) == []
    assert sorted(p.name for p in folder.iterdir()) == ["exists", "exists.zip"]
    assert _exports(world) == []
    missing_parent = world.cli("export-case", "--person", "7201", str(folder / "no" / "case"))
    assert "does not exist" in one_error_line(missing_parent)
    not_a_case = world.cli("verify-case", str(folder / "exists"))
    assert "has no manifest.json" in one_error_line(not_a_case)


def test_a_full_disk_part_way_leaves_nothing_and_is_audited(world, tmp_path):
    import os
    import subprocess

    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
                                            str(folder)], capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a size-limited tmpfs")
    try:
        proc = world.cli("export-case", "--person", "7201", "--no-progress", str(folder / "case"))
        line = one_error_line(proc)
        assert "nothing was written" in line and "No space left" in line, line
        assert list(folder.iterdir()) == []
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)
    (audit,) = _exports(world)
    assert audit["outcome"]["status"] == "failed" and "No space left" in audit["outcome"]["error"]
