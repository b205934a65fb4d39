"""Crash safety in the store: migration 0002, checkpoints saved with the results, finding a
run to resume, restarting a run, crop-path bookkeeping, and retrying transient failures
(SQLite locked by another process, PostgreSQL unreachable)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from cctv_id.errors import NotFoundError, StoreError
from cctv_id.store import Checkpoint, HitRecord, Repository, TrackRecord
from cctv_id.store import migrate
from cctv_id.store.models import Base, Run, RunCheckpoint, utcnow

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
SHA_A = "a" * 64
SHA_B = "b" * 64
CFG_A = "c" * 64
CFG_B = "e" * 64
MODELS = {"det": "d" * 64, "rec": "f" * 64}


def _diffs(engine):
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)


def _hit(person_id: int, score: float, t0: datetime, crop_path: str | None = None) -> HitRecord:
    return HitRecord(
        person_id=person_id, score=score, threshold=0.4, face_px=14.5, quality=0.7,
        first_frame=10, last_frame=60, first_pts_s=0.4, last_pts_s=2.4,
        first_seen_at=t0, last_seen_at=t0 + timedelta(seconds=2), best_shot_frame=30,
        best_shot_pts_s=1.2, best_shot_at=t0, best_shot_bbox=(1.5, 2.5, 11.5, 16.0),
        crop_path=crop_path,
    )


def _track(key: int, status: str = "unknown", hits=(), crop_path: str | None = "default") -> TrackRecord:
    return TrackRecord(
        track_key=key, status=status, first_frame=10, last_frame=60, first_pts_s=0.4,
        last_pts_s=2.4, first_seen_at=T0, last_seen_at=T0 + timedelta(seconds=2),
        n_detections=12, max_face_px=16.0, quality=0.6, model="m1",
        crop_path=f"crops/t{key}.jpg" if crop_path == "default" else crop_path, hits=tuple(hits),
    )


def _run(repo: Repository, camera="cam1", sha=SHA_A, models=MODELS, config_sha=CFG_A) -> tuple[int, int]:
    cam = repo.get_or_create_camera(camera)
    src = repo.get_or_create_source(f"/videos/{camera}.mp4", sha, 1234, 60.0)
    return repo.start_run(src, cam, models, {"threshold": 0.4}, "0.1.0", T0, config_sha256=config_sha), cam


# ------------------------------------------------------------------ migration 0002


def test_migration_0002_upgrades_a_database_holding_data(db_url):
    repo = Repository(db_url, migrate_schema=False)
    migrate.upgrade(repo.engine, "0001_initial")
    with repo.engine.connect() as conn:
        assert migrate.current_revision(conn) == "0001_initial"
    meta = MetaData()
    meta.reflect(repo.engine)
    assert "run_checkpoints" not in meta.tables and "pid" not in meta.tables["runs"].c
    t = meta.tables
    now = utcnow().replace(tzinfo=None)
    with repo.engine.begin() as conn:
        conn.execute(insert(t["cameras"]).values(id=1, name="cam1", created_at=now))
        conn.execute(insert(t["sources"]).values(id=1, path="/v.mp4", sha256=SHA_A, size_bytes=1, created_at=now))
        conn.execute(insert(t["runs"]).values(
            id=1, source_id=1, camera_id=1, started_at=now, status="interrupted", frames_processed=50,
            last_frame_index=49, model_sha256s=MODELS, config={}, tool_version="0.0.9"))
        conn.execute(insert(t["tracks"]).values(
            id=1, run_id=1, track_key=7, camera_id=1, status="unknown", first_frame=1, last_frame=9,
            first_pts_s=0.0, last_pts_s=0.3, n_detections=3, max_face_px=12.0, quality=0.5, model="m1",
            crop_path="crops/t7.jpg", created_at=now))

    migrate.upgrade(repo.engine)  # 0001 -> 0002 with data in place
    assert _diffs(repo.engine) == []
    run = repo.get_run(1)
    assert (run["status"], run["frames_processed"], run["config_sha256"], run["pid"]) == ("interrupted", 50, None, None)
    assert repo.get_checkpoint(1) is None and repo.count("tracks") == 1
    # the new parts work on the upgraded database
    repo.save_track_results(1, 1, [], checkpoint=Checkpoint(60, 2.4, b"s"), progress=(61, 60))
    assert repo.get_checkpoint(1) == Checkpoint(60, 2.4, b"s")

    # and back down: the tracks survive (no table copy that would cascade-delete them)
    with repo.engine.begin() as conn:
        cfg = migrate.alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001_initial")
    meta = MetaData()
    meta.reflect(repo.engine)
    assert "run_checkpoints" not in meta.tables and "config_sha256" not in meta.tables["runs"].c
    with repo.engine.connect() as conn:
        assert conn.execute(select(meta.tables["tracks"].c.track_key)).scalars().all() == [7]
    migrate.upgrade(repo.engine)
    assert _diffs(repo.engine) == [] and repo.count("tracks") == 1
    repo.close()


# ------------------------------------------------------------------ checkpoints


def test_checkpoint_is_saved_with_the_results_or_not_at_all(repo):
    run, cam = _run(repo)
    alice = repo.add_person("alice")
    bad = [_track(1, "matched", [_hit(alice, 0.8, T0)]), _track(2, "matched", [_hit(9999, 0.8, T0)])]
    with pytest.raises(StoreError):  # unknown person id: foreign key violation
        repo.save_track_results(run, cam, bad, checkpoint=Checkpoint(99, 3.96, b"state-99"), progress=(100, 99))
    assert (repo.count("tracks"), repo.count("hits"), repo.count("run_checkpoints")) == (0, 0, 0)
    r = repo.get_run(run)
    assert (r["frames_processed"], r["last_frame_index"]) == (0, None)
    assert repo.get_checkpoint(run) is None

    hb0 = r["heartbeat_at"]
    good = [_track(1, "matched", [_hit(alice, 0.8, T0)]), _track(2)]
    repo.save_track_results(run, cam, good, checkpoint=Checkpoint(99, 3.96, b"state-99"), progress=(100, 99))
    assert (repo.count("tracks"), repo.count("hits")) == (2, 1)
    r = repo.get_run(run)
    assert (r["frames_processed"], r["last_frame_index"]) == (100, 99)
    assert r["heartbeat_at"] >= hb0 and r["pid"] == os.getpid()
    assert repo.get_checkpoint(run) == Checkpoint(99, 3.96, b"state-99")

    # replayed after a crash: rows skipped, checkpoint and progress replaced; no records is fine
    repo.save_track_results(run, cam, good + [_track(3)], checkpoint=Checkpoint(199, 7.96, b"s2"), progress=(200, 199))
    repo.save_track_results(run, cam, [], checkpoint=Checkpoint(299, 11.96, b"s3"), progress=(300, 299))
    assert (repo.count("tracks"), repo.count("hits"), repo.count("run_checkpoints")) == (3, 1, 1)
    assert repo.get_checkpoint(run) == Checkpoint(299, 11.96, b"s3")
    assert repo.get_run(run)["last_frame_index"] == 299
    with pytest.raises(NotFoundError):
        repo.save_track_results(run + 100, cam, [], checkpoint=Checkpoint(1, 0.0, b""))
    with pytest.raises(TypeError):
        Checkpoint(1, 0.0, "not bytes")  # type: ignore[arg-type]


def test_checkpoint_round_trips_bytes_and_detects_corruption(repo):
    run, cam = _run(repo)
    state = bytes(range(256)) * 41 + b"\x00\xff\x00"
    repo.save_track_results(run, cam, [], checkpoint=Checkpoint(5, 0.2, state))
    got = repo.get_checkpoint(run)
    assert type(got.state) is bytes and got.state == state and (got.frame_index, got.pts_s) == (5, 0.2)
    with repo.engine.connect() as conn:
        row = conn.execute(select(RunCheckpoint.state_sha256)).scalar_one()
    assert row == hashlib.sha256(state).hexdigest()

    with repo.engine.begin() as conn:
        conn.execute(update(RunCheckpoint).values(state=state[:-1] + b"\x01"))
    with pytest.raises(StoreError, match=f"checkpoint of run {run} is corrupt"):
        repo.get_checkpoint(run)
    # the run going away takes its checkpoint with it (ON DELETE CASCADE)
    with repo.engine.begin() as conn:
        if repo.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.execute(delete(Run).where(Run.id == run))
    assert repo.count("run_checkpoints") == 0


# ------------------------------------------------------------------ finding, resetting, resuming


def test_find_resumable_and_completed_run_by_key(repo):
    old, _ = _run(repo)
    run, cam = _run(repo)  # newer run, same key
    _run(repo, config_sha=CFG_B)
    _run(repo, models={**MODELS, "rec": "0" * 64})
    _run(repo, camera="cam2")
    _run(repo, sha=SHA_B)
    repo.start_run(repo.get_or_create_source("/v", SHA_A, 1), cam, MODELS, {}, "0.1.0")  # no config hash

    found = repo.find_resumable_run(SHA_A, "cam1", dict(reversed(list(MODELS.items()))), CFG_A.upper())
    assert found["id"] == run and found["config_sha256"] == CFG_A and found["pid"] == os.getpid()
    assert found.keys() == repo.get_run(run).keys()
    assert repo.find_completed_run(SHA_A, "cam1", MODELS, CFG_A) is None
    for args in [
        (SHA_A, "cam1", MODELS, CFG_B.replace("e", "9")),  # another config
        (SHA_A, "cam1", {"det": "d" * 64}, CFG_A),  # other models
        (SHA_A, "cam3", MODELS, CFG_A),  # another camera
        ("1" * 64, "cam1", MODELS, CFG_A),  # another source
    ]:
        assert repo.find_resumable_run(*args) is None

    repo.finish_run(run, "completed")
    assert repo.find_completed_run(SHA_A, "cam1", MODELS, CFG_A)["id"] == run
    assert repo.find_resumable_run(SHA_A, "cam1", MODELS, CFG_A)["id"] == old  # "running"
    for status in ("failed", "interrupted"):
        repo.finish_run(old, status, error="boom")
        assert repo.find_resumable_run(SHA_A, "cam1", MODELS, CFG_A)["id"] == old
    repo.finish_run(old, "completed")
    assert repo.find_resumable_run(SHA_A, "cam1", MODELS, CFG_A) is None
    assert repo.find_completed_run(SHA_A, "cam1", MODELS, CFG_A)["id"] == run  # the newest
    with pytest.raises(ValueError):
        repo.find_resumable_run(SHA_A, "cam1", MODELS, "short")
    with pytest.raises(ValueError):
        _run(repo, config_sha="xyz")


def test_reset_run_replaces_results_atomically_and_keeps_the_id(repo):
    run, cam = _run(repo)
    other, _ = _run(repo)
    alice = repo.add_person("alice")
    repo.save_track_results(run, cam, [_track(1, "matched", [_hit(alice, 0.8, T0, crop_path="crops/h1.jpg")]), _track(2)],
                            checkpoint=Checkpoint(9, 0.36, b"x"), progress=(10, 9))
    repo.save_track_results(other, cam, [_track(1, "matched", [_hit(alice, 0.8, T0)])],
                            checkpoint=Checkpoint(3, 0.1, b"y"), progress=(4, 3))
    repo.finish_run(run, "failed", error="killed")
    before = repo.get_run(run)

    crops = repo.reset_run(run)
    assert crops == ["crops/h1.jpg", "crops/t1.jpg", "crops/t2.jpg"]
    r = repo.get_run(run)
    assert r["id"] == run and r["status"] == "running" and r["error"] is None and r["finished_at"] is None
    assert (r["frames_processed"], r["last_frame_index"]) == (0, None)
    assert r["started_at"] >= before["started_at"] and r["config_sha256"] == CFG_A
    assert repo.get_checkpoint(run) is None and repo.list_tracks(run_id=run) == []
    # the other run is untouched
    assert len(repo.list_tracks(run_id=other)) == 1 and repo.get_checkpoint(other) == Checkpoint(3, 0.1, b"y")
    assert (repo.count("tracks"), repo.count("hits")) == (1, 1)
    with pytest.raises(NotFoundError):
        repo.reset_run(other + 100)


def test_mark_running_takes_over_an_unfinished_run(repo):
    run, cam = _run(repo)
    repo.save_track_results(run, cam, [_track(1)], checkpoint=Checkpoint(9, 0.36, b"x"), progress=(10, 9))
    repo.finish_run(run, "interrupted", error="SIGTERM")
    with repo.engine.begin() as conn:
        conn.execute(update(Run).values(pid=1, heartbeat_at=T0))
    repo.mark_running(run)
    r = repo.get_run(run)
    assert (r["status"], r["error"], r["finished_at"], r["pid"]) == ("running", None, None, os.getpid())
    assert r["heartbeat_at"] > T0 + timedelta(days=1)
    assert (r["frames_processed"], r["last_frame_index"]) == (10, 9)  # results kept
    assert repo.get_checkpoint(run) == Checkpoint(9, 0.36, b"x") and repo.count("tracks") == 1
    with pytest.raises(NotFoundError):
        repo.mark_running(run + 100)


def test_crop_paths_listing_and_clearing(repo):
    run, cam = _run(repo)
    run2, _ = _run(repo)
    alice = repo.add_person("alice")
    repo.save_track_results(run, cam, [
        _track(1, "matched", [_hit(alice, 0.8, T0, crop_path="crops/t1.jpg")]),  # shared with track
        _track(2, crop_path=None),
        _track(3, "matched", [_hit(alice, 0.8, T0, crop_path="crops/h3.jpg")]),
    ])
    repo.save_track_results(run2, cam, [_track(9)])
    assert repo.track_crop_paths(run) == ["crops/h3.jpg", "crops/t1.jpg", "crops/t3.jpg"]
    assert repo.track_crop_paths() == ["crops/h3.jpg", "crops/t1.jpg", "crops/t3.jpg", "crops/t9.jpg"]
    assert repo.clear_crop_path("crops/t1.jpg") == 2  # the track and its hit
    assert repo.clear_crop_path("crops/nothing.jpg") == 0
    assert repo.track_crop_paths(run) == ["crops/h3.jpg", "crops/t3.jpg"]
    assert repo.query_hits(person="alice")[0]["crop_path"] is None


# ------------------------------------------------------------------ retries


def test_transient_errors_are_retried_and_others_are_not(tmp_path: Path):
    repo = Repository(f"sqlite:///{tmp_path / 'r.db'}", retry_seconds=5, busy_timeout_s=0.1)
    calls = []

    def flaky(s):
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        return s.execute(select(1)).scalar_one()

    assert repo._transact(flaky, write=True) == 1 and len(calls) == 3

    calls.clear()

    def broken(s):
        calls.append(1)
        raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed: x"))

    t = time.monotonic()
    with pytest.raises(StoreError, match="UNIQUE constraint failed"):
        repo._transact(broken, write=True)
    assert len(calls) == 1 and time.monotonic() - t < 1
    with repo.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 100
    with pytest.raises(ValueError):
        Repository("sqlite://", retry_seconds=-1)
    repo.close()


_HOLDER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("COMMIT")
print("released", flush=True)
"""


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_sqlite_locked_by_another_process_gives_up_after_the_budget(tmp_path: Path):
    path = tmp_path / "locked.db"
    repo = Repository(f"sqlite:///{path}", retry_seconds=2, busy_timeout_s=0.5)
    holder = _hold_lock(path, 30)
    try:
        t = time.monotonic()
        with pytest.raises(StoreError) as err:
            repo.get_or_create_camera("cam1")
        elapsed = time.monotonic() - t
    finally:
        holder.kill()
        holder.wait()
    msg = str(err.value)
    assert msg == f"database is locked by another process (gave up after 2 s): sqlite:///{path}"
    assert 1.9 <= elapsed < 6, elapsed
    assert repo.get_or_create_camera("cam1") == 1  # fine once the other process is gone
    repo.close()


