"""Bookkeeping that keeps the track search index (a FAISS cache) in step with the database.

Every write of a track embedding takes the next number of a counter kept in ``meta``
(``track_index_seq``), inside the writing transaction: the counter's row lock (PostgreSQL)
or the write lock (SQLite) makes the numbers follow commit order, so an index that has
seen every track up to number N only ever needs the tracks numbered above N. Deleting
track embeddings (purge, re-embedding, removal) bumps ``track_index_epoch`` instead, which
tells every index built before that it must be rebuilt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import Integer, String, cast, select, update
from sqlalchemy.orm import Session

from cctv_id.store.encoding import _unblob
from cctv_id.store.engine import RepositoryBase
from cctv_id.store.models import TRACK_INDEX_EPOCH_KEY, TRACK_INDEX_SEQ_KEY, Meta, TrackRow


@dataclass(frozen=True)
class TrackEmbeddings:
    """Track embeddings of one model written after some sequence number."""

    epoch: int
    seq: int  # the counter when read: everything up to it is included
    track_ids: np.ndarray  # (N,) int64
    vectors: np.ndarray  # (N, D) float32
    seqs: np.ndarray  # (N,) int64


class TrackIndexMixin(RepositoryBase):
    """Sequence numbers and epochs of the track search index (part of :class:`Repository`)."""

    @staticmethod
    def _meta_int(s: Session, key: str) -> int:
        value = s.execute(select(Meta.value).where(Meta.key == key)).scalar()
        return int(value) if value is not None else 0

    def _add_to_meta(self, s: Session, key: str, n: int) -> int:
        """Add ``n`` to the counter ``key`` (locking its row until commit); the new value."""
        res = s.execute(update(Meta).where(Meta.key == key)
                        .values(value=cast(cast(Meta.value, Integer) + n, String)))
        if res.rowcount == 0:
            s.add(Meta(key=key, value=str(n)))
            s.flush()
        return self._meta_int(s, key)

    def _take_index_seqs(self, s: Session, n: int) -> list[int]:
        """``n`` fresh sequence numbers for track embeddings written in ``s``."""
        if n <= 0:
            return []
        top = self._add_to_meta(s, TRACK_INDEX_SEQ_KEY, n)
        return list(range(top - n + 1, top + 1))

    def _bump_index_epoch(self, s: Session) -> None:
        self._add_to_meta(s, TRACK_INDEX_EPOCH_KEY, 1)

    def track_index_state(self) -> tuple[int, int]:
        """(epoch, seq) now."""
        return self._transact(lambda s: (self._meta_int(s, TRACK_INDEX_EPOCH_KEY),
                                         self._meta_int(s, TRACK_INDEX_SEQ_KEY)))

    def track_embeddings(self, model: str, after_seq: int = 0) -> TrackEmbeddings:
        """Embeddings of ``model``'s tracks written after ``after_seq``, in write order."""

        def body(s: Session):
            epoch = self._meta_int(s, TRACK_INDEX_EPOCH_KEY)
            seq = self._meta_int(s, TRACK_INDEX_SEQ_KEY)
            rows = s.execute(
                select(TrackRow.id, TrackRow.embedding, TrackRow.dim, TrackRow.index_seq)
                .where(TrackRow.model == model, TrackRow.embedding.is_not(None),
                       TrackRow.index_seq > int(after_seq), TrackRow.index_seq <= seq)
                .order_by(TrackRow.index_seq)
            ).all()
            return epoch, seq, rows

        epoch, seq, rows = self._transact(body)
        if not rows:
            return TrackEmbeddings(epoch, seq, np.zeros((0,), np.int64), np.zeros((0, 0), np.float32),
                                   np.zeros((0,), np.int64))
        return TrackEmbeddings(
            epoch=epoch,
            seq=seq,
            track_ids=np.array([r.id for r in rows], np.int64),
            vectors=np.stack([_unblob(r.embedding, r.dim) for r in rows]).astype(np.float32),
            seqs=np.array([r.index_seq for r in rows], np.int64),
        )

    def track_models(self) -> dict[str, int]:
        """How many stored track embeddings each model made."""
        from sqlalchemy import func

        def body(s: Session):
            return dict(s.execute(select(TrackRow.model, func.count()).where(
                TrackRow.embedding.is_not(None)).group_by(TrackRow.model)).all())

        return {k: int(v) for k, v in self._transact(body).items()}
