"""The watchlist matcher: loaded from the database, best score per person, FAISS cache tied
to the watchlist generation."""

from __future__ import annotations

import numpy as np

from cctv_id.store.repository import Repository
from cctv_id.watchlist.matcher import WatchlistMatcher


def _unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def _enrol(repo, name, vec, tag):
    repo.add_enrolment(name, f"/photos/{name}-{tag}.jpg", f"{name}-{tag}".ljust(64, "0"),
                       "m", _unit(vec), 40.0)


def test_best_score_per_person_and_cache_invalidation(tmp_path):
    repo = Repository(f"sqlite:///{tmp_path / 'w.db'}")
    _enrol(repo, "ann", [1, 0, 0, 0], "a")
    _enrol(repo, "ann", [0.8, 0.6, 0, 0], "b")
    _enrol(repo, "bob", [0, 0, 1, 0], "a")
    cache = tmp_path / "index"
    m = WatchlistMatcher.load(repo, "m", cache_dir=cache)
    matches = m.match(5, _unit([0.9, 0.5, 0.1, 0]))
    assert [x.person_name for x in matches] == ["ann", "bob"]
    assert matches[0].score > 0.98 and matches[0].track_id == 5
    assert len(list(cache.glob("*.faiss"))) == 1
    gen = m.generation
    # a new enrolment bumps the generation: the old cache file is replaced
    _enrol(repo, "cid", [0, 0, 0, 1], "a")
    m2 = WatchlistMatcher.load(repo, "m", cache_dir=cache)
    assert m2.generation > gen
    files = list(cache.glob("*.faiss"))
    assert len(files) == 1 and f"gen{m2.generation}" in files[0].name
    assert m2.match(1, _unit([0, 0, 0, 1]))[0].person_name == "cid"
    # other recognisers' embeddings are not mixed in
    assert WatchlistMatcher.load(repo, "other-model").empty
    repo.close()
