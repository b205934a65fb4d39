"""``cctv-id monitor`` bad input and clean stops, through the CLI (no RTSP server needed)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import yaml


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cctv_id.cli.main", *args],
                          capture_output=True, text=True, timeout=300)


def _one_error_line(proc, needle, code):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_monitor_configuration_errors(tmp_path):
    db = f"sqlite:///{tmp_path / 'm.db'}"
    empty = tmp_path / "empty.yaml"
    empty.write_text("decision: {margin: 0.0}\n")
    _one_error_line(cli("--db", db, "--config", str(empty), "monitor"), "no cameras configured", 2)
    cams = tmp_path / "cams.yaml"
    cams.write_text("cameras:\n  gate: {url: 'rtsp://127.0.0.1:1/x'}\n")
    _one_error_line(cli("--db", db, "--config", str(cams), "monitor", "--camera", "yard"),
                    "unknown camera 'yard'", 2)
    bad_hook = tmp_path / "hook.yaml"
    bad_hook.write_text("cameras:\n  gate: {url: 'rtsp://127.0.0.1:1/x'}\n"
                        "alerts: {webhook_url: 'ftp://u:hookpw@example/x'}\n")
    proc = cli("--db", db, "--config", str(bad_hook), "monitor", "--duration", "1")
    _one_error_line(proc, "webhook", 2)
    assert "hookpw" not in proc.stderr


def _unreachable_camera_config(tmp_path):
    """(config file, database file, port): one camera on a loopback port nobody listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db_path = tmp_path / "m.db"
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({
        "db": f"sqlite:///{db_path}",
        "monitor": {"http_port": 0},
        "cameras": {"gate": {"url": f"rtsp://admin:camPW77@127.0.0.1:{port}/s",
                             "stream": {"backoff_initial_s": 0.2, "backoff_max_s": 0.5}}},
    }))
    return conf, db_path, port


def test_unreachable_camera_retries_and_stops_cleanly(tmp_path):
    conf, db_path, port = _unreachable_camera_config(tmp_path)
    proc = cli("--config", str(conf), "monitor", "--duration", "4", "--log-format", "json")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(ln) for ln in proc.stderr.splitlines() if ln.startswith("{")]
    refused = [e for e in events if e.get("event") == "stream_error" and e.get("camera") == "gate"]
    assert len(refused) >= 3 and all("connection refused" in e["msg"] for e in refused)
    assert events[-1]["event"] == "stopped"
    assert "camPW77" not in proc.stderr
    con = sqlite3.connect(db_path)
    (status, config), = con.execute("SELECT status, config FROM runs").fetchall()
    (source,), = con.execute("SELECT path FROM sources").fetchall()
    con.close()
    assert status == "completed" and "camPW77" not in config
    assert source == f"rtsp://***:***@127.0.0.1:{port}/s"


def test_ctrl_c_pressed_on_while_the_monitor_exits_never_kills_it_by_the_signal(tmp_path):
    """A first SIGINT stops the monitor; more of them, sent while it is on its way out (after
    its "stopped" event: storing done, Python about to shut down with torch loaded), must
    still end in the documented exit codes (0 clean stop, 130 second signal), never in death
    by the signal with the run left open."""
    import contextlib
    import signal
    import time

    conf, db_path, _ = _unreachable_camera_config(tmp_path)
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "cctv_id.cli.main", "--config", str(conf),
                                 "monitor", "--log-format", "json"], stderr=err)
    try:
        deadline = time.monotonic() + 240
        while '"stream_error"' not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        while '"stopped"' not in log.read_text() and proc.poll() is None:
            time.sleep(0.005)
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            time.sleep(0.01)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert proc.returncode in (0, 130), (proc.returncode, text)
    assert "Traceback" not in text
    con = sqlite3.connect(db_path)
    (status,), = con.execute("SELECT status FROM runs").fetchall()
    con.close()
    assert status == "completed"
