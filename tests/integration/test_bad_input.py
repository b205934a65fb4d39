"""Bad input through the CLI: one readable line, a non-zero exit, the database consistent and
earlier results kept."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import street_scenario as S


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cctv_id.cli.main", *args],
                          capture_output=True, text=True, timeout=900, env=env)


def assert_clean_error(proc, *needles, code=None):
    assert proc.returncode != 0, proc.stdout
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stderr)
    err_lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(err_lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle.lower() in err_lines[0].lower(), err_lines[0]


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory, celeba_dir, vtest_path):
    """A 6 s composite with one enrolled person (7201) visible from the start."""
    out = tmp_path_factory.mktemp("clip")
    return S.build(out, celeba_dir, vtest_path, seconds=6.0)


@pytest.fixture()
def db(tmp_path, short_clip):
    url = f"sqlite:///{tmp_path / 'hits.db'}"
    proc = cli("--db", url, "enroll", "--largest", "--name", "7201",
               *map(str, short_clip.enrol_photos["7201"]))
    assert proc.returncode == 0, proc.stderr
    return url


def _counts(url):
    from cctv_id.store.repository import Repository

    with Repository(url) as repo:
        return {t: repo.count(t) for t in ("runs", "tracks", "hits", "enrolments", "persons")}


@pytest.mark.parametrize("kind", ["zero-byte", "text", "truncated", "missing", "directory"])
def test_unreadable_videos_write_nothing(tmp_path, db, short_clip, kind):
    path = tmp_path / "bad.mp4"
    if kind == "zero-byte":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n" * 20)
    elif kind == "truncated":
        path.write_bytes(short_clip.video.read_bytes()[:100_000])
    elif kind == "directory":
        path.mkdir()
    before = _counts(db)
    proc = cli("--db", db, "process", "--no-progress", str(path))
    assert_clean_error(proc, "bad.mp4", code=3)
    assert _counts(db) == before


def test_failure_part_way_keeps_hits_and_marks_run_failed(tmp_path, db, short_clip):
    data = bytearray(short_clip.video.read_bytes())
    n = len(data)
    rng = np.random.default_rng(1)
    lo, hi = int(0.75 * n), int(0.97 * n)
    data[lo:hi] = rng.integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    proc = cli("--db", db, "process", "--no-progress", str(broken))
    assert_clean_error(proc, "decoding failed", "marked failed")
    hits = json.loads(cli("--db", db, "hits", "--format", "json").stdout)
    assert [h["person"] for h in hits] == ["7201"], "the hit found before the failure is kept"
    from cctv_id.store.repository import Repository

    with Repository(db) as repo:
        (run,) = repo.list_runs()
        assert run["status"] == "failed" and "decoding failed" in run["error"]


def test_damaged_avi_is_processed_with_a_warning(tmp_path, damaged_video_path):
    # Megamind_bugy.avi decodes completely; its damage is out-of-order timestamps, which the
    # reader repairs. The run completes and says what was repaired.
    db = f"sqlite:///{tmp_path / 'm.db'}"
    proc = cli("--db", db, "process", "--no-progress", "--detect-every", "3", str(damaged_video_path))
    assert proc.returncode == 0, proc.stderr
    assert "timestamps were repaired" in proc.stderr
    assert "270 frames" in proc.stdout


def test_enrolment_photo_errors(tmp_path, db, insightface_images, vtest_path):
    before = _counts(db)
    group = insightface_images / "t1.jpg"
    proc = cli("--db", db, "enroll", "--name", "crowd", str(group))
    assert_clean_error(proc, "faces found in", "t1.jpg", "--largest")
    # a street frame with no face large enough to be a portrait
    cap = cv2.VideoCapture(str(vtest_path))
    ok, frame = cap.read()
    assert ok
    empty = tmp_path / "wall.png"
    cv2.imwrite(str(empty), cv2.resize(frame[0:60, 0:80], (320, 240)))
    proc = cli("--db", db, "enroll", "--name", "nobody", str(empty))
    assert_clean_error(proc, "no face found", "wall.png")
    fake = tmp_path / "fake.jpg"
    fake.write_text("not an image")
    proc = cli("--db", db, "enroll", "--name", "x", str(fake))
    assert_clean_error(proc, "cannot read image", "fake.jpg")
    proc = cli("--db", db, "enroll", "--name", "x", str(tmp_path / "missing.jpg"))
    assert_clean_error(proc, "no such photo")
    # a good photo with a bad one: nothing is enrolled
    good = Path(shutil.copy(group, tmp_path / "group.jpg"))
    proc = cli("--db", db, "enroll", "--name", "y", "--largest", str(good), str(fake))
    assert_clean_error(proc, "fake.jpg")
    assert _counts(db) == before
    proc = cli("--db", db, "enroll", "--name", "crowd", "--largest", str(group))
    assert proc.returncode == 0, proc.stderr
    assert _counts(db)["enrolments"] == before["enrolments"] + 1


def test_config_errors(tmp_path, db):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("detector:\n  upscale: [1, 2\n")
    proc = cli("--db", db, "--config", str(bad_yaml), "process", "x.mp4")
    assert_clean_error(proc, "malformed yaml", "bad.yaml", code=2)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("detector:\n  upscael: 2\n")
    proc = cli("--db", db, "--config", str(unknown), "process", "x.mp4")
    assert_clean_error(proc, "unknown key 'detector.upscael'", code=2)
    proc = cli("--db", db, "--config", str(tmp_path / "nope.yaml"), "hits")
    assert_clean_error(proc, "not found")


def test_query_errors(db):
    proc = cli("--db", db, "hits", "--person", "nobody-like-this")
    assert_clean_error(proc, "unknown person 'nobody-like-this'", "7201")
    proc = cli("--db", db, "hits", "--since", "yesterday-ish")
    assert_clean_error(proc, "invalid --since")


def test_debug_shows_traceback(db):
    proc = cli("--db", db, "--debug", "hits", "--person", "nobody-like-this")
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


def test_bad_database_url(tmp_path):
    quick = tmp_path / "quick.yaml"
    quick.write_text("db_retry_seconds: 1\n")
    proc = cli("--config", str(quick), "--db", "postgresql+psycopg://user:s3cret@127.0.0.1:1/none",
               "persons")
    assert_clean_error(proc, "unreachable")
    assert "s3cret" not in proc.stderr
