"""The daemon's HTTP endpoint: ``/healthz`` (JSON) and Prometheus ``/metrics``.

Metrics are read from the running service at scrape time by one collector (no second set of
counters to keep in step): per camera frames, dropped frames, fps, buffer depth, reconnects,
connection state, faces, tracks, hits, hit latency; the micro-batcher's batches and faces;
alerts by outcome. Camera names are labels; URLs never appear (not even redacted).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


def _collector(service):
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily

    class ServiceCollector:
        def collect(self):
            cams = service.workers
            per_camera = [
                ("frames", "Frames handled by the pipeline", "counter", lambda w: w.stats.frames),
                ("frames_received", "Frames decoded from the stream", "counter",
                 lambda w: w.buffer.received),
                ("frames_dropped", "Frames dropped because the pipeline was behind", "counter",
                 lambda w: w.buffer.dropped),
                ("reconnects", "Reconnects after a failure or stall", "counter",
                 lambda w: w.reader.stats.reconnects),
                ("faces", "Faces detected (after ignore masks)", "counter", lambda w: w.stats.faces),
                ("tracks", "Finished tracks stored", "counter", lambda w: w.stats.tracks),
                ("hits", "Hits written (one per track and person)", "counter",
                 lambda w: w.stats.hits),
                ("errors", "Pipeline or storage errors (the camera goes on)", "counter",
                 lambda w: w.stats.errors),
                ("fps", "Frames handled per second", "gauge", lambda w: w.stats.fps),
                ("queue_depth", "Frames waiting in the live buffer", "gauge",
                 lambda w: len(w.buffer)),
                ("camera_up", "1 while the stream is connected", "gauge",
                 lambda w: 1.0 if w.reader.stats.connected else 0.0),
            ]
            for key, doc, kind, get in per_camera:
                family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
                    f"cctv_id_{key}", doc, labels=["camera"])
                for w in cams:
                    family.add_metric([w.name], float(get(w)))
                yield family
            lat = SummaryMetricFamily("cctv_id_hit_latency_seconds",
                                      "Trigger frame arrival to hit row stored", labels=["camera"])
            for w in cams:
                lat.add_metric([w.name], w.stats.latency_count, w.stats.latency_sum_s)
            yield lat
            b = service.batcher.stats
            yield CounterMetricFamily("cctv_id_recognizer_batches", "Micro-batched recogniser passes",
                                      value=b.batches)
            yield CounterMetricFamily("cctv_id_recognizer_faces", "Faces embedded", value=b.faces)
            yield GaugeMetricFamily("cctv_id_recognizer_queue_depth",
                                    "Embedding requests waiting", value=service.batcher.depth)
            alerts = CounterMetricFamily("cctv_id_alerts", "Alerts by outcome", labels=["outcome"])
            for outcome, n in sorted(service.alert_stats().items()):
                alerts.add_metric([outcome], float(n))
            yield alerts

    return ServiceCollector()


class StatusServer:
    """Serves ``/healthz`` and ``/metrics`` for ``service`` on ``host:port`` in a thread."""

    def __init__(self, service, host: str, port: int):
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry()
        registry.register(_collector(service))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body, ctype, code = generate_latest(registry), \
                        "text/plain; version=0.0.4; charset=utf-8", 200
                elif path == "/healthz":
                    health = service.health()
                    body = json.dumps(health).encode()
                    ctype, code = "application/json", 200 if health["status"] == "ok" else 503
                else:
                    body, ctype, code = b"not found\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt, *args):  # access logs only at debug level
                log.debug("http: " + fmt, *args)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="http",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
