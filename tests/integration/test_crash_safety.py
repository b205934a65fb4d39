"""Crash safety end to end: SIGKILL at random moments then resume, SIGTERM, --restart,
re-runs that do nothing, a database locked by another process, and a disk that fills up."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import street_scenario as S

START = "2026-05-01T08:00:00Z"


def cli_args(db, *args, config=None):
    base = [sys.executable, "-m", "cctv_id.cli.main", "--db", db]
    if config:
        base += ["--config", str(config)]
    return base + list(args)


def cli(db, *args, config=None, timeout=900):
    return subprocess.run(cli_args(db, *args, config=config), capture_output=True, text=True,
                          timeout=timeout)


def process_args(scenario):
    return ["process", "--no-progress", "--camera", "street", "--start-time", START,
            str(scenario.video)]


def enrol(db, scenario, config=None):
    for person, photos in scenario.enrol_photos.items():
        proc = cli(db, "enroll", "--largest", "--name", person, *map(str, photos), config=config)
        assert proc.returncode == 0, proc.stderr


def hits_of(db):
    proc = cli(db, "hits", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def track_rows(db):
    from cctv_id.store.repository import Repository

    with Repository(db) as repo:
        return sorted((t["track_key"], t["status"], t["first_frame"], t["last_frame"],
                       t["best_person"]) for t in repo.list_tracks())


def hit_key(h):
    return (h["person"], h["track_key"], h["first_frame"], h["last_frame"], h["best_shot_frame"])


@pytest.fixture(scope="module")
def clip(tmp_path_factory, celeba_dir, vtest_path):
    """An 8 s composite: three enrolled people and a stranger, overlapping in time."""
    return S.build(tmp_path_factory.mktemp("crash"), celeba_dir, vtest_path, seconds=8.0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, clip):
    """Hits and tracks of one uninterrupted run."""
    db = f"sqlite:///{tmp_path_factory.mktemp('ref') / 'ref.db'}"
    enrol(db, clip)
    t0 = time.perf_counter()
    proc = cli(db, *process_args(clip))
    assert proc.returncode == 0, proc.stderr
    hits = hits_of(db)
    assert {h["person"] for h in hits} >= {"7201", "7218"}, hits
    return {"hits": hits, "tracks": track_rows(db), "seconds": time.perf_counter() - t0}


def _progress(db_file: Path) -> int:
    """Last frame index committed by the run (-1 before the first checkpoint)."""
    try:
        con = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True, timeout=1)
        row = con.execute("SELECT max(last_frame_index) FROM runs").fetchone()
        con.close()
    except sqlite3.Error:
        return -1
    return -1 if not row or row[0] is None else int(row[0])


def _wait_for_progress(proc, db_file: Path, frame: int, limit_s: float = 300) -> None:
    """Wait until the run has committed past ``frame`` (it is processing, signal handlers
    installed), however slow the machine is."""
    deadline = time.monotonic() + limit_s
    while proc.poll() is None and _progress(db_file) < frame and time.monotonic() < deadline:
        time.sleep(0.05)


def test_sigkill_at_ten_random_moments_then_resume(tmp_path, clip, reference):
    db_file = tmp_path / "k.db"
    db = f"sqlite:///{db_file}"
    often = tmp_path / "often.yaml"
    often.write_text("video:\n  checkpoint_every_s: 0.5\n")
    enrol(db, clip)
    rng = random.Random(20261129)
    n_frames = clip.truth.n_frames
    # ten points of progress spread over the clip; each kill lands a random moment after
    # the run has committed past its point, so kills fall anywhere between two commits
    targets = sorted(rng.sample(range(0, n_frames - 8), 10))
    kills = 0
    for target in targets:
        proc = subprocess.Popen(cli_args(db, *process_args(clip), config=often),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_progress(proc, db_file, target)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate(timeout=120)
    final = cli(db, *process_args(clip), config=often)
    assert final.returncode == 0, final.stderr
    assert kills >= 8, "the runs ended before they could be killed part-way"
    hits = hits_of(db)
    assert sorted(map(hit_key, hits)) == sorted(map(hit_key, reference["hits"]))
    assert track_rows(db) == reference["tracks"]
    data_dir = tmp_path / "k-data"
    fsck = cli(db, "fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert "clean" in fsck.stdout
    for h in hits:
        assert (data_dir / h["crop_path"]).is_file()
    # the file is done: running again does nothing
    again = cli(db, *process_args(clip), config=often)
    assert again.returncode == 0 and "already processed" in again.stdout


def test_sigterm_stops_cleanly_then_resumes(tmp_path, clip, reference):
    db_file = tmp_path / "t.db"
    db = f"sqlite:///{db_file}"
    enrol(db, clip)
    proc = subprocess.Popen(cli_args(db, *process_args(clip)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_progress(proc, db_file, clip.truth.n_frames // 4)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the run finished before SIGTERM arrived (machine too fast for this clip)")
    assert proc.returncode == 143, err
    assert "interrupted" in err and "resume" in err
    from cctv_id.store.repository import Repository

    with Repository(db) as repo:
        (run,) = repo.list_runs()
        assert run["status"] == "interrupted"
        assert repo.get_checkpoint(run["id"]) is not None
    resumed = cli(db, *process_args(clip))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed run" in resumed.stdout
    assert sorted(map(hit_key, hits_of(db))) == sorted(map(hit_key, reference["hits"]))


def test_restart_replaces_results(tmp_path, clip, reference):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    enrol(db, clip)
    assert cli(db, *process_args(clip)).returncode == 0
    first = hits_of(db)
    proc = cli(db, *process_args(clip)[:-1], "--restart", str(clip.video))
    assert proc.returncode == 0, proc.stderr
    second = hits_of(db)
    assert sorted(map(hit_key, second)) == sorted(map(hit_key, first))
    assert {h["run_id"] for h in second} == {h["run_id"] for h in first}, "same run, replaced"
    assert cli(db, "fsck").returncode == 0


def test_locked_database_is_waited_for_then_reported(tmp_path, clip):
    db_file = tmp_path / "l.db"
    db = f"sqlite:///{db_file}"
    enrol(db, clip)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(db_file)!r}, isolation_level=None)\n"
         "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True)\n"
         "time.sleep(float(sys.argv[1]))\n"
         "c.execute('COMMIT')\n", "60"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    quick = tmp_path / "quick.yaml"
    quick.write_text("db_retry_seconds: 2\ndb_busy_timeout_s: 0.5\n")
    photo = str(clip.enrol_photos["7201"][0])
    t0 = time.perf_counter()
    proc = cli(db, "enroll", "--largest", "--name", "newcomer", photo, config=quick)
    holder.kill()
    holder.wait()
    assert proc.returncode == 5, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "locked by another process" in errors[0], proc.stderr
    persons = json.loads(cli(db, "persons", "--format", "json").stdout)
    assert "newcomer" not in {p["name"] for p in persons}
    assert time.perf_counter() - t0 < 60
    # released within the retry budget: the command just waits and succeeds
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, time\n"
         f"c = sqlite3.connect({str(db_file)!r}, isolation_level=None)\n"
         "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True)\n"
         "time.sleep(2); c.execute('COMMIT')\n"],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    patient = tmp_path / "patient.yaml"
    patient.write_text("db_retry_seconds: 30\ndb_busy_timeout_s: 0.5\n")
    proc = cli(db, "enroll", "--largest", "--name", "newcomer", photo, config=patient)
    holder.wait()
    assert proc.returncode == 0, proc.stderr
    persons = json.loads(cli(db, "persons", "--format", "json").stdout)
    assert {p["name"] for p in persons} == set(S.ENROLLED) | {"newcomer"}


def _mount_tiny_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    return proc.returncode == 0


def test_disk_full_while_writing_crops(tmp_path, clip):
    data_dir = tmp_path / "tiny"
    if os.geteuid() != 0 or not _mount_tiny_tmpfs(data_dir, "4m"):
        pytest.skip("needs root to mount a size-limited tmpfs")
    try:
        db = f"sqlite:///{tmp_path / 'd.db'}"
        conf = tmp_path / "conf.yaml"
        conf.write_text(f"data_dir: {data_dir}\n")
        enrol(db, clip, config=conf)  # the enrolment photos are stored in the same data_dir
        # fill the small filesystem to within a few KB of full: the first crops fail
        with open(data_dir / "filler", "wb") as fh:
            try:
                fh.write(b"\0" * (4 * 1024 * 1024 - 12 * 1024))
            except OSError:
                pass
        before = hits_of(db)
        proc = cli(db, *process_args(clip), config=conf)
        assert proc.returncode != 0
        err = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert len(err) == 1 and "No space left on device" in err[0], proc.stderr
        from cctv_id.store.repository import Repository

        with Repository(db) as repo:
            (run,) = repo.list_runs()
            assert run["status"] == "failed" and "No space left" in run["error"]
        assert hits_of(db) == before
        fsck = cli(db, "fsck", config=conf)
        assert fsck.returncode == 0, fsck.stdout
        # with room again, the same command processes the file from the start
        (data_dir / "filler").unlink()
        proc = cli(db, *process_args(clip), config=conf)
        assert proc.returncode == 0, proc.stderr
    finally:
        subprocess.run(["umount", str(data_dir)], capture_output=True)


def test_fsck_finds_and_repairs_inconsistencies(tmp_path, clip):
    db = f"sqlite:///{tmp_path / 'f.db'}"
    enrol(db, clip)
    assert cli(db, *process_args(clip)).returncode == 0
    data = tmp_path / "f-data"
    crops = sorted((data / "crops").rglob("*.jpg"))
    assert crops
    # a committed crop whose rename never happened, a pending crop of a lost transaction,
    # an orphan file and a missing crop
    committed = crops[0]
    committed.rename(committed.with_name(committed.name + ".pending"))
    (crops[1].parent / "track999999.jpg.pending").write_bytes(b"x")
    (crops[1].parent / "track999998.jpg").write_bytes(b"x")
    crops[1].unlink()
    proc = cli(db, "fsck", "--format", "json")
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert len(report["problems"]) == 4, report
    proc = cli(db, "fsck", "--repair")
    assert proc.returncode == 0, proc.stdout
    assert committed.is_file()
    assert cli(db, "fsck").returncode == 0


def test_second_ctrl_c_quits_at_once_and_stays_resumable(tmp_path, clip, reference):
    db_file = tmp_path / "c.db"
    db = f"sqlite:///{db_file}"
    enrol(db, clip)
    proc = subprocess.Popen(cli_args(db, *process_args(clip)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_progress(proc, db_file, clip.truth.n_frames // 4)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    # keep pressing Ctrl-C until it is gone: whichever moment a second one lands in (the job
    # still running, stopping, reporting or on its way out), the exit must be 130
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        time.sleep(0.01)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the run finished before the signals arrived")
    assert proc.returncode == 130, err
    resumed = cli(db, *process_args(clip))
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(map(hit_key, hits_of(db))) == sorted(map(hit_key, reference["hits"]))
    assert cli(db, "fsck").returncode == 0
