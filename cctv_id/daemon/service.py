"""The live monitoring service behind ``cctv-id monitor``: wiring, life cycle, health.

Builds, from the resolved configuration, the stages ``process`` uses — one motion-gated
detector and tracker per camera, one recogniser shared by all cameras through the
micro-batcher, the watchlist matcher, the result stage that stores tracks and hits — plus
the alert dispatcher and the status endpoint; runs until ``stop()`` (SIGTERM/SIGINT) or a
set duration, then stops the readers, stores what the trackers still hold, delivers due
alerts and closes each camera's run, within ``monitor.shutdown_timeout_s`` or a little more.
The watchlist is reloaded when its generation changes (someone enrolled while it runs).
"""

from __future__ import annotations

import logging
import threading
import time

from .. import __version__
from ..errors import ConfigError

log = logging.getLogger(__name__)


def select_cameras(cfg, names: list[str] | None) -> list[str]:
    """The cameras to monitor: ``names`` (each must be configured) or every enabled one."""
    if not cfg.cameras:
        raise ConfigError("no cameras configured: add `cameras: {NAME: {url: rtsp://...}}` to the "
                          "config file (--config)")
    if names:
        unknown = [n for n in names if n not in cfg.cameras]
        if unknown:
            raise ConfigError(f"unknown camera {', '.join(map(repr, unknown))}; configured: "
                              f"{', '.join(sorted(cfg.cameras))}")
        return list(dict.fromkeys(names))
    chosen = [n for n, c in cfg.cameras.items() if c.enabled]
    if not chosen:
        raise ConfigError("every configured camera is disabled (enabled: false)")
    return chosen


class MonitorService:
    def __init__(self, app, cameras: list[str] | None = None):
        from ..config import public_config
        from ..pipeline.evidence import EvidenceWriter
        from ..pipeline.results import TrackResults
        from ..watchlist.matcher import WatchlistMatcher
        from .batcher import MicroBatcher, batched
        from .camera import CameraWorker

        self.app = app
        cfg = self.cfg = app.config()
        names = select_cameras(cfg, cameras)
        self.repo = app.repo()
        encoder = app.encoder()
        self.batcher = MicroBatcher(cfg.monitor.batch_max, cfg.monitor.batch_wait_ms)
        self._index_dir = app.data_dir() / "index"
        self._matcher_model = encoder.name
        matcher = WatchlistMatcher.load(self.repo, encoder.name, cache_dir=self._index_dir)
        if matcher.empty:
            log.warning("the watchlist is empty; every track will be stored as unknown",
                        extra={"event": "empty_watchlist"})
        self.results = TrackResults(cfg, self.repo, batched(encoder, self.batcher), matcher,
                                    app.bands(encoder), EvidenceWriter(app.data_dir()))
        self.alerts = None
        if cfg.alerts.webhook_url:
            from .alerts import AlertDispatcher

            self.alerts = AlertDispatcher(self.repo, cfg.alerts)
        dump = public_config(cfg)
        self.workers = [CameraWorker(name, cfg.cameras[name], cfg, app.detector(name), self.results,
                                     self.repo, self.alerts, dump, __version__) for name in names]
        self._stop = threading.Event()
        self.http = None
        self.started_at = None

    # ------------------------------------------------------------------ life cycle
    def start(self, http: bool = True) -> None:
        self.started_at = time.monotonic()
        if http:
            from .http import StatusServer

            m = self.cfg.monitor
            self.http = StatusServer(self, m.http_host, m.http_port)
            self.http.start()
            log.info("status endpoint on http://%s:%d (/healthz, /metrics)", self.http.host,
                     self.http.port, extra={"event": "http_started"})
        if self.alerts is not None:
            self.alerts.start()
        for w in self.workers:
            w.start()
            log.info("camera %s: monitoring %s (run %d)", w.name, w.safe_url, w.run_id,
                     extra={"camera": w.name, "event": "camera_started", "run": w.run_id})

    def stop(self) -> None:
        """Ask the service to shut down (safe from a signal handler)."""
        self._stop.set()

    def run(self, duration_s: float | None = None, http: bool = True) -> None:
        """Start, run until ``stop()`` or ``duration_s``, shut down cleanly."""
        self.start(http=http)
        deadline = None if duration_s is None else time.monotonic() + duration_s
        try:
            while not self._stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self._stop.wait(1.0)
                self._refresh_watchlist()
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        t0 = time.monotonic()
        timeout = self.cfg.monitor.shutdown_timeout_s
        log.info("stopping: flushing %d camera(s)", len(self.workers), extra={"event": "stopping"})
        for w in self.workers:
            w.stop()
        for w in self.workers:
            if not w.join(max(0.5, timeout - (time.monotonic() - t0))):
                log.error("camera %s: did not finish within %.0f s", w.name, timeout,
                          extra={"camera": w.name, "event": "stop_timeout"})
        self.batcher.close(timeout=2.0)
        if self.alerts is not None:
            self.alerts.stop(max(1.0, timeout - (time.monotonic() - t0)))
        if self.http is not None:
            self.http.stop()
        log.info("stopped in %.1f s", time.monotonic() - t0, extra={"event": "stopped"})

    # ------------------------------------------------------------------ state
    def _refresh_watchlist(self) -> None:
        try:
            generation = self.repo.watchlist_generation()
        except Exception as exc:  # noqa: BLE001 - keep monitoring with the old watchlist
            log.warning("cannot check the watchlist: %s", exc)
            return
        if generation != self.results.matcher.generation:
            from ..watchlist.matcher import WatchlistMatcher

            self.results.matcher = WatchlistMatcher.load(self.repo, self._matcher_model,
                                                         cache_dir=self._index_dir)
            log.info("watchlist reloaded (generation %d, %d people)", generation,
                     len(self.results.matcher), extra={"event": "watchlist_reloaded"})

    def alert_stats(self) -> dict:
        return dict(self.alerts.stats) if self.alerts is not None else {}

    def health(self) -> dict:
        now = time.monotonic()
        cameras = {}
        for w in self.workers:
            rs = w.reader.stats
            cameras[w.name] = {
                "connected": rs.connected,
                "pipeline_alive": w.alive,
                "frames": w.stats.frames,
                "fps": round(w.stats.fps, 2),
                "dropped": w.buffer.dropped,
                "reconnects": rs.reconnects,
                "hits": w.stats.hits,
                "last_frame_age_s": None if rs.last_frame_monotonic is None
                else round(now - rs.last_frame_monotonic, 2),
                "last_error": rs.last_error or w.stats.last_error,
            }
        dead = [w.name for w in self.workers if not w.alive and not self._stop.is_set()]
        return {"status": "error" if dead else "ok", "dead_pipelines": dead,
                "uptime_s": round(now - (self.started_at or now), 1), "cameras": cameras}
