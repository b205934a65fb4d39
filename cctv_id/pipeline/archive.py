"""Processing of one recorded video file: the archive job.

Wires the stages in the order of DESIGN.md — decode -> detect -> track -> best-K samples ->
align -> embed (batched across tracks) -> aggregate -> match -> decide -> store — and owns
the run's life cycle in the database: a run row is opened with its provenance (source
sha256, model sha256s, resolved config), results are committed in batches as tracks finish
(so a run that fails part-way keeps what it found), and the run is closed as completed,
failed (with the reason) or interrupted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from .. import __version__
from ..config import AppConfig
from ..decide import decide_track
from ..errors import CctvIdError, VideoError
from ..track.tracker import FaceTracker
from ..types import Track, TrackDecision
from ..video.source import file_sha256, open_video
from .evidence import EvidenceWriter
from .persist import decisions_to_records
from .recognition import identify_tracks

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_id: int
    status: str
    frames: int = 0
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
    decode_errors: int = 0  # packets the decoder rejected and that were skipped
    pts_fixes: int = 0  # frames whose missing or out-of-order timestamp was repaired
    incomplete: bool = False  # the file ended early without a decoder error

    @property
    def realtime_factor(self) -> float:
        return self.video_seconds / self.seconds if self.seconds > 0 else 0.0


class ArchiveJob:
    """Process one file with ready-built stages; ``run`` returns a ``RunSummary``."""

    def __init__(self, cfg: AppConfig, repo, detector, encoder, matcher, bands,
                 data_dir: Path, camera: str = "default",
                 on_decisions: Callable[[list[TrackDecision]], None] | None = None,
                 flush_every_tracks: int = 8):
        self.cfg = cfg
        self.repo = repo
        self.detector = detector
        self.encoder = encoder
        self.matcher = matcher
        self.bands = bands
        self.camera = camera
        self.evidence = EvidenceWriter(Path(data_dir))
        self.on_decisions = on_decisions
        self.flush_every_tracks = flush_every_tracks

    def run(self, video_path: str | Path, start_time: datetime | None = None) -> RunSummary:
        """Process the file; the summary's ``status`` says how the run ended.

        A file that cannot be opened raises ``VideoError`` before any row is written. A
        failure or Ctrl-C part-way ends the run as "failed"/"interrupted" with what was
        found so far stored; only unexpected errors propagate (after closing the run).
        """
        video_path = Path(video_path)
        t0 = time.perf_counter()
        vcfg = self.cfg.video
        # Opening validates the file before anything is written to the database.
        source = open_video(video_path, stride=vcfg.stride, start_time=start_time,
                            camera=self.camera, progress=vcfg.progress)
        with source:
            sha = file_sha256(video_path)
            source_id = self.repo.get_or_create_source(
                str(video_path.resolve()), sha, video_path.stat().st_size, source.duration_s)
            camera_id = self.repo.get_or_create_camera(self.camera)
            run_id = self.repo.start_run(
                source_id, camera_id,
                model_sha256s={
                    "detector": self.detector.model_sha256,
                    "recognizer": self.encoder.model_sha256,
                },
                config=self.cfg.model_dump(mode="json"),
                tool_version=__version__,
                start_time=source.start_time,
            )
            summary = RunSummary(run_id=run_id, status="running")
            tracker = FaceTracker(self.cfg.tracker, source.fps or 25.0, camera=self.camera)
            pending: list[Track] = []
            status, error = "completed", None
            try:
                for n, frame in enumerate(source):
                    if vcfg.max_seconds is not None and frame.pts_s >= vcfg.max_seconds:
                        break
                    summary.frames += 1
                    summary.video_seconds = frame.pts_s
                    if n % vcfg.detect_every == 0:
                        dets = self.detector.detect(frame.image, frame.index)
                        summary.detections += len(dets)
                        pending += tracker.update(frame, dets)
                    else:
                        pending += tracker.advance(frame)
                    if len(pending) >= self.flush_every_tracks:
                        self._handle(run_id, camera_id, pending, summary, frame.index)
                        pending = []
                if source.fps:
                    summary.video_seconds += 1.0 / source.fps
                if source.incomplete and source.decode_errors:
                    # the file ended in packets the decoder rejected: the rest is lost
                    status = "failed"
                    error = (f"{video_path.name}: decoding failed after frame "
                             f"{source.frames_decoded}: the rest of the file could not be "
                             f"decoded ({source.decode_errors} packets rejected)")
            except VideoError as exc:
                status, error = "failed", str(exc)
            except KeyboardInterrupt:
                status, error = "interrupted", "interrupted by the user"
            except CctvIdError as exc:
                status, error = "failed", str(exc)
            except Exception as exc:  # noqa: BLE001 - recorded on the run, then re-raised
                status, error = "failed", f"{type(exc).__name__}: {exc}"
                self._close(run_id, camera_id, tracker, pending, summary, status, error)
                raise
            self._close(run_id, camera_id, tracker, pending, summary, status, error)
            summary.decode_errors = source.decode_errors
            summary.pts_fixes = source.pts_fixes
            summary.incomplete = source.incomplete
        summary.seconds = time.perf_counter() - t0
        return summary

    # ------------------------------------------------------------------ stages
    def _close(self, run_id, camera_id, tracker, pending, summary, status, error):
        """Hand on every open track, store what was found, and close the run."""
        pending = pending + tracker.flush()
        try:
            self._handle(run_id, camera_id, pending, summary, None)
        finally:
            summary.status, summary.error = status, error
            self.repo.finish_run(run_id, status, error)

    def _handle(self, run_id, camera_id, tracks: list[Track], summary: RunSummary,
                frame_index: int | None):
        """Recognise, decide and store a batch of finished tracks in one transaction."""
        if not tracks:
            if frame_index is not None:
                self.repo.update_run_progress(run_id, summary.frames, frame_index)
            return
        tcfg, dcfg = self.cfg.tracker, self.cfg.decision
        eligible = [t for t in tracks
                    if t.n_detections >= tcfg.min_detections and t.max_face_px >= dcfg.min_identify_px]
        identities = {i.track.track_id: i for i in identify_tracks(
            eligible, self.encoder, self.cfg.recognizer.batch_size)}
        decisions = []
        for track in tracks:
            identity = identities.get(track.track_id)
            if identity is None:
                from ..types import TrackIdentity
                identity = TrackIdentity(track, None, self.encoder.name, 0.0)
            matches = self.matcher.match(track.track_id, identity.embedding) \
                if identity.embedding is not None else []
            decisions.append(decide_track(identity, matches, self.bands, dcfg,
                                          min_detections=tcfg.min_detections))
        kept = [d for d in decisions if d.status != "too_short"]
        crops = {d.identity.track.track_id: self.evidence.save_best_shot(run_id, d.identity.track)
                 for d in kept}
        records = decisions_to_records(kept, crops)
        self.repo.save_track_results(run_id, camera_id, records)
        if frame_index is not None:
            self.repo.update_run_progress(run_id, summary.frames, frame_index)
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
        if self.on_decisions:
            self.on_decisions(decisions)
