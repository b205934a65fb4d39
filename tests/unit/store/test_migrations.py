"""Migrations on databases that hold data, and databases this code is too old for.

Each test on SQLite and PostgreSQL (see conftest.py).
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest
from sqlalchemy import text

from cctv_id.errors import StoreError
from cctv_id.store import Repository, TrackRecord
from cctv_id.store import migrate

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)


def _old_database(db_url: str) -> None:
    """A database created by revision 0003 with a run, two tracks (one embedded), one hit."""
    repo = Repository(db_url, migrate_schema=False)
    migrate.upgrade(repo.engine, "0003_alert_outbox")
    emb = np.arange(1, 5, dtype="<f4").tobytes()
    stmts = [
        "INSERT INTO cameras (id, name, created_at) VALUES (1, 'lobby', :t)",
        "INSERT INTO sources (id, path, sha256, size_bytes, created_at) "
        "VALUES (1, '/v.mp4', :sha, 10, :t)",
        "INSERT INTO runs (id, source_id, camera_id, started_at, status, frames_processed, "
        "model_sha256s, config, tool_version) VALUES (1, 1, 1, :t, 'completed', 5, '{}', '{}', '0')",
        "INSERT INTO persons (id, name, created_at) VALUES (1, 'alice', :t)",
    ]
    track = ("INSERT INTO tracks (id, run_id, track_key, camera_id, status, first_frame, last_frame,"
             " first_pts_s, last_pts_s, n_detections, max_face_px, quality, model, embedding, dim,"
             " created_at) VALUES (:id, 1, :id, 1, :st, 0, 9, 0, 0.9, 10, 20, 0.5, 'm1', :emb, :dim, :t)")
    hit = ("INSERT INTO hits (id, run_id, track_id, person_id, score, threshold, face_px, quality,"
           " first_frame, last_frame, first_pts_s, last_pts_s, best_shot_frame, best_shot_pts_s,"
           " bbox_x1, bbox_y1, bbox_x2, bbox_y2, created_at) VALUES"
           " (1, 1, 7, 1, 0.9, 0.5, 20, 0.5, 0, 9, 0, 0.9, 3, 0.3, 1, 2, 3, 4, :t)")
    t = T0.replace(tzinfo=None)
    with repo.engine.begin() as conn:
        for sql in stmts:
            conn.execute(text(sql), {"t": t, "sha": "a" * 64})
        conn.execute(text(track), {"id": 7, "st": "matched", "emb": emb, "dim": 4, "t": t})
        conn.execute(text(track), {"id": 9, "st": "too_small", "emb": None, "dim": None, "t": t})
        conn.execute(text(hit), {"t": t})
    repo.close()


def test_upgrade_keeps_data_and_fills_the_new_columns(db_url):
    _old_database(db_url)
    repo = Repository(db_url)  # migrates 0003 -> head
    try:
        with repo.engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision()
        tracks = {t["track_id"]: t for t in repo.list_tracks()}
        assert set(tracks) == {7, 9}
        assert tracks[7]["index_seq"] == 7 and tracks[9]["index_seq"] is None
        assert np.allclose(tracks[7]["embedding"], [1, 2, 3, 4])
        (hit,) = repo.query_hits()
        assert hit["person"] == "alice" and hit["origin"] == "auto" and hit["review_status"] is None
        assert repo.track_index_state() == (0, 9)  # the counter starts after every old track id
        # the old embedding is in the index; new writes are numbered after it, in order
        assert repo.track_embeddings("m1").track_ids.tolist() == [7]
        new = TrackRecord(track_key=100, status="unknown", first_frame=0, last_frame=1,
                          first_pts_s=0, last_pts_s=0.1, first_seen_at=T0, last_seen_at=T0,
                          n_detections=2, max_face_px=12, quality=0.4, model="m1",
                          embedding=np.ones(4, np.float32))
        repo.save_track_results(1, 1, [new])
        got = repo.track_embeddings("m1", after_seq=7)
        assert got.seqs.tolist() == [10] and got.seq == 10
        assert repo.count("audit_log") == 0 and repo.count("reviews") == 0
    finally:
        repo.close()


def test_upgrade_of_an_empty_database(db_url):
    repo = Repository(db_url)
    try:
        assert repo.track_index_state() == (0, 0)
        assert repo.watchlist_generation() == 0
    finally:
        repo.close()


def test_database_of_a_newer_version_is_refused_and_left_alone(db_url):
    Repository(db_url).close()
    repo = Repository(db_url, migrate_schema=False)
    with repo.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    repo.close()
    with pytest.raises(StoreError) as e:
        Repository(db_url, retry_seconds=0)
    msg = str(e.value)
    assert "0099_future" in msg and "newer cctv-id" in msg and "\n" not in msg
    repo = Repository(db_url, migrate_schema=False)
    with repo.engine.connect() as conn:
        assert migrate.current_revision(conn) == "0099_future"
    repo.close()
