"""Processing of one recorded video file: the archive job.

Wires the stages in the order of DESIGN.md — decode -> detect -> track -> best-K samples ->
align -> embed (batched across tracks) -> aggregate -> match -> decide -> store — and owns
the run's life cycle in the database: a run row is opened with its provenance (source
sha256, model sha256s, resolved config), results are committed as tracks finish, and the
run is closed as completed, failed (with the reason) or interrupted.

Crash safety. Every ``checkpoint_every_s`` of video (and whenever finished tracks are
stored) one transaction commits the finished tracks and their hits, the run's progress and
a checkpoint: the last fully handled frame, the tracker's state (live tracks with their
best samples) and the gated detector's stream state (background model, what it examined).
Evidence crops are written under a temporary name first and renamed only after that commit. Re-running the same source with the same models, configuration, start
time and watchlist resumes a crashed or interrupted run from its checkpoint: frames up to it
are decoded but skipped, the tracker continues from its saved state, so the resumed run
yields the same tracks and hits as an uninterrupted one; unique keys make replayed writes
no-ops. A completed run is not redone unless ``restart`` is asked for, which clears that
run's results in one transaction and starts again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..config import AppConfig, public_config
from ..errors import CctvIdError, StoreError, VideoError
from ..liveness import pid_alive
from ..store.records import Checkpoint
from ..track.state import dump_tracker, load_checkpoint
from ..track.tracker import FaceTracker
from ..types import Track, TrackDecision
from ..video.source import file_sha256, open_video
from .evidence import EvidenceWriter
from .results import TrackResults
from .workers import Prefetcher, SerialWorker

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_id: int
    status: str  # completed | failed | interrupted | already_done
    frames: int = 0  # frames handled by this invocation
    detections: int = 0
    tracks: int = 0
    tracks_identified: int = 0
    hits: int = 0
    unknown: int = 0
    too_small: int = 0
    too_short: int = 0
    seconds: float = 0.0
    video_seconds: float = 0.0
    error: str | None = None
    hit_people: list[str] = field(default_factory=list)
    resumed_from_frame: int | None = None  # last frame of the checkpoint resumed from
    decode_errors: int = 0  # packets the decoder rejected and that were skipped
    pts_fixes: int = 0  # frames whose missing or out-of-order timestamp was repaired
    incomplete: bool = False  # the file ended early without a decoder error

    @property
    def realtime_factor(self) -> float:
        return self.video_seconds / self.seconds if self.seconds > 0 else 0.0


def results_config_sha256(cfg: AppConfig, start_time: datetime | None, watchlist_generation: int,
                          camera: str) -> str:
    """Hash of everything that shapes a run's results (the key for resuming it)."""
    video = cfg.video.model_dump(mode="json")
    video.pop("progress", None)
    video.pop("prefetch", None)
    video.pop("checkpoint_every_s", None)
    key = {
        "detector": cfg.detector.model_dump(mode="json"),
        "tracker": cfg.tracker.model_dump(mode="json"),
        "recognizer": cfg.recognizer.model_dump(mode="json"),
        "decision": cfg.decision.model_dump(mode="json"),
        "video": video,
        "camera": camera,
        "start_time": start_time.isoformat() if start_time else None,
        "watchlist_generation": watchlist_generation,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _alive_elsewhere(run: dict) -> bool:
    """Whether another live process on this machine holds ``run`` (recent heartbeat)."""
    pid = run.get("pid")
    if not pid or pid == os.getpid() or not pid_alive(pid):
        return False
    beat = run.get("heartbeat_at")
    return beat is not None and (datetime.now(timezone.utc) - beat).total_seconds() < 600


class ArchiveJob:
    """Process one file with ready-built stages; ``run`` returns a ``RunSummary``."""

    def __init__(self, cfg: AppConfig, repo, detector, encoder, matcher, bands,
                 data_dir: Path, camera: str = "default"):
        self.cfg, self.repo, self.detector, self.camera = cfg, repo, detector, camera
        self.encoder, self.matcher = encoder, matcher  # provenance and the resume key
        self.evidence = EvidenceWriter(Path(data_dir))
        # recognise -> match -> decide -> store: the stage shared with the live daemon
        self.results = TrackResults(cfg, repo, encoder, matcher, bands, self.evidence)
        self._stop_requested = False
        self.on_detections = None  # optional callback(frame_index, FaceDetections), for benchmarks

    def request_stop(self) -> None:
        """Stop at the next frame boundary (signal handlers call this)."""
        self._stop_requested = True

    # ------------------------------------------------------------------ the run
    def run(self, video_path: str | Path, start_time: datetime | None = None,
            restart: bool = False) -> RunSummary:
        """Process the file; the summary's ``status`` says how the run ended.

        A file that cannot be opened raises ``VideoError`` before any row is written. A
        failure or a stop request part-way ends the run as "failed"/"interrupted" with what
        was found so far stored; only unexpected errors propagate (after closing the run).
        """
        video_path = Path(video_path)
        t0 = time.perf_counter()
        vcfg = self.cfg.video
        source = open_video(video_path, stride=vcfg.stride, start_time=start_time,
                            camera=self.camera, progress=vcfg.progress)
        with source:
            run_id, camera_id, checkpoint, done = self._open_run(video_path, source, restart)
            summary = RunSummary(run_id=run_id, status="running")
            # a crash may have left crops of this run half-published: finish or undo them
            self.evidence.recover(set(self.repo.track_crop_paths(run_id)), run_id)
            if done:
                summary.status = "already_done"
                return summary
            fps = source.fps or 25.0
            if checkpoint is not None:
                tracker, gating = load_checkpoint(checkpoint.state, self.cfg.tracker, fps,
                                                  self.camera)
                if gating is not None and hasattr(self.detector, "restore"):
                    self.detector.restore(gating)
                summary.resumed_from_frame = checkpoint.frame_index
                skip_to = checkpoint.frame_index
            else:
                tracker, skip_to = FaceTracker(self.cfg.tracker, fps, camera=self.camera), -1
            try:
                status, error = self._loop(source, video_path, run_id, camera_id, tracker,
                                           skip_to, summary)
                if status != "interrupted":
                    # hand on every open track (at the end, or to keep what was found before
                    # a failure)
                    try:
                        self._store(run_id, camera_id, tracker.flush(), summary, None)
                    except CctvIdError as exc:
                        if status == "completed":
                            status, error = "failed", str(exc)
                        else:
                            log.warning("could not store open tracks of failed run %s: %s",
                                        run_id, exc)
            except Exception as exc:  # noqa: BLE001 - a bug: record it on the run, re-raise
                self.repo.finish_run(run_id, "failed", f"{type(exc).__name__}: {exc}")
                raise
            summary.status, summary.error = status, error
            self.repo.finish_run(run_id, status, error)
            summary.decode_errors = source.decode_errors
            summary.pts_fixes = source.pts_fixes
            summary.incomplete = source.incomplete
        summary.seconds = time.perf_counter() - t0
        return summary

    def _open_run(self, video_path: Path, source, restart: bool):
        sha = file_sha256(video_path)
        models = {"detector": self.detector.model_sha256,
                  **getattr(self.encoder, "component_sha256s", {"recognizer": self.encoder.model_sha256})}
        config_sha = results_config_sha256(self.cfg, source.start_time, self.matcher.generation,
                                           self.camera)
        source_id = self.repo.get_or_create_source(
            str(video_path.resolve()), sha, video_path.stat().st_size, source.duration_s)
        camera_id = self.repo.get_or_create_camera(self.camera)
        done = self.repo.find_completed_run(sha, self.camera, models, config_sha)
        previous = self.repo.find_resumable_run(sha, self.camera, models, config_sha)
        if done is not None and not restart:
            return done["id"], camera_id, None, True
        if restart and (done or previous):
            run_id = (done or previous)["id"]
            self.evidence.remove(self.repo.reset_run(run_id))  # files go once that committed
            return run_id, camera_id, None, False
        if previous is not None:
            run_id = previous["id"]
            if previous["status"] == "running" and _alive_elsewhere(previous):
                raise CctvIdError(f"run {run_id} of this file is being processed right now by "
                                  f"process {previous['pid']}; wait for it or stop it first")
            checkpoint = None
            if previous["status"] == "failed":
                # a failure stored its open tracks early: replaying would differ, start over
                self.evidence.remove(self.repo.reset_run(run_id))
            else:
                checkpoint = self.repo.get_checkpoint(run_id)
                self.repo.mark_running(run_id)
            return run_id, camera_id, checkpoint, False
        run_id = self.repo.start_run(
            source_id, camera_id, model_sha256s=models,
            config=public_config(self.cfg), tool_version=__version__,
            start_time=source.start_time, config_sha256=config_sha,
        )
        return run_id, camera_id, None, False

    def _detector_state(self) -> dict | None:
        """The gated detector's stream state for a checkpoint (None for a plain detector)."""
        return self.detector.state() if hasattr(self.detector, "state") else None

    def _detect(self, frame, tracker):
        """Detections for one frame: motion-gated around changes and live tracks when the
        detector supports it (``GatedDetector``), else a full pass."""
        if hasattr(self.detector, "detect_frame"):
            due, resting = tracker.search_hints(frame.pts_s, self.detector.track_search_every)
            return self.detector.detect_frame(frame, frame.index, frame.pts_s, due, resting)
        return self.detector.detect(frame.image, frame.index)

    def _loop(self, source, video_path, run_id, camera_id, tracker, skip_to, summary):
        """Decode (prefetched in a thread) -> detect -> track in this thread; recognition and
        storage of finished tracks, with their checkpoint, in a serial worker thread."""
        vcfg = self.cfg.video
        frames = Prefetcher(source, depth=8, name="decode") if vcfg.prefetch else source
        worker = SerialWorker(depth=4, name="recognise-store")
        pending: list[Track] = []
        last_checkpoint_s = None
        frame = None
        status, error = "completed", None
        try:
            for frame in frames:
                if vcfg.max_seconds is not None and frame.pts_s >= vcfg.max_seconds:
                    break
                summary.video_seconds = frame.pts_s + (1.0 / source.fps if source.fps else 0.0)
                if frame.index <= skip_to:
                    continue  # handled before the checkpoint this run resumed from
                summary.frames += 1
                if (frame.index // vcfg.stride) % vcfg.detect_every == 0:
                    dets = self._detect(frame, tracker)
                    summary.detections += len(dets)
                    if self.on_detections is not None:
                        self.on_detections(frame.index, dets)
                    pending += tracker.update(frame, dets)
                else:
                    pending += tracker.advance(frame)
                if last_checkpoint_s is None:
                    last_checkpoint_s = frame.pts_s
                if (pending or self._stop_requested
                        or frame.pts_s - last_checkpoint_s >= vcfg.checkpoint_every_s):
                    self._submit(worker, run_id, camera_id, pending, summary, frame, tracker)
                    pending, last_checkpoint_s = [], frame.pts_s
                if self._stop_requested:
                    status, error = "interrupted", f"interrupted after frame {frame.index}"
                    break
            else:
                if source.incomplete and source.decode_errors:
                    status, error = "failed", (
                        f"{video_path.name}: decoding failed after frame {source.frames_decoded}:"
                        f" the rest of the file could not be decoded ({source.decode_errors} "
                        "packets rejected)")
            if status == "completed" and pending:
                self._submit(worker, run_id, camera_id, pending, summary, frame, tracker)
            worker.drain()
        except VideoError as exc:
            status, error = "failed", str(exc)
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted by the user"
        except (StoreError, CctvIdError) as exc:
            status, error = "failed", str(exc)
        finally:
            if frames is not source:
                frames.close()
            if status != "completed" or worker.failed:
                try:
                    worker.drain()  # let committed work finish; its error is already reported
                except Exception as exc:  # noqa: BLE001
                    if status == "completed":
                        status, error = "failed", str(exc)
            worker.close()
        return status, error

    def _submit(self, worker, run_id, camera_id, tracks, summary, frame, tracker):
        """Queue finished tracks with a checkpoint taken now (the tracker's state at this
        frame), so the worker commits exactly what a resume from this frame expects."""
        checkpoint = Checkpoint(frame.index, frame.pts_s,
                                dump_tracker(tracker, self._detector_state()))
        progress = (summary.frames, frame.index)
        tracks = list(tracks)
        worker.submit(lambda: self._commit(run_id, camera_id, tracks, summary, checkpoint,
                                           progress))

    # ------------------------------------------------------------------ one transaction
    def _store(self, run_id, camera_id, tracks: list[Track], summary: RunSummary, at):
        """Store tracks now, in this thread (end of run); ``at`` = (frame, tracker) or None."""
        checkpoint = progress = None
        if at is not None and at[0] is not None:
            frame, tracker = at
            checkpoint = Checkpoint(frame.index, frame.pts_s,
                                dump_tracker(tracker, self._detector_state()))
            progress = (summary.frames, frame.index)
        self._commit(run_id, camera_id, tracks, summary, checkpoint, progress)

    def _commit(self, run_id, camera_id, tracks: list[Track], summary: RunSummary,
                checkpoint: Checkpoint | None, progress: tuple[int, int] | None):
        """Recognise, decide and store finished tracks with their checkpoint in one
        transaction, then publish their crops."""
        self._count(self.results.commit(run_id, camera_id, tracks, checkpoint, progress), summary)

    @staticmethod
    def _count(decisions: list[TrackDecision], summary: RunSummary) -> None:
        for d in decisions:
            summary.tracks += 1
            if d.status == "too_short":
                summary.too_short += 1
                continue
            summary.tracks_identified += d.identity.embedding is not None
            summary.unknown += d.status == "unknown"
            summary.too_small += d.status == "too_small"
            summary.hits += len(d.hits)
            summary.hit_people += [h.person_name for h in d.hits]
