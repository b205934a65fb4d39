"""In-memory watchlist matcher built from the database, with a FAISS index as a cache.

The database is the source of truth: ``WatchlistMatcher.load`` reads every enrolment
embedding of one recogniser and builds an exact inner-product FAISS index. The index may
be cached on disk under ``data_dir/index/``; a cached file is used only if its name carries
the watchlist generation currently stored in the database, so any enrolment or removal
(which bumps the generation) invalidates it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..types import Match

log = logging.getLogger(__name__)


class WatchlistMatcher:
    def __init__(self, person_ids: np.ndarray, names: list[str], embeddings: np.ndarray,
                 generation: int, model: str, index=None):
        self.person_ids = np.asarray(person_ids, np.int64)
        self.names = list(names)
        self.embeddings = np.ascontiguousarray(embeddings, np.float32).reshape(len(self.names), -1) \
            if len(self.names) else np.zeros((0, 0), np.float32)
        self.generation = generation
        self.model = model
        self._index = index

    # ---------------------------------------------------------------- construction
    @classmethod
    def load(cls, repo, model: str, cache_dir: Path | None = None) -> WatchlistMatcher:
        data = repo.watchlist(model)
        matcher = cls(data.person_ids, data.names, data.embeddings, data.generation, model)
        if len(matcher.names):
            matcher._index = matcher._load_or_build_index(cache_dir)
        return matcher

    def _cache_path(self, cache_dir: Path) -> Path:
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.model)
        return cache_dir / f"watchlist-{safe}-gen{self.generation}.faiss"

    def _load_or_build_index(self, cache_dir: Path | None):
        import faiss

        if cache_dir is not None:
            path = self._cache_path(cache_dir)
            if path.is_file():
                try:
                    index = faiss.read_index(str(path))
                    if index.ntotal == len(self.names) and index.d == self.embeddings.shape[1]:
                        return index
                except RuntimeError:
                    log.warning("ignoring unreadable index cache %s", path)
        index = faiss.IndexFlatIP(self.embeddings.shape[1])
        index.add(self.embeddings)
        if cache_dir is not None:
            self._write_cache(index, cache_dir)
        return index

    def _write_cache(self, index, cache_dir: Path) -> None:
        """Best effort: the cache is optional, a full or read-only disk only costs speed."""
        import faiss

        final = self._cache_path(cache_dir)
        tmp = final.with_suffix(".tmp")
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            prefix = final.name.split("-gen")[0]
            for stale in cache_dir.glob(prefix + "-gen*.faiss"):
                stale.unlink(missing_ok=True)
            data = faiss.serialize_index(index).tobytes()
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            log.warning("could not cache the watchlist index in %s: %s", cache_dir,
                        exc.strerror or exc)

    # ---------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(set(self.names))

    @property
    def empty(self) -> bool:
        return not self.names

    def match(self, track_id: int, vector: np.ndarray) -> list[Match]:
        """Best score per person for one unit vector, best first."""
        if self.empty or vector is None:
            return []
        q = np.ascontiguousarray(vector, np.float32).reshape(1, -1)
        k = len(self.names)
        scores, idx = self._index.search(q, k)
        best: dict[int, Match] = {}
        for s, i in zip(scores[0], idx[0]):
            if i < 0:
                continue
            pid = int(self.person_ids[i])
            if pid not in best or s > best[pid].score:
                best[pid] = Match(track_id, pid, self.names[i], float(s))
        return sorted(best.values(), key=lambda m: m.score, reverse=True)
