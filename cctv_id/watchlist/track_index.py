"""FAISS index of stored track embeddings (one per recogniser), kept in step with the database.

Owns the search-by-similarity cache over every stored track, known or unknown. The database
is the source of truth (``cctv_id/store/track_index.py``): every write of a track embedding
takes a sequence number, every deletion bumps an epoch. An index remembers the (epoch, seq)
it has seen, so :meth:`TrackIndex.sync` either fetches only the tracks written since (and
replaces them by id: a live track updated in place gets a new number, never a duplicate) or,
when the epoch moved, rebuilds from scratch.

On disk the index lives under ``data_dir/index/tracks-<model>.faiss`` with a JSON sidecar
(``.json``: model, dim, epoch, seq, count and the sha256 of the index bytes, so a pair torn
by a crash or by two writers is detected and rebuilt). Writes are atomic (temporary file +
``os.replace``) and best effort: an unwritable disk only costs speed. Models never mix: an
index holds one model's embeddings, and a search only ever reads the index of the model asked
for. :func:`refresh_track_indexes` brings every cache file under a data folder up to date (or
deletes it), so embeddings deleted from the database do not linger in index files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Iterable

import numpy as np

log = logging.getLogger(__name__)

FORMAT = 1
PREFIX = "tracks-"
# a filter keeping under 1/SUBSET_BRUTE_FORCE of the index scores the kept vectors directly
SUBSET_BRUTE_FORCE = 4


def safe_model_name(model: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in model)


def index_paths(cache_dir: Path, model: str) -> tuple[Path, Path]:
    """(index file, sidecar) of ``model`` under ``cache_dir``."""
    base = Path(cache_dir) / f"{PREFIX}{safe_model_name(model)}"
    return base.with_name(base.name + ".faiss"), base.with_name(base.name + ".json")


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(vectors, np.float32)
    if v.ndim == 1:
        v = v.reshape(1, -1)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.ascontiguousarray(v / np.where(norms > 0, norms, 1.0), np.float32)


class TrackIndex:
    """Exact inner-product index (``IndexIDMap2(IndexFlatIP)``) of one model's track
    embeddings, keyed by track id; scores are cosine similarities."""

    def __init__(self, model: str, cache_dir: Path | None = None):
        self.model = model
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.index = None  # built at the first embedding (the dimension comes from the data)
        self.dim: int | None = None
        self.epoch = -1  # nothing seen yet: the first sync rebuilds
        self.seq = 0
        self.last_sync: dict = {}

    # ---------------------------------------------------------------- construction
    @classmethod
    def open(cls, repo, model: str, cache_dir: Path | None = None) -> TrackIndex:
        """The cached index of ``model`` (if any, and intact), brought up to date."""
        ti = cls(model, cache_dir)
        if cache_dir is not None:
            ti._load_cache()
        ti.sync(repo)
        return ti

    def __len__(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    def _new_index(self, dim: int):
        import faiss

        self.dim = int(dim)
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    # ---------------------------------------------------------------- keeping in step
    def sync(self, repo) -> dict:
        """Catch up with the database; returns what was done: ``{"mode": "rebuild" |
        "incremental" | "noop", "fetched": n, "count": ntotal, "saved": bool | None}``
        (saved: whether the cache file was rewritten; None when there was nothing to write)."""
        epoch, seq = repo.track_index_state()
        if epoch != self.epoch or seq < self.seq:
            data = repo.track_embeddings(self.model, 0)
            self._rebuild(data)
            mode = "rebuild"
        elif seq == self.seq:
            data = None
            mode = "noop"
        else:
            data = repo.track_embeddings(self.model, after_seq=self.seq)
            if data.epoch != self.epoch:  # deleted in between the two reads
                data = repo.track_embeddings(self.model, 0)
                self._rebuild(data)
                mode = "rebuild"
            elif len(data.track_ids) and self.dim is not None and data.vectors.shape[1] != self.dim:
                data = repo.track_embeddings(self.model, 0)  # should not happen: start over
                self._rebuild(data)
                mode = "rebuild"
            else:
                self._apply(data)
                mode = "incremental"
        fetched = 0 if data is None else len(data.track_ids)
        if data is not None:
            self.epoch, self.seq = data.epoch, data.seq
        saved = self.save() if mode != "noop" and self.cache_dir is not None else None
        self.last_sync = {"mode": mode, "fetched": fetched, "count": len(self), "saved": saved}
        return self.last_sync

    def _rebuild(self, data) -> None:
        self.index, self.dim = None, None
        if len(data.track_ids):
            self._new_index(data.vectors.shape[1])
            self.index.add_with_ids(_unit_rows(data.vectors), np.ascontiguousarray(data.track_ids, np.int64))

    def _apply(self, data) -> None:
        if not len(data.track_ids):
            return
        if self.index is None:
            self._new_index(data.vectors.shape[1])
        # a track written twice since the last sync: keep its last (highest-seq) vector
        ids = np.asarray(data.track_ids, np.int64)
        _, last = np.unique(ids[::-1], return_index=True)
        keep = np.sort(len(ids) - 1 - last)
        ids = np.ascontiguousarray(ids[keep])
        self.remove(ids)
        self.index.add_with_ids(_unit_rows(data.vectors[keep]), ids)

    def remove(self, track_ids: Iterable[int]) -> int:
        """Drop these ids from the index (in memory); returns how many were there."""
        import faiss

        if self.index is None:
            return 0
        ids = np.ascontiguousarray(np.fromiter((int(t) for t in track_ids), np.int64))
        if not len(ids):
            return 0
        return int(self.index.remove_ids(faiss.IDSelectorBatch(ids)))

    # ---------------------------------------------------------------- queries
    def search(self, vector: np.ndarray, k: int, allowed_ids: Iterable[int] | None = None
               ) -> list[tuple[int, float]]:
        """The ``k`` most similar tracks as (track_id, cosine), best first; with
        ``allowed_ids`` only among those tracks."""
        import faiss

        if self.index is None or self.index.ntotal == 0 or k <= 0:
            return []
        q = _unit_rows(vector)
        if q.shape[1] != self.dim:
            raise ValueError(f"query has {q.shape[1]} dimensions, the {self.model} track index {self.dim}")
        n = int(self.index.ntotal)
        if allowed_ids is None:
            scores, labels = self.index.search(q, min(int(k), n))
            return [(int(t), float(s)) for t, s in zip(labels[0], scores[0]) if t >= 0]
        allowed = np.unique(np.asarray(allowed_ids if isinstance(allowed_ids, np.ndarray)
                                       else list(allowed_ids), np.int64).reshape(-1))
        if len(allowed) * SUBSET_BRUTE_FORCE > n:
            # a large share of the index: FAISS's own scan, skipping the others by selector
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
            scores, labels = self.index.search(q, min(int(k), n, len(allowed)), params=params)
            return [(int(t), float(s)) for t, s in zip(labels[0], scores[0]) if t >= 0]
        # a small share: score just those vectors (a filtered flat scan is not vectorised)
        if not len(allowed):
            return []
        try:
            vectors = self.index.reconstruct_batch(allowed)
        except RuntimeError:  # some id is not indexed (deleted meanwhile): leave those out
            allowed = allowed[np.isin(allowed, self.ids())]
            if not len(allowed):
                return []
            vectors = self.index.reconstruct_batch(allowed)
        scores = vectors @ q[0]
        k = min(int(k), len(allowed))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((allowed[top], -scores[top]))]
        return [(int(allowed[i]), float(scores[i])) for i in top]

    def ids(self) -> np.ndarray:
        """Every track id in the index (for checks and tests)."""
        import faiss

        if self.index is None:
            return np.zeros((0,), np.int64)
        return faiss.vector_to_array(self.index.id_map).astype(np.int64)

    # ---------------------------------------------------------------- the cache file
    def _load_cache(self) -> bool:
        import faiss

        path, side = index_paths(self.cache_dir, self.model)
        try:
            meta = json.loads(side.read_text())
            data = path.read_bytes()
        except (OSError, ValueError):
            return False
        try:
            ok = (meta.get("format") == FORMAT and meta.get("model") == self.model
                  and meta.get("sha256") == hashlib.sha256(data).hexdigest())
            if not ok:
                raise ValueError("sidecar does not describe the index file")
            index = faiss.deserialize_index(np.frombuffer(data, np.uint8))
            if not isinstance(index, faiss.IndexIDMap2):
                raise ValueError(f"not an IndexIDMap2 but {type(index).__name__}")
            if index.ntotal != int(meta["count"]) or index.d != int(meta["dim"]):
                raise ValueError("count or dimension differ from the sidecar")
        except Exception as exc:  # noqa: BLE001 - a corrupt cache is rebuilt, whatever the damage
            log.warning("ignoring unusable track index cache %s: %s", path, exc)
            return False
        self.index, self.dim = index, int(meta["dim"])
        self.epoch, self.seq = int(meta["epoch"]), int(meta["seq"])
        return True

    def save(self) -> bool:
        """Write the cache (atomically, best effort); an empty index deletes it. True when the
        file on disk now matches this index."""
        import faiss

        if self.cache_dir is None:
            return False
        path, side = index_paths(self.cache_dir, self.model)
        if self.index is None or self.index.ntotal == 0:
            return delete_cache(self.cache_dir, self.model)
        tmp_path, tmp_side = path.with_suffix(".faiss.tmp"), side.with_suffix(".json.tmp")
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            data = faiss.serialize_index(self.index).tobytes()
            meta = {"format": FORMAT, "model": self.model, "dim": self.dim, "epoch": self.epoch,
                    "seq": self.seq, "count": int(self.index.ntotal),
                    "sha256": hashlib.sha256(data).hexdigest()}
            _write(tmp_path, data)
            _write(tmp_side, json.dumps(meta).encode())
            os.replace(tmp_path, path)
            os.replace(tmp_side, side)
            return True
        except OSError as exc:
            for tmp in (tmp_path, tmp_side):
                try:
                    tmp.unlink(missing_ok=True)
                except OSError:
                    pass
            log.warning("could not cache the track index in %s: %s", self.cache_dir,
                        exc.strerror or exc)
            return False


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def delete_cache(cache_dir: Path, model: str) -> bool:
    """Remove ``model``'s index file and sidecar; True when none is left."""
    ok = True
    for p in index_paths(cache_dir, model):
        try:
            p.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete %s: %s", p, exc.strerror or exc)
            ok = False
    return ok


