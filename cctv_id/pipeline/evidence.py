"""Evidence files under ``data_dir``: the best-shot crop of each stored track.

Crash-safe protocol: a crop is first written as ``<name>.pending`` (``write_pending``), the
database transaction that references it commits, and only then is it renamed into place
(``publish``); if the transaction fails the pending file is removed (``discard_pending``).
After a crash, ``cctv-id fsck`` finishes or undoes what was left half-way. Paths stored in
the database are relative to ``data_dir``.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2

from ..errors import CctvIdError
from ..types import Track

PENDING_SUFFIX = ".pending"


class EvidenceWriter:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)

    @staticmethod
    def crop_relpath(run_id: int, track_id: int) -> str:
        return f"crops/run{run_id:06d}/track{track_id:06d}.jpg"

    def path(self, rel: str) -> Path:
        return self.data_dir / rel

    def write_pending(self, run_id: int, track: Track) -> str | None:
        """Write the best shot of ``track`` under a pending name; returns its final relpath."""
        if not track.best:
            return None
        rel = self.crop_relpath(run_id, track.track_id)
        final = self.path(rel)
        ok, buf = cv2.imencode(".jpg", track.best[0].patch, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            return None
        pending = final.with_name(final.name + PENDING_SUFFIX)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with open(pending, "wb") as fh:
                fh.write(buf.tobytes())
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            pending.unlink(missing_ok=True)
            raise CctvIdError(f"cannot write evidence crop {final}: {exc.strerror or exc}") from exc
        return rel

    def publish(self, rels: list[str]) -> None:
        """Rename committed crops into place (a crop already in place is left as it is)."""
        for rel in rels:
            final = self.path(rel)
            pending = final.with_name(final.name + PENDING_SUFFIX)
            if pending.exists():
                os.replace(pending, final)

    def discard_pending(self, rels: list[str]) -> None:
        for rel in rels:
            final = self.path(rel)
            final.with_name(final.name + PENDING_SUFFIX).unlink(missing_ok=True)

    def pending_files(self, run_id: int | None = None) -> list[Path]:
        root = self.data_dir / "crops"
        if run_id is not None:
            root = root / f"run{run_id:06d}"
        if not root.is_dir():
            return []
        return sorted(root.rglob("*" + PENDING_SUFFIX))

    def relpath(self, path: Path) -> str:
        """The database form of a crop path (pending suffix removed)."""
        rel = path.relative_to(self.data_dir).as_posix()
        return rel[: -len(PENDING_SUFFIX)] if rel.endswith(PENDING_SUFFIX) else rel

    def pending_states(self, referenced: set[str], run_id: int | None = None
                       ) -> list[tuple[Path, str, bool]]:
        """Pending crops as (file, relpath, committed): committed when the database
        references the crop, i.e. its transaction went through."""
        return [(p, self.relpath(p), self.relpath(p) in referenced)
                for p in self.pending_files(run_id)]

    def settle(self, pending: Path, rel: str, committed: bool) -> None:
        """Publish a committed pending crop, delete an uncommitted one."""
        if committed:
            os.replace(pending, self.path(rel))
        else:
            pending.unlink(missing_ok=True)

    def recover(self, referenced: set[str], run_id: int | None = None) -> tuple[int, int]:
        """Finish what a crash left half-way: publish pending crops whose transaction
        committed, delete the others. Returns (published, deleted)."""
        states = self.pending_states(referenced, run_id)
        for pending, rel, committed in states:
            self.settle(pending, rel, committed)
        published = sum(committed for _, _, committed in states)
        return published, len(states) - published
