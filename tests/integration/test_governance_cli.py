"""Governance end to end on the processed street world: stored enrolment photos and
re-enrolment, remove-person (no vector left in the database or any index file), purge
(rows, crops and index entries together), the audit log, reembed, and bad input."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sqlite3
from datetime import datetime, timezone

import numpy as np
import pytest

from cctv_id.store import Repository
from cctv_id.watchlist.matcher import WatchlistMatcher
from cctv_id.watchlist.track_index import TrackIndex

from cli_run import one_error_line
from investigation import START


def _sql(world, query, *args):
    con = sqlite3.connect(world.db_path)
    try:
        rows = con.execute(query, args).fetchall()
        con.commit()
        return rows
    finally:
        con.close()


def _audit(world, action):
    return json.loads(world.ok("audit", "--action", action, "--format", "json").stdout)


def _vec(blob, dim):
    v = np.frombuffer(blob, np.float32, count=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _index_vectors(world) -> dict[str, np.ndarray]:
    """Every vector of every FAISS file under data_dir/index (unit rows)."""
    import faiss

    out = {}
    for path in sorted((world.data_dir / "index").glob("*.faiss")):
        index = faiss.read_index(str(path))
        flat = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
        vecs = flat.reconstruct_n(0, flat.ntotal) if flat.ntotal else np.zeros((0, flat.d), np.float32)
        out[path.name] = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    return out


def _index_ids(world) -> set[int]:
    import faiss

    ids = set()
    for path in (world.data_dir / "index").glob("tracks-*.faiss"):
        index = faiss.read_index(str(path))
        ids |= set(faiss.vector_to_array(index.id_map).tolist())
    return ids


def _build_caches(world) -> str:
    """Write the watchlist cache and the track index under data_dir/index, as searches do."""
    with Repository(world.db_url) as repo:
        model = _sql(world, "SELECT model FROM enrolments LIMIT 1")[0][0]
        WatchlistMatcher.load(repo, model, world.data_dir / "index")
        ti = TrackIndex.open(repo, model, world.data_dir / "index")
        ti.save()
    return model


def _contains(vectors: dict[str, np.ndarray], probes: np.ndarray) -> list[str]:
    return [name for name, v in vectors.items()
            if len(v) and v.shape[1] == probes.shape[1] and (v @ probes.T).max() > 0.9999]


def test_enrol_stores_photos_re_enrol_replaces_and_is_audited(world):
    photos = world.photos("7218")
    # --no-retro: this is about photos and the enrol entries (retro-matching on enrolment is
    # tested in test_investigator_flow.py)
    world.ok("--operator", "olga", "enroll", "--no-retro", "--largest", "--name", "7218",
             *map(str, photos[1:3]))
    rows = _sql(world, "SELECT e.stored_photo, e.photo_sha256, e.person_id FROM enrolments e "
                       "JOIN persons p ON p.id = e.person_id WHERE p.name = '7218'")
    assert len(rows) == 2
    for stored, sha, person_id in rows:
        assert stored == f"enrolments/{person_id}/{sha}.jpg"
        assert hashlib.sha256((world.data_dir / stored).read_bytes()).hexdigest() == sha
    assert not list(world.data_dir.rglob("*.pending"))

    out = world.ok("enroll", "--no-retro", "--largest", "--replace", "--name", "7218",
                   str(photos[3]))
    assert "replacing 2 old enrolment(s)" in out.stdout
    (stored, sha, person_id), = _sql(world, "SELECT e.stored_photo, e.photo_sha256, e.person_id "
                                            "FROM enrolments e JOIN persons p ON p.id = e.person_id "
                                            "WHERE p.name = '7218'")
    assert sha == hashlib.sha256(photos[3].read_bytes()).hexdigest()
    assert sorted(p.name for p in (world.data_dir / "enrolments" / str(person_id)).iterdir()) \
        == [f"{sha}.jpg"]  # the replaced photos' copies are gone
    persons = {p["name"]: p for p in json.loads(world.ok("persons", "--format", "json").stdout)}
    assert persons["7218"]["n_photos"] == 1 and persons["7218"]["n_hits"] == 0
    assert persons["7201"]["n_hits"] >= 1 and len(persons["7201"]["models"]) == 1
    assert "models" in world.ok("persons").stdout.splitlines()[0]

    entries = [e for e in _audit(world, "enrol") if e["params"]["persons"] == ["7218"]]
    assert [(e["operator"], e["params"]["replace"], e["outcome"]["n_new"]) for e in entries] == \
        [("olga", False, 2), (getpass.getuser(), True, 1)]
    table = world.ok("audit", "--operator", "olga").stdout.splitlines()
    assert table[0].split()[:4] == ["id", "at", "operator", "action"] and len(table) == 2
    since = entries[1]["at"]
    assert [e["id"] for e in json.loads(world.ok("audit", "--since", since, "--format",
                                                 "json").stdout)] == [entries[1]["id"]]


def test_remove_person_leaves_no_vector_in_the_database_or_any_index_file(world):
    model = _build_caches(world)
    with Repository(world.db_url) as repo:
        wl = repo.watchlist(model)
    enrolled = np.stack([v / np.linalg.norm(v) for v, n in zip(wl.embeddings, wl.names)
                         if n == "7201"])
    assert len(enrolled) == 2
    assert _contains(_index_vectors(world), enrolled)  # the cache holds them before
    (person_id,), = _sql(world, "SELECT id FROM persons WHERE name = '7201'")
    photo_files = list((world.data_dir / "enrolments" / str(person_id)).iterdir())
    assert len(photo_files) == 2
    hits_before = json.loads(world.ok("hits", "--person", "7201", "--format", "json").stdout)
    assert hits_before

    out = world.ok("--operator", "olga", "remove-person", "7201", "--yes")
    assert "2 enrolment(s), 2 stored photo(s); past hits kept" in out.stdout
    assert _sql(world, "SELECT COUNT(*) FROM enrolments WHERE person_id = ?", person_id) == [(0,)]
    assert not any(p.exists() for p in photo_files)
    assert not _contains(_index_vectors(world), enrolled)
    for blob, dim in _sql(world, "SELECT embedding, dim FROM enrolments"):
        assert (enrolled @ _vec(blob, dim)).max() < 0.9999
    assert json.loads(world.ok("hits", "--person", "7201", "--format", "json").stdout) == hits_before

    # --purge-hits: the hits, their tracks (rows, crops, embeddings, index entries), the person
    _build_caches(world)
    track_ids = {h["track_id"] for h in hits_before}
    crops = [world.data_dir / p for (p,) in _sql(
        world, f"SELECT crop_path FROM tracks WHERE id IN ({','.join(map(str, track_ids))})") if p]
    assert crops and all(c.is_file() for c in crops) and track_ids <= _index_ids(world)
    out = world.ok("--operator", "olga", "remove-person", "7201", "--purge-hits", "--yes",
                   "--format", "json")
    done = json.loads(out.stdout)
    assert (done["n_hits"], done["n_tracks"]) == (len(hits_before), len(track_ids))
    assert not any(c.exists() for c in crops)
    assert not track_ids & _index_ids(world)
    assert _sql(world, "SELECT COUNT(*) FROM tracks WHERE id IN "
                       f"({','.join(map(str, track_ids))})") == [(0,)]
    assert "7201" not in {p["name"] for p in json.loads(world.ok("persons", "--format", "json").stdout)}
    entries = _audit(world, "remove-person")
    assert [(e["operator"], e["params"]) for e in entries] == [
        ("olga", {"person": "7201", "purge_hits": False}),
        ("olga", {"person": "7201", "purge_hits": True})]


def test_purge_removes_rows_crops_and_index_entries(world):
    _build_caches(world)
    unknown = _sql(world, "SELECT id, crop_path FROM tracks t WHERE NOT EXISTS "
                          "(SELECT 1 FROM hits h WHERE h.track_id = t.id)")
    assert len(unknown) >= 4 and all((world.data_dir / p).is_file() for _, p in unknown if p)
    n_hits = _sql(world, "SELECT COUNT(*) FROM hits")[0][0]
    n_tracks = _sql(world, "SELECT COUNT(*) FROM tracks")[0][0]
    keep_hits = f"{(datetime.now(timezone.utc) - START).days + 30}d"  # the hits are newer

    dry = json.loads(world.ok("purge", "--unknown-older-than", "1h", "--hits-older-than", keep_hits,
                              "--dry-run", "--format", "json").stdout)
    assert (dry["n_tracks"], dry["n_hits"]) == (len(unknown), 0)
    assert _sql(world, "SELECT COUNT(*) FROM tracks")[0][0] == n_tracks
    assert all((world.data_dir / p).is_file() for _, p in unknown if p) and not _audit(world, "purge")

    out = world.ok("--operator", "olga", "purge", "--unknown-older-than", "1h",
                   "--hits-older-than", keep_hits)
    assert out.stdout.startswith(f"deleted 0 hit(s), {len(unknown)} track(s)")
    assert not any((world.data_dir / p).exists() for _, p in unknown if p)
    assert _sql(world, "SELECT COUNT(*) FROM hits")[0][0] == n_hits
    gone = {i for i, _ in unknown}
    assert not gone & {i for (i,) in _sql(world, "SELECT id FROM tracks")}
    assert not gone & _index_ids(world) and _index_ids(world)  # the hits' tracks stay indexed
    (entry,) = _audit(world, "purge")
    assert entry["operator"] == "olga" and entry["outcome"]["n_tracks"] == len(unknown)
    assert entry["params"]["unknown_older_than"] == "1h"


def test_reembed_recomputes_other_models_embeddings_from_crops_and_photos(world):
    model = _sql(world, "SELECT model FROM enrolments LIMIT 1")[0][0]
    tracks = _sql(world, "SELECT id, embedding, dim, crop_landmarks FROM tracks "
                         "WHERE embedding IS NOT NULL AND crop_path IS NOT NULL ORDER BY id")
    assert len(tracks) >= 4 and all(lm is not None for *_, lm in tracks)
    original = {i: _vec(b, d) for i, b, d, _ in tracks}
    no_lms, no_crop = tracks[0][0], tracks[1][0]
    (crop_rel,), = _sql(world, "SELECT crop_path FROM tracks WHERE id = ?", no_crop)
    (world.data_dir / crop_rel).unlink()
    _sql(world, "UPDATE tracks SET model = 'old-model'")
    _sql(world, "UPDATE tracks SET crop_landmarks = NULL WHERE id = ?", no_lms)
    enrol_before = {(p, s): _vec(b, d) for p, s, b, d in _sql(
        world, "SELECT person_id, photo_sha256, embedding, dim FROM enrolments")}
    _sql(world, "UPDATE enrolments SET model = 'old-model' WHERE person_id = "
                "(SELECT id FROM persons WHERE name = '7230')")

    n_unembedded = _sql(world, "SELECT COUNT(*) FROM tracks WHERE embedding IS NULL")[0][0]
    assert n_unembedded >= 1  # too small to identify: no embedding, and none made by reembed
    out = json.loads(world.ok("--operator", "olga", "reembed", "--yes", "--batch", "3",
                              "--format", "json").stdout)
    assert out["model"] == model and out["n_tracks"] == _sql(world, "SELECT COUNT(*) FROM tracks")[0][0]
    assert [t["track_id"] for t in out["tracks_failed"]] == [no_crop]
    assert out["n_tracks_detected"] == 1 and out["n_enrolments"] == 2
    assert out["n_tracks_unembedded"] == n_unembedded
    assert out["n_tracks_landmarks"] == out["n_tracks"] - n_unembedded - 2
    assert _sql(world, "SELECT DISTINCT model FROM tracks") == [(model,)]
    assert _sql(world, "SELECT DISTINCT model FROM enrolments") == [(model,)]
    assert _sql(world, "SELECT embedding, index_seq FROM tracks WHERE id = ?", no_crop) == [(None, None)]
    assert _sql(world, "SELECT COUNT(*) FROM tracks WHERE embedding IS NULL")[0][0] == n_unembedded + 1
    after = {i: _vec(b, d) for i, b, d in _sql(
        world, "SELECT id, embedding, dim FROM tracks WHERE embedding IS NOT NULL")}
    cos = {i: float(after[i] @ original[i]) for i in original if i != no_crop}
    assert min(cos.values()) > 0.9, cos
    for (p, s, b, d) in _sql(world, "SELECT person_id, photo_sha256, embedding, dim FROM enrolments"):
        assert float(_vec(b, d) @ enrol_before[(p, s)]) > 0.99
    (entry,) = _audit(world, "reembed")
    assert entry["operator"] == "olga" and entry["outcome"]["n_tracks_failed"] == 1
    assert "nothing to re-embed" in world.ok("reembed").stdout


@pytest.mark.parametrize("args, needle", [
    (["remove-person", "nobody", "--yes"], "unknown person 'nobody'; enrolled: 7201, 7230"),
    (["remove-person", "7201"], "pass --yes"),
    (["purge"], "say what to purge"),
    (["purge", "--unknown-older-than", "30x"], "invalid --unknown-older-than '30x'"),
    (["purge", "--hits-older-than", "0d"], "must be more than zero"),
    (["purge", "--hits-older-than", "soon", "--dry-run"], "invalid --hits-older-than 'soon'"),
    (["audit", "--since", "yesterday"], "invalid --since 'yesterday'"),
    (["audit", "--until", "2026-13-40"], "invalid --until"),
    (["audit", "--action", "delete"], "unknown action 'delete'"),
])
def test_bad_input_is_one_line_and_changes_nothing(world, args, needle):
    if "--yes" not in args and args[0] == "remove-person" and os.isatty(0):
        pytest.skip("stdin is a terminal: the command would ask")
    tables = ("enrolments", "persons", "tracks", "hits", "audit_log")
    before = {t: _sql(world, f"SELECT COUNT(*) FROM {t}") for t in tables}
    proc = world.cli(*args)
    assert proc.returncode != 0
    assert needle in one_error_line(proc)
    assert {t: _sql(world, f"SELECT COUNT(*) FROM {t}") for t in tables} == before
