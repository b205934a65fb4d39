"""One live camera: reader -> live buffer -> detect -> track -> results, in its own threads.

Owns a camera's run in the database (one run per camera per daemon session; the source is
the stream's redacted URL), its detector (motion-gated like ``process``), tracker, ignore
masks, and the hand-off of tracks to the shared result stage (``pipeline.results``), which
recognises through the cross-camera micro-batcher. Hits are written when a track ends and,
for long tracks, every ``monitor.hit_every_s`` while it goes on (the same track row is
updated; one hit per (track, person)). Each hit is handed to the alert outbox. A camera's
failure (stream down, a bug in its thread) is contained here: the others keep running.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..pipeline.workers import SerialWorker
from ..track.tracker import FaceTracker
from ..types import FaceDetections, Frame, Track, TrackDecision
from ..video.live import Backoff, LiveBuffer, StreamReader

log = logging.getLogger(__name__)


class IgnoreMask:
    """Polygons in frame pixels; faces whose box centre lies inside one are dropped."""

    def __init__(self, polygons):
        self.polygons = [np.asarray(p, np.float32).reshape(-1, 2) for p in polygons or []]
        self._mask: np.ndarray | None = None

    def __bool__(self) -> bool:
        return bool(self.polygons)

    def _raster(self, height: int, width: int) -> np.ndarray:
        if self._mask is None or self._mask.shape != (height, width):
            mask = np.zeros((height, width), np.uint8)
            for poly in self.polygons:
                cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
            self._mask = mask
        return self._mask

    def filter(self, dets: FaceDetections, height: int, width: int) -> FaceDetections:
        if not self.polygons or not len(dets):
            return dets
        mask = self._raster(height, width)
        c = dets.centers
        xs = np.clip(c[:, 0].astype(int), 0, width - 1)
        ys = np.clip(c[:, 1].astype(int), 0, height - 1)
        keep = mask[ys, xs] == 0
        return FaceDetections(dets.frame_index, dets.boxes[keep], dets.scores[keep],
                              dets.landmarks[keep])


@dataclass
class CameraStats:
    frames: int = 0  # frames taken from the buffer and handled
    detected_frames: int = 0
    faces: int = 0  # detections kept (after masks)
    tracks: int = 0  # tracks stored (finished)
    hits: int = 0  # hits written (distinct (track, person))
    fps: float = 0.0  # handled frames per second, smoothed
    errors: int = 0  # failures in this camera's pipeline or storage (it goes on)
    latencies_s: list = field(default_factory=list)  # the last 1000 (trigger-frame arrival ->
    # hit row stored); the totals below count all of them
    latency_count: int = 0
    latency_sum_s: float = 0.0
    last_error: str | None = None


def live_source_sha256(camera: str, safe_url: str) -> str:
    return hashlib.sha256(f"live:{camera}:{safe_url}".encode()).hexdigest()


class CameraWorker:
    """Runs one camera until ``stop()``; ``join()`` waits for its last results."""

    def __init__(self, name: str, cam_cfg, cfg, detector, results, repo, alerts=None,
                 config_dump: dict | None = None, tool_version: str = ""):
        self.name = name
        self.cam_cfg = cam_cfg
        self.cfg = cfg
        self.detector = detector
        self.results = results  # pipeline.results.TrackResults (micro-batched encoder)
        self.repo = repo
        self.alerts = alerts
        self.buffer = LiveBuffer(cam_cfg.stream.buffer_frames)
        self.reader = StreamReader(name, cam_cfg.url, cam_cfg.stream, self.buffer)
        self.mask = IgnoreMask(cam_cfg.ignore_masks)
        self.stats = CameraStats()
        self._stop = threading.Event()
        self._store = SerialWorker(depth=8, name=f"results-{name}")
        self._thread = threading.Thread(target=self._run, name=f"camera-{name}", daemon=True)
        self._reported: dict[int, set[str]] = {}  # track id -> people already hit
        self._snapshot_sig: dict[int, tuple] = {}  # track id -> best samples last recognised
        self.run_id, self.camera_id = self._open_run(config_dump or {}, tool_version)

    @property
    def safe_url(self) -> str:
        return self.reader.safe_url

    def _open_run(self, config_dump: dict, tool_version: str) -> tuple[int, int]:
        encoder = self.results.encoder
        models = {"detector": self.detector.model_sha256,
                  **getattr(encoder, "component_sha256s", {"recognizer": encoder.model_sha256})}
        source_id = self.repo.get_or_create_source(
            self.safe_url, live_source_sha256(self.name, self.safe_url), 0, None)
        camera_id = self.repo.get_or_create_camera(self.name)
        run_id = self.repo.start_run(source_id, camera_id, model_sha256s=models,
                                     config=config_dump, tool_version=tool_version)
        return run_id, camera_id

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        self.reader.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop reading; the pipeline thread handles what is buffered, then flushes."""
        self._stop.set()
        self.reader.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the last results to be stored; True when everything finished in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._thread.join(timeout)
        left = None if deadline is None else max(0.1, deadline - time.monotonic())
        self.reader.join(left)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ the pipeline thread
    def _run(self) -> None:
        """The pipeline loop, restarted (with backoff) after an unexpected error, so a
        fault in one camera costs that camera a moment, never the daemon."""
        tracker = FaceTracker(self.cfg.tracker, fps=10.0, camera=self.name)
        backoff = Backoff(1.0, 30.0)
        try:
            while True:
                try:
                    self._loop(tracker)
                    break  # stopped
                except Exception as exc:  # noqa: BLE001 - contained: this camera only
                    self._note_error(f"pipeline failed: {type(exc).__name__}: {exc}", exc)
                    if self._stop.wait(backoff.next_delay()):
                        break
        finally:
            try:
                self._submit(tracker.flush(), time.monotonic())
                self._store.drain()
            except Exception as exc:  # noqa: BLE001
                self._note_error(f"could not store its last tracks: {exc}")
            self._store.close()
            error = None
            if self.stats.errors:
                error = f"{self.stats.errors} error(s), the last: {self.stats.last_error}"
            try:
                self.repo.finish_run(self.run_id, "completed", error)
            except Exception as exc:  # noqa: BLE001
                log.error("camera %s: could not close run %s: %s", self.name, self.run_id, exc,
                          extra={"camera": self.name, "event": "store_failed"})

    def _note_error(self, message: str, exc: BaseException | None = None) -> None:
        self.stats.errors += 1
        self.stats.last_error = message
        log.error("camera %s: %s", self.name, message, exc_info=exc,
                  extra={"camera": self.name, "event": "camera_error"})

    def _loop(self, tracker: FaceTracker) -> None:
        cfg = self.cfg
        idle_end_s = cfg.tracker.max_missed_s + cfg.tracker.relink_max_gap_s
        last_frame_mono = time.monotonic()
        last_snapshot_pts = None
        last_beat = time.monotonic()
        handled = 0
        fps_t0, fps_n = time.monotonic(), 0
        while True:
            item = self.buffer.get(timeout=0.25)
            now = time.monotonic()
            if item is None:
                if self._stop.is_set():
                    return
                if tracker.open_tracks and now - last_frame_mono > idle_end_s:
                    # the stream is down: end its tracks now rather than when it comes back
                    self._submit(tracker.flush(), now)
                continue
            arrival, frame = item
            last_frame_mono = arrival
            self._handle(tracker, frame, arrival, handled)
            handled += 1
            fps_n += 1
            if now - fps_t0 >= 2.0:
                self.stats.fps = fps_n / (now - fps_t0)
                fps_t0, fps_n = now, 0
            if last_snapshot_pts is None:
                last_snapshot_pts = frame.pts_s
            if frame.pts_s - last_snapshot_pts >= cfg.monitor.hit_every_s:
                long_tracks = self._worth_recognising(
                    tracker.snapshot(frame.pts_s, cfg.monitor.hit_every_s))
                if long_tracks:
                    self._submit(long_tracks, arrival, live=True)
                last_snapshot_pts = frame.pts_s
            if now - last_beat >= 5.0:
                self._store.submit(lambda f=self.stats.frames, i=frame.index:
                                   self.repo.update_run_progress(self.run_id, f, i))
                last_beat = now

    def _worth_recognising(self, tracks: list[Track]) -> list[Track]:
        """Long live tracks to recognise now: not those already named (they are stored
        again when they end) nor those whose best samples did not change since last time."""
        out = []
        for t in tracks:
            if self._reported.get(t.track_id):
                continue
            signature = tuple(s.frame_index for s in t.best)
            if self._snapshot_sig.get(t.track_id) == signature:
                continue
            self._snapshot_sig[t.track_id] = signature
            out.append(t)
        return out

    def _handle(self, tracker: FaceTracker, frame: Frame, arrival: float, handled: int) -> None:
        self.stats.frames += 1
        if handled % self.cfg.video.detect_every == 0:
            due, resting = tracker.search_hints(frame.pts_s, self.detector.track_search_every)
            dets = self.detector.detect_frame(frame, frame.index, frame.pts_s, due, resting)
            dets = self.mask.filter(dets, frame.height, frame.width)
            self.stats.detected_frames += 1
            self.stats.faces += len(dets)
            finished = tracker.update(frame, dets)
        else:
            finished = tracker.advance(frame)
        if finished:
            self._submit(finished, arrival)

    # ------------------------------------------------------------------ results
    def _submit(self, tracks: list[Track], arrival: float, live: bool = False) -> None:
        if tracks:
            tracks = list(tracks)
            self._store.submit(lambda: self._commit(tracks, arrival, live))

    def _commit(self, tracks: list[Track], arrival: float, live: bool) -> None:
        # always an upsert: a track stored while live is stored again (updated) when it ends
        try:
            decisions = self.results.commit(self.run_id, self.camera_id, tracks,
                                            update_existing=True)
        except Exception as exc:  # noqa: BLE001 - the store already retried; go on
            self._note_error(f"{len(tracks)} track(s) not stored: {exc}")
            return
        done = time.monotonic()
        for d in decisions:
            tid = d.identity.track.track_id
            if not live and d.status != "too_short":
                self.stats.tracks += 1
            seen = self._reported.setdefault(tid, set())
            for hit in d.hits:
                if hit.person_name in seen:
                    continue
                seen.add(hit.person_name)
                self.stats.hits += 1
                self.stats.latencies_s.append(done - arrival)
                del self.stats.latencies_s[:-1000]
                self.stats.latency_count += 1
                self.stats.latency_sum_s += done - arrival
                log.info("camera %s: hit %s (track %d, score %.3f, %.0f px)", self.name,
                         hit.person_name, tid, hit.score, hit.face_px,
                         extra={"camera": self.name, "event": "hit", "person": hit.person_name,
                                "track": tid, "run": self.run_id})
                if self.alerts is not None:
                    try:
                        self.alerts.enqueue(self._alert_payload(d, hit))
                    except Exception as exc:  # noqa: BLE001 - the hit is stored; say so
                        log.error("camera %s: alert for %s not queued: %s", self.name,
                                  hit.person_name, exc, extra={"camera": self.name,
                                                               "event": "alert_failed"})
            if not live:
                self._reported.pop(tid, None)
                self._snapshot_sig.pop(tid, None)

    def _alert_payload(self, decision: TrackDecision, hit) -> dict:
        def iso(t):
            return t.isoformat() if t is not None else None

        return {
            "run_id": self.run_id,
            "track_key": int(decision.identity.track.track_id),
            "person": hit.person_name,
            "camera": self.name,
            "score": round(float(hit.score), 4),
            "threshold": round(float(hit.threshold), 4),
            "face_px": round(float(hit.face_px), 1),
            "first_seen_at": iso(hit.first_wall_time),
            "last_seen_at": iso(hit.last_wall_time),
            "best_shot_at": iso(hit.best_shot_wall_time),
        }