def test_sqlite_lock_released_within_the_budget_lets_the_write_through(tmp_path: Path):
    path = tmp_path / "busy.db"
    repo = Repository(f"sqlite:///{path}", retry_seconds=15, busy_timeout_s=0.5)
    run, cam = _run(repo)
    holder = _hold_lock(path, 2)
    try:
        t = time.monotonic()
        repo.save_track_results(run, cam, [_track(1)], checkpoint=Checkpoint(1, 0.0, b"s"), progress=(2, 1))
        elapsed = time.monotonic() - t
        assert holder.wait(timeout=10) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert 1.0 < elapsed < 10, elapsed  # it waited for the other process, then succeeded
    assert repo.count("tracks") == 1 and repo.get_checkpoint(run) == Checkpoint(1, 0.0, b"s")
    repo.close()


def test_postgresql_unreachable_gives_up_after_the_budget():
    url = "postgresql+psycopg://spy:s3cretpw@127.0.0.1:1/nodb"  # nothing listens on port 1
    t = time.monotonic()
    with pytest.raises(StoreError) as err:
        Repository(url, retry_seconds=1)
    elapsed = time.monotonic() - t
    msg = str(err.value)
    assert msg.startswith("database unreachable (gave up after 1 s): postgresql+psycopg://spy:***@127.0.0.1:1/nodb")
    assert "s3cretpw" not in msg and "\n" not in msg
    assert 0.9 <= elapsed < 8, elapsed


@pytest.mark.postgres
def test_postgresql_permanent_connect_errors_are_not_retried(pg_database_url):
    url, _ = pg_database_url
    bad = url.set(database="cctvid_no_such_db", password="s3cretpw").render_as_string(hide_password=False)
    t = time.monotonic()
    with pytest.raises(StoreError) as err:
        Repository(bad, retry_seconds=30)
    assert time.monotonic() - t < 5
    assert "does not exist" in str(err.value) and "s3cretpw" not in str(err.value)
