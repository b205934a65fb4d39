"""Sources, cameras, runs and checkpoints.

Owns getting or creating cameras and sources (by content hash), a run's life cycle (start,
progress and heartbeat, finish, take-over for resume, reset for ``--restart``), looking runs
up (by id, by filters, by resume key) and a run's checkpoint (read with its sha256 verified;
written inside the transaction that saves the run's results).
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cctv_id.errors import NotFoundError, StoreError
from cctv_id.store.encoding import _sha256_or_none
from cctv_id.store.engine import RepositoryBase
from cctv_id.store.models import (
    RUN_STATUSES,
    Camera,
    HitRow,
    Run,
    RunCheckpoint,
    Source,
    TrackRow,
    to_utc,
    utcnow,
)
from cctv_id.store.records import Checkpoint

RESUMABLE_STATUSES = ("running", "interrupted", "failed")


class RunsMixin(RepositoryBase):
    """Cameras, sources, runs and checkpoints (part of :class:`Repository`)."""

    # ------------------------------------------------------------------ cameras, sources, runs

    def get_or_create_camera(self, name: str) -> int:
        name = self._name(name, "camera")

        def body(s: Session):
            self._insert_ignore(s, Camera, {"name": name, "created_at": utcnow()}, ["name"])
            return s.execute(select(Camera.id).where(Camera.name == name)).scalar_one()

        return self._transact(body, write=True)

    def get_or_create_source(
        self, path: str, sha256: str, size_bytes: int, duration_s: float | None = None
    ) -> int:
        """The source with this content hash; a known file that moved gets its new path."""
        sha256 = sha256.strip().lower()
        if len(sha256) != 64:
            raise ValueError(f"sha256 must be 64 hex digits, got {sha256!r}")

        def body(s: Session):
            self._insert_ignore(
                s,
                Source,
                {
                    "path": str(path),
                    "sha256": sha256,
                    "size_bytes": int(size_bytes),
                    "duration_s": None if duration_s is None else float(duration_s),
                    "created_at": utcnow(),
                },
                ["sha256"],
            )
            row = s.execute(select(Source.id, Source.path).where(Source.sha256 == sha256)).one()
            if row.path != str(path):
                s.execute(update(Source).where(Source.id == row.id).values(path=str(path)))
            return row.id

        return self._transact(body, write=True)

    def start_run(
        self,
        source_id: int,
        camera_id: int,
        model_sha256s: dict,
        config: dict,
        tool_version: str,
        start_time: datetime | None = None,
        config_sha256: str | None = None,
    ) -> int:
        """A new run, status "running", owned by this process (``pid``, ``heartbeat_at``).

        ``config_sha256``: hash of the resolved config; with the source, camera and
        ``model_sha256s`` it is the key :meth:`find_resumable_run` looks runs up by.
        """
        start_time = to_utc(start_time, "start_time")
        config_sha256 = _sha256_or_none(config_sha256, "config_sha256")

        def body(s: Session) -> int:
            now = utcnow()
            run = Run(
                source_id=source_id,
                camera_id=camera_id,
                started_at=now,
                status="running",
                frames_processed=0,
                last_frame_index=None,
                model_sha256s=dict(model_sha256s),
                config=dict(config),
                tool_version=str(tool_version),
                start_time=start_time,
                config_sha256=config_sha256,
                pid=os.getpid(),
                heartbeat_at=now,
            )
            s.add(run)
            s.flush()
            return run.id

        return self._transact(body, write=True)

    def update_run_progress(self, run_id: int, frames_processed: int, last_frame_index: int) -> None:
        """Record progress (and a heartbeat: the run's process is alive)."""
        self._transact(
            lambda s: self._set_progress(s, run_id, (frames_processed, last_frame_index)), write=True
        )

    @staticmethod
    def _set_progress(s: Session, run_id: int, progress: tuple[int, int] | None) -> None:
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if progress is not None:
            frames_processed, last_frame_index = progress
            values["frames_processed"] = int(frames_processed)
            values["last_frame_index"] = None if last_frame_index is None else int(last_frame_index)
        res = s.execute(update(Run).where(Run.id == run_id).values(**values))
        if res.rowcount == 0:
            raise NotFoundError(f"unknown run {run_id}")

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        """Close a run as "completed", "failed" or "interrupted". Saved tracks and hits stay."""
        if status not in RUN_STATUSES or status == "running":
            raise ValueError(f"finish_run: status must be completed, failed or interrupted, not {status!r}")

        def body(s: Session) -> None:
            res = s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status=status, error=error, finished_at=utcnow())
            )
            if res.rowcount == 0:
                raise NotFoundError(f"unknown run {run_id}")

        self._transact(body, write=True)

    def mark_running(self, run_id: int) -> None:
        """Take an unfinished run over to resume it: status "running", no error, not finished,
        owned by this process (``pid``) with a fresh heartbeat. Its results stay."""

        def body(s: Session) -> None:
            res = s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status="running", error=None, finished_at=None, pid=os.getpid(), heartbeat_at=utcnow())
            )
            if res.rowcount == 0:
                raise NotFoundError(f"unknown run {run_id}")

        self._transact(body, write=True)

    def reset_run(self, run_id: int) -> list[str]:
        """Start a run again from nothing (``--restart``), in ONE transaction: its hits, tracks
        and checkpoint are deleted and it becomes "running" (no error, no progress, started
        now, owned by this process). The run keeps its id and provenance. Deleting stored
        track embeddings bumps the track search index's epoch (track_index.py).

        Returns the evidence paths (best-shot crops and context frames) the deleted rows
        referenced (sorted, distinct), so the caller can remove the files once this has
        committed.
        """

        def body(s: Session) -> list[str]:
            now = utcnow()
            res = s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(
                    status="running",
                    error=None,
                    frames_processed=0,
                    last_frame_index=None,
                    started_at=now,
                    finished_at=None,
                    pid=os.getpid(),
                    heartbeat_at=now,
                )
            )
            if res.rowcount == 0:
                raise NotFoundError(f"unknown run {run_id}")
            files: set[str] = set()
            for col in (TrackRow.crop_path, TrackRow.context_path):
                files.update(s.execute(select(col).where(TrackRow.run_id == run_id,
                                                         col.is_not(None))).scalars())
            for col in (HitRow.crop_path, HitRow.context_path):
                files.update(s.execute(select(col).where(HitRow.run_id == run_id,
                                                         col.is_not(None))).scalars())
            s.execute(delete(HitRow).where(HitRow.run_id == run_id))
            n_tracks = s.execute(delete(TrackRow).where(TrackRow.run_id == run_id)).rowcount
            s.execute(delete(RunCheckpoint).where(RunCheckpoint.run_id == run_id))
            if n_tracks:
                self._bump_index_epoch(s)  # type: ignore[attr-defined]  # TrackIndexMixin
            return sorted(files)

        return self._transact(body, write=True)

    def get_run(self, run_id: int) -> dict:

        def body(s: Session) -> dict:
            row = s.execute(self._runs_query().where(Run.id == run_id)).one_or_none()
            if row is None:
                raise NotFoundError(f"unknown run {run_id}")
            return self._run_dict(row)

        return self._transact(body)

    def list_runs(
        self, source_id: int | None = None, camera: str | None = None, status: str | None = None
    ) -> list[dict]:
        """Runs, newest first (e.g. to find an interrupted run of a source to resume)."""
        q = self._runs_query()
        if source_id is not None:
            q = q.where(Run.source_id == source_id)
        if camera is not None:
            q = q.where(Camera.name == camera)
        if status is not None:
            q = q.where(Run.status == status)
        return self._transact(lambda s: [self._run_dict(r) for r in s.execute(q.order_by(Run.id.desc()))])

    def find_resumable_run(
        self, source_sha256: str, camera: str, model_sha256s: dict, config_sha256: str
    ) -> dict | None:
        """The newest unfinished run ("running", "interrupted" or "failed") of this source
        and camera with the same model hashes and config hash (as :meth:`get_run`), or None.

        A "running" run may still be alive in another process: compare its ``pid`` and
        ``heartbeat_at`` before taking it over.
        """
        return self._find_run(source_sha256, camera, model_sha256s, config_sha256, RESUMABLE_STATUSES)

    def find_completed_run(
        self, source_sha256: str, camera: str, model_sha256s: dict, config_sha256: str
    ) -> dict | None:
        """The newest "completed" run with the same key as :meth:`find_resumable_run`, or None."""
        return self._find_run(source_sha256, camera, model_sha256s, config_sha256, ("completed",))

    def _find_run(
        self,
        source_sha256: str,
        camera: str,
        model_sha256s: dict,
        config_sha256: str,
        statuses: tuple[str, ...],
    ) -> dict | None:
        source_sha256 = str(source_sha256).strip().lower()
        config_sha256 = _sha256_or_none(config_sha256, "config_sha256")
        if config_sha256 is None:
            raise ValueError("config_sha256 is required to find a run")
        wanted = dict(model_sha256s)
        q = (
            self._runs_query()
            .where(
                Source.sha256 == source_sha256,
                Camera.name == camera,
                Run.config_sha256 == config_sha256,
                Run.status.in_(statuses),
            )
            .order_by(Run.id.desc())
        )

        def body(s: Session) -> dict | None:
            # model hashes are JSON: compared here, portably, on the few runs of that key
            for row in s.execute(q):
                run = self._run_dict(row)
                if run["model_sha256s"] == wanted:
                    return run
            return None

        return self._transact(body)

    @staticmethod
    def _runs_query():
        return (
            select(Run, Source.path, Source.sha256, Camera.name)
            .join(Source, Source.id == Run.source_id)
            .join(Camera, Camera.id == Run.camera_id)
        )

    @staticmethod
    def _run_dict(row) -> dict:
        run: Run = row[0]
        return {
            "id": run.id,
            "source_id": run.source_id,
            "source_path": row[1],
            "source_sha256": row[2],
            "camera_id": run.camera_id,
            "camera": row[3],
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "status": run.status,
            "error": run.error,
            "frames_processed": run.frames_processed,
            "last_frame_index": run.last_frame_index,
            "model_sha256s": dict(run.model_sha256s or {}),
            "config": dict(run.config or {}),
            "config_sha256": run.config_sha256,
            "tool_version": run.tool_version,
            "start_time": run.start_time,
            "pid": run.pid,
            "heartbeat_at": run.heartbeat_at,
        }

    # ------------------------------------------------------------------ checkpoints

    def get_checkpoint(self, run_id: int) -> Checkpoint | None:
        """The run's checkpoint (saved by :meth:`save_track_results`), or None.

        The state's sha256 is verified: a mismatch raises :class:`StoreError`.
        """

        def body(s: Session):
            return s.execute(
                select(
                    RunCheckpoint.frame_index,
                    RunCheckpoint.pts_s,
                    RunCheckpoint.state,
                    RunCheckpoint.state_sha256,
                ).where(RunCheckpoint.run_id == run_id)
            ).one_or_none()

        row = self._transact(body)
        if row is None:
            return None
        state = bytes(row.state)
        if hashlib.sha256(state).hexdigest() != row.state_sha256:
            raise StoreError(f"checkpoint of run {run_id} is corrupt (state sha256 mismatch)")
        return Checkpoint(frame_index=int(row.frame_index), pts_s=float(row.pts_s), state=state)

    def _upsert_checkpoint(self, s: Session, run_id: int, cp: Checkpoint) -> None:
        state = bytes(cp.state)
        values = {
            "frame_index": int(cp.frame_index),
            "pts_s": float(cp.pts_s),
            "state": state,
            "state_sha256": hashlib.sha256(state).hexdigest(),
            "updated_at": utcnow(),
        }
        name = s.get_bind().dialect.name
        if name in ("sqlite", "postgresql"):
            if name == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            stmt = dialect_insert(RunCheckpoint.__table__).values(run_id=run_id, **values)
            s.execute(stmt.on_conflict_do_update(index_elements=["run_id"], set_=values))
            return
        res = s.execute(update(RunCheckpoint).where(RunCheckpoint.run_id == run_id).values(**values))
        if res.rowcount == 0:
            s.execute(RunCheckpoint.__table__.insert().values(run_id=run_id, **values))
