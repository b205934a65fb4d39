"""TrackIndex: real FAISS over the real database (SQLite and PostgreSQL), kept in step by
sequence numbers and epochs; the cache file survives, or is rebuilt, as it must.

(Here, beside the store tests, for the ``repo`` fixture of this folder's conftest.)"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from sqlalchemy import update

from cctv_id.store import Repository, TrackRecord
from cctv_id.store.models import TrackRow
from cctv_id.watchlist.track_index import TrackIndex, index_paths, refresh_track_indexes

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


def _unit(rng, n, d=16) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _track(key: int, emb, model: str = "m1", t0: datetime = T0) -> TrackRecord:
    return TrackRecord(track_key=key, status="unknown", first_frame=key, last_frame=key + 10,
                       first_pts_s=0.0, last_pts_s=1.0, first_seen_at=t0,
                       last_seen_at=t0 + timedelta(seconds=1), n_detections=5, max_face_px=20.0,
                       quality=0.5, model=model, embedding=emb)


def _run(repo: Repository, camera: str = "cam1", sha: str = "a" * 64) -> tuple[int, int]:
    cam = repo.get_or_create_camera(camera)
    src = repo.get_or_create_source(f"/v/{camera}.mp4", sha, 10, 5.0)
    return repo.start_run(src, cam, {}, {}, "0.1.0", T0), cam


def _save(repo, run, cam, keys, vecs, model="m1", update_existing=False):
    repo.save_track_results(run, cam, [_track(k, v, model) for k, v in zip(keys, vecs)],
                            update_existing=update_existing)


def _ids_by_key(repo, run) -> dict[int, int]:
    return {t["track_key"]: t["track_id"] for t in repo.list_tracks(run_id=run)}


def test_incremental_sync_adds_only_new_tracks(repo, tmp_path):
    rng = np.random.default_rng(0)
    run, cam = _run(repo)
    vecs = _unit(rng, 8)
    _save(repo, run, cam, range(5), vecs[:5])
    ti = TrackIndex.open(repo, "m1", tmp_path)
    assert ti.last_sync["mode"] == "rebuild" and len(ti) == 5
    _save(repo, run, cam, range(5, 8), vecs[5:])
    again = TrackIndex.open(repo, "m1", tmp_path)  # from the cache file: only the 3 new ones
    assert again.last_sync == {"mode": "incremental", "fetched": 3, "count": 8, "saved": True}
    assert TrackIndex.open(repo, "m1", tmp_path).last_sync["mode"] == "noop"
    ids = _ids_by_key(repo, run)
    assert sorted(again.ids().tolist()) == sorted(ids.values())
    for key in (0, 6):  # each stored vector finds its own track first, with cosine 1
        (best, score), *_ = again.search(vecs[key], 3)
        assert best == ids[key] and score == pytest.approx(1.0, abs=1e-5)


def test_track_updated_in_place_is_reindexed_without_duplicate(repo, tmp_path):
    rng = np.random.default_rng(1)
    run, cam = _run(repo)
    vecs = _unit(rng, 4)
    _save(repo, run, cam, range(3), vecs[:3], update_existing=True)
    ti = TrackIndex.open(repo, "m1", tmp_path)
    _save(repo, run, cam, [1], vecs[3:4], update_existing=True)  # live track 1 changed
    assert ti.sync(repo)["mode"] == "incremental"
    ids = _ids_by_key(repo, run)
    assert len(ti) == 3 and sorted(ti.ids().tolist()) == sorted(ids.values())
    (best, score), = ti.search(vecs[3], 1)
    assert best == ids[1] and score == pytest.approx(1.0, abs=1e-5)
    old = dict(ti.search(vecs[1], 3))
    assert old.get(ids[1], -1.0) < 0.99  # the old vector is gone
    # the same from the cache file, via a fresh open
    fresh = TrackIndex.open(repo, "m1", tmp_path)
    assert fresh.last_sync["mode"] == "noop" and len(fresh) == 3


def test_epoch_bump_rebuilds_and_drops_deleted(repo, tmp_path):
    rng = np.random.default_rng(2)
    run, cam = _run(repo)
    vecs = _unit(rng, 4)
    _save(repo, run, cam, range(4), vecs)
    ids = _ids_by_key(repo, run)
    TrackIndex.open(repo, "m1", tmp_path)

    def forget(s):  # what purge / re-embedding do: drop embeddings, bump the epoch
        s.execute(update(TrackRow).where(TrackRow.id == ids[2]).values(embedding=None, dim=None,
                                                                       index_seq=None))
        repo._bump_index_epoch(s)

    repo._transact(forget, write=True)
    ti = TrackIndex.open(repo, "m1", tmp_path)
    assert ti.last_sync["mode"] == "rebuild" and len(ti) == 3 and ids[2] not in ti.ids().tolist()
    assert json.loads(index_paths(tmp_path, "m1")[1].read_text())["epoch"] == repo.track_index_state()[0]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "sidecar", "missing"])
def test_damaged_cache_is_rebuilt(repo, tmp_path, damage):
    rng = np.random.default_rng(3)
    run, cam = _run(repo)
    vecs = _unit(rng, 6)
    _save(repo, run, cam, range(6), vecs)
    TrackIndex.open(repo, "m1", tmp_path)
    path, side = index_paths(tmp_path, "m1")
    if damage == "garbage":
        path.write_bytes(b"not a faiss index" * 10)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "sidecar":  # an index paired with another state's sidecar
        meta = json.loads(side.read_text())
        side.write_text(json.dumps({**meta, "seq": meta["seq"] + 5}))
        path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    else:
        path.unlink()
    ti = TrackIndex.open(repo, "m1", tmp_path)
    assert ti.last_sync["mode"] == "rebuild" and len(ti) == 6
    assert TrackIndex.open(repo, "m1", tmp_path).last_sync["mode"] == "noop"


def test_models_never_mix(repo, tmp_path):
    rng = np.random.default_rng(4)
    run, cam = _run(repo)
    a, b = _unit(rng, 3), _unit(rng, 2, d=32)
    _save(repo, run, cam, range(3), a, model="m1")
    _save(repo, run, cam, range(3, 5), b, model="other/v2")
    ids = _ids_by_key(repo, run)
    m1 = TrackIndex.open(repo, "m1", tmp_path)
    m2 = TrackIndex.open(repo, "other/v2", tmp_path)
    assert sorted(m1.ids().tolist()) == sorted(ids[k] for k in range(3))
    assert sorted(m2.ids().tolist()) == sorted(ids[k] for k in range(3, 5))
    assert m1.dim == 16 and m2.dim == 32
    assert index_paths(tmp_path, "m1")[0].is_file() and index_paths(tmp_path, "other/v2")[0].is_file()
    assert TrackIndex.open(repo, "m3", tmp_path).search(a[0], 5) == []


@pytest.mark.parametrize("keys", [(3, 7, 11), tuple(range(2, 20, 2)) + (1, 5)],
                         ids=["few-scored-directly", "many-by-faiss-selector"])
def test_allowed_ids_restrict_the_candidates(repo, tmp_path, keys):
    rng = np.random.default_rng(5)
    run, cam = _run(repo)
    vecs = _unit(rng, 20)
    _save(repo, run, cam, range(20), vecs)
    ids = _ids_by_key(repo, run)
    ti = TrackIndex.open(repo, "m1", tmp_path)
    allowed = [ids[k] for k in keys]
    got = ti.search(vecs[0], 10, allowed_ids=allowed + [10**9])  # an id not indexed: ignored
    expected = sorted(keys, key=lambda k: -float(vecs[k] @ vecs[0]))[:10]
    assert [t for t, _ in got] == [ids[k] for k in expected]  # only those, best first
    assert [s for _, s in got] == pytest.approx([float(vecs[k] @ vecs[0]) for k in expected], abs=1e-5)
    assert ti.search(vecs[0], 10, allowed_ids=[]) == []
    assert ti.search(vecs[keys[1]], 1, allowed_ids=allowed)[0][0] == ids[keys[1]]
    # unfiltered: the same ranking as numpy brute force
    brute = np.argsort(-(vecs @ vecs[4]))[:5]
    assert [t for t, _ in ti.search(vecs[4], 5)] == [ids[int(k)] for k in brute]


def test_refresh_track_indexes_syncs_and_deletes(repo, tmp_path):
    rng = np.random.default_rng(6)
    run, cam = _run(repo)
    _save(repo, run, cam, range(3), _unit(rng, 3), model="m1")
    _save(repo, run, cam, range(3, 5), _unit(rng, 2), model="m2")
    data_dir = tmp_path / "data"
    TrackIndex.open(repo, "m1", data_dir / "index")
    TrackIndex.open(repo, "m2", data_dir / "index")
    ids = _ids_by_key(repo, run)
    (data_dir / "index" / "tracks-junk.faiss").write_bytes(b"junk")

    def drop_m2_and_one_m1(s):
        s.execute(update(TrackRow).where(TrackRow.model == "m2").values(embedding=None, dim=None))
        s.execute(update(TrackRow).where(TrackRow.id == ids[0]).values(embedding=None, dim=None))
        repo._bump_index_epoch(s)

    repo._transact(drop_m2_and_one_m1, write=True)
    out = refresh_track_indexes(repo, data_dir)
    assert out == {"m1": {"action": "synced", "count": 2}, "m2": {"action": "deleted", "count": 0},
                   "tracks-junk.faiss": {"action": "deleted", "count": 0}}
    assert sorted(p.name for p in (data_dir / "index").iterdir()) == ["tracks-m1.faiss", "tracks-m1.json"]
    cached = TrackIndex.open(repo, "m1", data_dir / "index")
    assert cached.last_sync["mode"] == "noop" and ids[0] not in cached.ids().tolist()
    assert refresh_track_indexes(repo, tmp_path / "nothing-here") == {}
