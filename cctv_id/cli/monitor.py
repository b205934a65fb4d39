"""``cctv-id monitor``: watch live RTSP cameras and store hits as they happen."""

from __future__ import annotations

import os
import signal

import click


@click.command()
@click.option("--camera", "cameras", multiple=True, metavar="NAME",
              help="Camera from the config's `cameras:` (repeatable) [default: every enabled one].")
@click.option("--preset", default=None,
              help="Pipeline preset from pipelines/ or a YAML path [default: the config file's "
                   "preset, else live].")
@click.option("--http-port", type=click.IntRange(min=0, max=65535),
              help="Port of /healthz and /metrics (0: any free port) [default: monitor.http_port].")
@click.option("--no-http", is_flag=True, help="No status endpoint.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Stop cleanly after this long (default: run until SIGTERM/SIGINT).")
@click.option("--log-format", type=click.Choice(["json", "text"]),
              help="Log lines on stderr [default: monitor.log_format].")
@click.pass_obj
def monitor(app, cameras: tuple[str, ...], preset: str | None, http_port: int | None,
            no_http: bool, duration: float | None, log_format: str | None):
    """Monitor live cameras: detect, track, recognise and store hits, alert by webhook.

    \b
    Cameras come from the config file, e.g.:
      cameras:
        lobby: {url: "rtsp://user:pass@10.0.0.5/stream1", min_face_px: 8}
      alerts: {webhook_url: "https://alerts.example/hook", cooldown_s: 60}
    Each camera reconnects on its own (backoff with jitter, stall watchdog); SIGTERM or
    Ctrl-C stops the readers, stores open tracks and exits 0. Credentials are never logged
    or stored. Exit codes: 0 stopped cleanly, 2 bad configuration.
    """
    over: dict = {}
    if http_port is not None:
        over.setdefault("monitor", {})["http_port"] = http_port
    if log_format:
        over.setdefault("monitor", {})["log_format"] = log_format
    # idle OpenMP threads sleep instead of spinning: N cameras share few cores (set before
    # torch is imported; an explicit setting wins)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app.default_preset = "live"
    cfg = app.reconfigure(preset, over or None)
    from ..daemon.logs import configure_daemon_logging
    from ..daemon.service import MonitorService, select_cameras

    select_cameras(cfg, list(cameras))  # a bad camera list fails before models load
    configure_daemon_logging(cfg.monitor.log_format, app.debug)
    service = MonitorService(app, list(cameras))
    stops = {"n": 0}

    def on_signal(signum, _frame):
        stops["n"] += 1
        if stops["n"] > 1:
            os._exit(128 + signum)  # second signal: leave at once (results so far are stored)
        service.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.run(duration_s=duration, http=not no_http)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


COMMANDS = [monitor]
