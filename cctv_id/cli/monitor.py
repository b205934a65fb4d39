"""``cctv-id monitor``: watch live RTSP cameras and store hits as they happen."""

from __future__ import annotations

import os

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
    or stored. Exit codes: 0 stopped cleanly, 2 bad configuration, 130/143 a second
    SIGINT/SIGTERM (quit at once; what was stored stays).
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
    from ..errors import StoppedOnSignal
    from .signals import StopSignals

    service = MonitorService(app, list(cameras))
    # a second signal leaves at once (results so far are stored)
    stopper = StopSignals(service.stop, announce=None)  # the service logs its own stop
    with stopper.installed():
        service.run(duration_s=duration, http=not no_http)
    if stopper.signum is not None:
        raise StoppedOnSignal(exit_code=0)  # the documented clean stop, safe from a late signal


COMMANDS = [monitor]
