"""``cctv-id monitor`` end to end against real RTSP servers on loopback.

Two GStreamer RTSP servers (basic auth) stream, looped in real time, the street composite
with known CelebA faces (camera "street") and vtest.avi (camera "lobby"). Two more cameras
are misconfigured: a wrong password and a port nobody listens on. One daemon process runs
the whole story, checked from outside (database, /metrics, /healthz, its log, a webhook
receiver): hits arrive for the known faces; the street server is killed and restarted 3
times -> reconnects and hits continue, while the lobby camera keeps going; bad credentials
and the dead port give clear logged errors and retries, not a crash; SIGTERM flushes and
exits 0 within seconds; no password appears in any log line, metric or database row; the
webhook receiver gets every hit exactly once.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

import street_scenario as S
from rtsp import RtspServer, rtsp_available

PASSWORD = "Wh1sper-9x7"
USER = "viewer"


def cli(*args):
    proc = subprocess.run([sys.executable, "-m", "cctv_id.cli.main", *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"cctv-id {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


class Receiver:
    """A webhook receiver: records every POSTed JSON body."""

    def __init__(self):
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                outer.bodies.append({"body": json.loads(self.rfile.read(n)),
                                     "key": self.headers.get("X-Cctv-Id-Alert")})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out, text


def _metric(port, name, camera):
    values, _ = _metrics(port)
    return values.get(f'cctv_id_{name}_total{{camera="{camera}"}}',
                      values.get(f'cctv_id_{name}{{camera="{camera}"}}', 0.0))


def _wait(cond, timeout, what, step=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _hits(db_path) -> list[tuple]:
    con = sqlite3.connect(db_path)
    try:
        return con.execute(
            "SELECT h.run_id, t.track_key, p.name, c.name FROM hits h "
            "JOIN tracks t ON t.id = h.track_id JOIN persons p ON p.id = h.person_id "
            "JOIN cameras c ON c.id = t.camera_id").fetchall()
    except sqlite3.OperationalError:  # tables not there yet
        return []
    finally:
        con.close()


@pytest.fixture(scope="module")
def scene(tmp_path_factory, celeba_dir, vtest_path):
    reason = rtsp_available()
    if reason:
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("monitor")
    scenario = S.build(out, celeba_dir, vtest_path, seconds=15.0)
    db = out / "hits.db"
    for person, photos in scenario.enrol_photos.items():
        cli("--db", f"sqlite:///{db}", "enroll", "--largest", "--name", person, *map(str, photos))
    return out, scenario, db, vtest_path


def _refusing_port():
    """A loopback port bound but never listening, held for the whole test: connecting to it
    is refused, and no other process (a web server of a parallel test run) can take it."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def test_monitor_live_cameras_end_to_end(scene):
    out, scenario, db, vtest = scene
    street = RtspServer({"street": scenario.video}, user=USER, password=PASSWORD)
    lobby = RtspServer({"lobby": vtest}, user=USER, password=PASSWORD)
    receiver = Receiver()
    proc = None
    dead_socket = None
    try:
        street.start()
        lobby.start()
        dead_socket, dead_port = _refusing_port()
        config = {
            "db": f"sqlite:///{db}",
            "preset": "live",
            "monitor": {"http_port": 0, "hit_every_s": 3.0, "shutdown_timeout_s": 10},
            "alerts": {"webhook_url": receiver.url, "cooldown_s": 0, "backoff_initial_s": 0.2},
            "cameras": {
                "street": {"url": street.url("street"),
                           "stream": {"backoff_initial_s": 0.3, "backoff_max_s": 2,
                                      "stall_timeout_s": 3, "read_timeout_s": 3}},
                "lobby": {"url": lobby.url("lobby")},
                "wrongpass": {"url": lobby.url("lobby").replace(PASSWORD, "nope-" + PASSWORD[::-1]),
                              "stream": {"backoff_initial_s": 0.3, "backoff_max_s": 2}},
                "deadport": {"url": f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{dead_port}/cam",
                             "stream": {"backoff_initial_s": 0.3, "backoff_max_s": 2}},
            },
        }
        cfg_path = out / "monitor.yaml"
        cfg_path.write_text(yaml.safe_dump(config))
        log_path = out / "monitor.log"
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen([sys.executable, "-m", "cctv_id.cli.main", "--config",
                                     str(cfg_path), "monitor"], stderr=log_file,
                                    stdout=subprocess.DEVNULL)

            def port():
                for line in log_path.read_text().splitlines():
                    if '"http_started"' in line:
                        return int(json.loads(line)["msg"].split(":")[2].split(" ")[0])
                assert proc.poll() is None, log_path.read_text()
                return None

            http_port = _wait(port, 120, "the status endpoint")
            # 1. hits arrive for the known faces of the street camera
            _wait(lambda: {h[2] for h in _hits(db) if h[3] == "street"} >= {"7201", "7218"}, 90,
                  "hits for the known faces")
            first_hits = len(_hits(db))
            # 2. three outages of the street server: reconnects, and hits go on
            for outage in range(3):
                before = _metric(http_port, "reconnects", "street")
                lobby_frames = _metric(http_port, "frames", "lobby")
                street.kill()
                _wait(lambda: _metric(http_port, "reconnects", "street") > before, 30,
                      f"a reconnect attempt after outage {outage + 1}")
                # the other camera keeps working while this one is down
                _wait(lambda: _metric(http_port, "frames", "lobby") > lobby_frames + 10, 30,
                      "lobby frames while the street camera is down")
                assert proc.poll() is None
                street.restart()
                street_frames = _metric(http_port, "frames", "street")
                _wait(lambda: _metric(http_port, "frames", "street") > street_frames + 10, 60,
                      f"street frames after restart {outage + 1}")
            _wait(lambda: len([h for h in _hits(db) if h[3] == "street"]) > first_hits, 90,
                  "new hits after the restarts")
            # 3. misconfigured cameras: clear errors, retries, no crash
            health = json.loads(urllib.request.urlopen(
                f"http://127.0.0.1:{http_port}/healthz", timeout=5).read())
            assert health["status"] == "ok"
            assert "authentication failed" in health["cameras"]["wrongpass"]["last_error"]
            assert "connection refused" in health["cameras"]["deadport"]["last_error"]
            assert health["cameras"]["wrongpass"]["reconnects"] >= 2
            assert health["cameras"]["deadport"]["reconnects"] >= 2
            _, metrics_text = _metrics(http_port)
            # 4. SIGTERM: flush and exit 0 within seconds
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=30)
            stop_s = time.monotonic() - t0
        log_text = log_path.read_text()
        assert rc == 0, log_text[-3000:]
        assert stop_s < 15, f"took {stop_s:.1f} s to stop"
        lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
        assert any(e.get("event") == "stopped" for e in lines)
        assert any("authentication failed" in e["msg"] and e.get("camera") == "wrongpass"
                   for e in lines)
        # 5. no password anywhere: logs, metrics, database
        assert PASSWORD not in log_text and PASSWORD[::-1] not in log_text
        assert PASSWORD not in metrics_text
        con = sqlite3.connect(db)
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            for row in con.execute(f'SELECT * FROM "{table}"'):
                assert PASSWORD not in repr(row), f"password stored in {table}"
        # long tracks got their hit while still going on (hit_every_s), then were updated
        (early,) = con.execute("SELECT count(*) FROM hits WHERE julianday(created_at) < "
                               "julianday(last_seen_at) - 1.0 / 86400").fetchone()
        assert early >= 1, "no hit was written before its track ended"
        runs = con.execute("SELECT status FROM runs").fetchall()
        con.close()
        assert runs and all(r[0] == "completed" for r in runs)
        # 6. the webhook got every hit once
        hits = _hits(db)
        assert len(hits) == len(set(hits))
        assert {h[2] for h in hits} <= set(S.ENROLLED), f"a wrong name was hit: {hits}"
        _wait(lambda: len(receiver.bodies) >= len(hits), 20, "alerts for every hit")
        keys = [b["key"] for b in receiver.bodies]
        assert len(keys) == len(set(keys)), "an alert was delivered twice"
        assert {(b["body"]["run_id"], b["body"]["track_key"], b["body"]["person"])
                for b in receiver.bodies} == {h[:3] for h in hits}
        print(f"hits: {len(hits)}, stop took {stop_s:.1f} s")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        street.stop()
        lobby.stop()
        receiver.close()
        if dead_socket is not None:
            dead_socket.close()