def refresh_track_indexes(repo, data_dir: Path) -> dict[str, dict]:
    """Bring every track index file under ``data_dir/index`` in step with the database.

    Called after anything that deletes or changes track embeddings (purge, remove-person,
    re-embedding): an index whose model still has tracks is synced (rebuilt when the epoch
    moved) and rewritten; a file whose model has no tracks left, or that cannot be read or
    rewritten, is deleted, so no deleted embedding stays on disk. Returns, per model (or file
    name when the model is unknown), ``{"action": "synced"|"deleted", "count": n}``.
    """
    cache_dir = Path(data_dir) / "index"
    if not cache_dir.is_dir():
        return {}
    models = repo.track_models()
    by_safe = {safe_model_name(m): m for m in models}
    out: dict[str, dict] = {}
    for path in sorted(cache_dir.glob(PREFIX + "*.faiss")):
        side = path.with_suffix(".json")
        model = None
        try:
            model = json.loads(side.read_text()).get("model")
        except (OSError, ValueError, AttributeError):
            pass
        if model is None:
            model = by_safe.get(path.stem[len(PREFIX):])
        if model is not None and index_paths(cache_dir, model)[0] != path:
            model = None  # a sidecar that does not belong to this file
        if model is None or model not in models:
            for p in (path, side):
                try:
                    p.unlink(missing_ok=True)
                except OSError as exc:
                    log.warning("could not delete %s: %s", p, exc.strerror or exc)
            out[model or path.name] = {"action": "deleted", "count": 0}
            continue
        ti = TrackIndex(model, cache_dir)
        loaded = ti._load_cache()
        done = ti.sync(repo)
        if not (done["saved"] if done["mode"] != "noop" else loaded):
            # could not rewrite it: a stale file must not stay behind
            delete_cache(cache_dir, model)
            out[model] = {"action": "deleted", "count": 0}
        else:
            out[model] = {"action": "synced", "count": len(ti)}
    return out
