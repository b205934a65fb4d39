"""Evidence files under ``data_dir``: the best-shot crop and the context frame of each
stored track.

For track 4 of run 1: ``crops/run000001/track000004.jpg`` is the best shot's image patch
(the face with context, the crop the landmarks stored with the track refer to) and
``crops/run000001/track000004.ctx.jpg`` the whole frame of that best shot as the tracker
kept it (downscaled to a long side of 960 px at most, nothing drawn on it: the face box is
the track's / hit's ``best_shot_bbox`` times the frame's downscale factor).

Crash-safe protocol: a file is first written as ``<name>.pending`` (``write_pending``), the
database transaction that references it commits, and only then is it renamed into place
(``publish``); if the transaction fails the pending file is removed (``discard_pending``).
After a crash, ``cctv-id fsck`` finishes or undoes what was left half-way. Paths stored in
the database are relative to ``data_dir``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2

from ..errors import CctvIdError
from ..types import Track

PENDING_SUFFIX = ".pending"
CONTEXT_SUFFIX = ".ctx.jpg"


def _unlink(path: Path) -> None:
    """Remove a file if it is there (a parent that is not a folder counts as "not there")."""
    try:
        path.unlink(missing_ok=True)
    except (NotADirectoryError, IsADirectoryError):
        pass


@dataclass(frozen=True)
class TrackEvidence:
    """The evidence files written for one track (paths relative to ``data_dir``)."""

    crop: str | None = None
    context: str | None = None

    @property
    def files(self) -> list[str]:
        return [rel for rel in (self.crop, self.context) if rel]


class EvidenceWriter:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)

    @staticmethod
    def crop_relpath(run_id: int, track_id: int) -> str:
        return f"crops/run{run_id:06d}/track{track_id:06d}.jpg"

    @staticmethod
    def context_relpath(run_id: int, track_id: int) -> str:
        return f"crops/run{run_id:06d}/track{track_id:06d}{CONTEXT_SUFFIX}"

    def path(self, rel: str) -> Path:
        return self.data_dir / rel

    def write_pending(self, run_id: int, track: Track) -> TrackEvidence:
        """Write the best shot of ``track`` and its context frame (when the tracker kept
        one) under pending names; returns their final relpaths (None for what was not
        written). On failure nothing of this track is left behind."""
        if not track.best:
            return TrackEvidence()
        crop = context = None
        ok, buf = cv2.imencode(".jpg", track.best[0].patch, [cv2.IMWRITE_JPEG_QUALITY, 95])
        try:
            if ok:
                crop = self.crop_relpath(run_id, track.track_id)
                self._write_pending_bytes(crop, buf.tobytes(), "crop")
            ctx = track.context
            if ctx is not None and ctx.frame_index == track.best[0].frame_index:
                context = self.context_relpath(run_id, track.track_id)
                self._write_pending_bytes(context, ctx.jpeg, "context frame")
        except CctvIdError:
            self.discard_pending([rel for rel in (crop, context) if rel])
            raise
        return TrackEvidence(crop, context)

    def _write_pending_bytes(self, rel: str, data: bytes, what: str) -> None:
        final = self.path(rel)
        pending = final.with_name(final.name + PENDING_SUFFIX)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with open(pending, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            _unlink(pending)
            raise CctvIdError(f"cannot write evidence {what} {final}: {exc.strerror or exc}") from exc

    def publish(self, rels: list[str]) -> None:
        """Rename committed files into place (one already in place is left as it is)."""
        for rel in rels:
            final = self.path(rel)
            pending = final.with_name(final.name + PENDING_SUFFIX)
            if pending.exists():
                os.replace(pending, final)

    def discard_pending(self, rels: list[str]) -> None:
        for rel in rels:
            final = self.path(rel)
            _unlink(final.with_name(final.name + PENDING_SUFFIX))

    def pending_files(self, run_id: int | None = None) -> list[Path]:
        root = self.data_dir / "crops"
        if run_id is not None:
            root = root / f"run{run_id:06d}"
        if not root.is_dir():
            return []
        return sorted(root.rglob("*" + PENDING_SUFFIX))

    def relpath(self, path: Path) -> str:
        """The database form of an evidence path (pending suffix removed)."""
        rel = path.relative_to(self.data_dir).as_posix()
        return rel[: -len(PENDING_SUFFIX)] if rel.endswith(PENDING_SUFFIX) else rel

    def pending_states(self, referenced: set[str], run_id: int | None = None
                       ) -> list[tuple[Path, str, bool]]:
        """Pending files as (file, relpath, committed): committed when the database
        references the file, i.e. its transaction went through."""
        return [(p, self.relpath(p), self.relpath(p) in referenced)
                for p in self.pending_files(run_id)]

    def settle(self, pending: Path, rel: str, committed: bool) -> None:
        """Publish a committed pending file, delete an uncommitted one."""
        if committed:
            os.replace(pending, self.path(rel))
        else:
            pending.unlink(missing_ok=True)

    def recover(self, referenced: set[str], run_id: int | None = None) -> tuple[int, int]:
        """Finish what a crash left half-way: publish pending files whose transaction
        committed, delete the others. Returns (published, deleted)."""
        states = self.pending_states(referenced, run_id)
        for pending, rel, committed in states:
            self.settle(pending, rel, committed)
        published = sum(committed for _, _, committed in states)
        return published, len(states) - published

    def remove(self, rels: list[str]) -> int:
        """Delete evidence files (e.g. of a run reset by ``--restart``, after that commit);
        returns how many existed."""
        n = 0
        for rel in rels:
            final = self.path(rel)
            if final.is_file():
                final.unlink(missing_ok=True)
                n += 1
            final.with_name(final.name + PENDING_SUFFIX).unlink(missing_ok=True)
        return n

    @staticmethod
    def is_context(rel: str) -> bool:
        return rel.endswith(CONTEXT_SUFFIX)
