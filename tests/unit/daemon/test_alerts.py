"""AlertDispatcher against a real HTTP receiver on 127.0.0.1 (SQLite outbox in tmp_path)."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cctv_id.config import AlertsConfig
from cctv_id.daemon.alerts import AlertDispatcher, alert_dedup_key
from cctv_id.errors import ConfigError
from cctv_id.store import Repository

T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
FAST = {"backoff_initial_s": 0.02, "backoff_max_s": 0.05, "timeout_s": 2.0, "cooldown_s": 60.0}


class Receiver:
    """A webhook receiver: records every request; answers ``codes`` in turn, then ``default``."""

    def __init__(self, port: int = 0, codes: tuple[int, ...] = (), default: int = 200) -> None:
        self.requests: list[dict] = []
        self.codes = list(codes)
        self.default = default
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    code = outer.codes.pop(0) if outer.codes else outer.default
                    outer.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": json.loads(body), "code": code}
                    )
                self.send_response(code)
                if 300 <= code < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST  # noqa: N815 - a followed redirect would show up here

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def delivered(self) -> list[dict]:
        """Bodies of the requests answered 2xx."""
        with self.lock:
            return [r["body"] for r in self.requests if 200 <= r["code"] < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'cctv.db'}"


@pytest.fixture
def repo(db_url):
    r = Repository(db_url)
    yield r
    r.close()


@pytest.fixture
def dispatchers():
    made: list[AlertDispatcher] = []
    yield made
    for d in made:
        d.stop(2.0)


def _dispatcher(made: list, repo, url: str | None, poll_s: float = 0.05, **cfg) -> AlertDispatcher:
    d = AlertDispatcher(repo, AlertsConfig(webhook_url=url, **{**FAST, **cfg}), poll_s=poll_s)
    made.append(d)
    return d


def _hit(person: str = "alice", track: int = 1, run: int = 7, camera: str = "lobby") -> dict:
    return {
        "run_id": run, "track_key": track, "person": person, "camera": camera, "score": 0.612,
        "threshold": 0.4, "face_px": 14.5, "first_seen_at": T0.isoformat(), "best_shot_at": T0,
    }


def _wait(cond, timeout: float = 10.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_each_hit_is_delivered_once_with_its_headers(repo, receiver, dispatchers):
    d = _dispatcher(dispatchers, repo, receiver.url, headers={"X-Api-Key": "k-123"})
    d.start()
    hits = [_hit("alice", 1), _hit("bob", 2), _hit("carol", 3, camera="yard")]
    assert [d.enqueue(h) for h in hits] == ["pending"] * 3
    _wait(lambda: len(receiver.delivered()) == 3, what="3 deliveries")
    time.sleep(0.2)  # nothing more comes
    assert len(receiver.requests) == 3
    by_person = {r["body"]["person"]: r for r in receiver.requests}
    alerts = {a["person"]: a for a in repo.list_alerts()}
    for h in hits:
        req = by_person[h["person"]]
        key = f"7:{h['track_key']}:{h['person']}"
        assert req["path"] == "/hook"
        assert req["headers"]["Content-Type"] == "application/json"
        assert req["headers"]["X-Cctv-Id-Alert"] == key
        assert req["headers"]["X-Api-Key"] == "k-123"
        body = req["body"]
        assert body["dedup_key"] == key and body["alert_id"] == alerts[h["person"]]["id"]
        assert body["camera"] == h["camera"] and body["score"] == 0.612 and body["face_px"] == 14.5
        assert body["first_seen_at"] == T0.isoformat() and body["best_shot_at"] == T0.isoformat()
        assert alerts[h["person"]]["status"] == "sent" and alerts[h["person"]]["attempts"] == 1
    assert d.stats == {"enqueued": 3, "sent": 3, "failed": 0, "retries": 0, "suppressed": 0,
                       "duplicate": 0, "dropped": 0}
    assert d.stop(5.0)


def test_duplicate_enqueue_is_not_sent_again(repo, receiver, dispatchers):
    d = _dispatcher(dispatchers, repo, receiver.url)
    d.start()
    assert d.enqueue(_hit()) == "pending"
    assert d.enqueue(_hit()) == "duplicate"
    _wait(lambda: len(receiver.delivered()) == 1)
    assert d.enqueue(_hit()) == "duplicate"  # after delivery too
    time.sleep(0.2)
    assert len(receiver.requests) == 1
    assert d.stats["duplicate"] == 2 and d.stats["sent"] == 1


def test_cooldown_suppresses_the_same_person_on_another_track_only(repo, receiver, dispatchers):
    d = _dispatcher(dispatchers, repo, receiver.url, cooldown_s=60)
    d.start()
    assert d.enqueue(_hit("alice", 1)) == "pending"
    assert d.enqueue(_hit("alice", 2)) == "suppressed"
    assert d.enqueue(_hit("bob", 3)) == "pending"
    _wait(lambda: len(receiver.delivered()) == 2)
    time.sleep(0.2)
    assert sorted(b["dedup_key"] for b in receiver.delivered()) == ["7:1:alice", "7:3:bob"]
    assert repo.alert_counts()["suppressed"] == 1
    assert d.stats["suppressed"] == 1


def test_server_errors_are_retried_until_delivered_once(repo, dispatchers):
    receiver = Receiver(codes=(500, 500))
    try:
        d = _dispatcher(dispatchers, repo, receiver.url)
        d.start()
        assert d.enqueue(_hit()) == "pending"
        _wait(lambda: len(receiver.delivered()) == 1)
        time.sleep(0.2)
        assert [r["code"] for r in receiver.requests] == [500, 500, 200]
        assert {r["headers"]["X-Cctv-Id-Alert"] for r in receiver.requests} == {"7:1:alice"}
        [alert] = repo.list_alerts()
        assert alert["status"] == "sent" and alert["attempts"] == 3
        assert alert["last_error"].startswith("HTTP 500")
        assert d.stats["retries"] == 2 and d.stats["sent"] == 1 and d.stats["failed"] == 0
    finally:
        receiver.close()


def test_gives_up_after_max_attempts(repo, dispatchers):
    receiver = Receiver(default=503)
    try:
        d = _dispatcher(dispatchers, repo, receiver.url, max_attempts=3)
        d.start()
        d.enqueue(_hit())
        _wait(lambda: d.stats["failed"] == 1)
        time.sleep(0.2)
        assert len(receiver.requests) == 3
        [alert] = repo.list_alerts()
        assert alert["status"] == "failed" and alert["attempts"] == 3 and "503" in alert["last_error"]
        assert d.stats["retries"] == 2
    finally:
        receiver.close()


def test_a_redirect_is_not_a_delivery(repo, dispatchers):
    receiver = Receiver(default=302)
    try:
        d = _dispatcher(dispatchers, repo, receiver.url, max_attempts=1)
        d.start()
        d.enqueue(_hit())
        _wait(lambda: d.stats["failed"] == 1)
        assert len(receiver.requests) == 1  # not followed (urllib would re-send it as a GET)
        assert repo.list_alerts()[0]["status"] == "failed"
    finally:
        receiver.close()


def test_receiver_down_then_up(repo, dispatchers):
    port = _free_port()
    d = _dispatcher(dispatchers, repo, f"http://127.0.0.1:{port}/hook", max_attempts=1000)
    d.start()
    assert d.enqueue(_hit()) == "pending"
    _wait(lambda: d.stats["retries"] >= 2, what="retries against the closed port")
    [alert] = repo.list_alerts()
    assert alert["status"] == "pending" and "connection failed" in alert["last_error"]
    receiver = Receiver(port=port)
    try:
        _wait(lambda: len(receiver.delivered()) == 1)
        time.sleep(0.2)
        assert len(receiver.requests) == 1
        assert repo.list_alerts()[0]["status"] == "sent"
    finally:
        receiver.close()


def test_a_new_dispatcher_delivers_what_the_last_one_left_and_never_repeats(db_url, repo, receiver, dispatchers):
    d1 = _dispatcher(dispatchers, repo, receiver.url, max_attempts=1000)
    d1.start()
    assert d1.enqueue(_hit("alice", 1)) == "pending"
    _wait(lambda: len(receiver.delivered()) == 1)
    receiver.default = 500
    assert d1.enqueue(_hit("bob", 2)) == "pending"
    _wait(lambda: d1.stats["retries"] >= 1)
    assert d1.stop(5.0)
    # a process that queued an alert and died before delivering it
    never_started = _dispatcher(dispatchers, repo, receiver.url)
    assert never_started.enqueue(_hit("carol", 3)) == "pending"
    assert repo.alert_counts()["pending"] == 2
    receiver.default = 200

    repo2 = Repository(db_url)
    try:
        d2 = _dispatcher(dispatchers, repo2, receiver.url)
        d2.start()
        _wait(lambda: len(receiver.delivered()) == 3)
        time.sleep(0.3)
        assert sorted(b["dedup_key"] for b in receiver.delivered()) == ["7:1:alice", "7:2:bob", "7:3:carol"]
        assert repo2.alert_counts()["sent"] == 3
        assert d2.stats["sent"] == 2
        assert d2.enqueue(_hit("alice", 1)) == "duplicate"  # the same hit, seen again after a restart
        assert d2.stop(5.0)
    finally:
        repo2.close()


def test_stop_delivers_what_is_due_before_exiting(repo, receiver, dispatchers):
    d = _dispatcher(dispatchers, repo, receiver.url, poll_s=60.0)
    d.start()
    time.sleep(0.2)  # the first pass is over; the thread sleeps for a minute
    # queued by another process: nothing wakes this dispatcher
    assert repo.enqueue_alert("9:1:dave", "dave", "yard", {"person": "dave"}, 60.0, 100) == "pending"
    time.sleep(0.2)
    assert receiver.requests == []
    t0 = time.monotonic()
    assert d.stop(5.0)
    assert time.monotonic() - t0 < 2.0
    assert [b["dedup_key"] for b in receiver.delivered()] == ["9:1:dave"]


def test_stop_is_bounded_by_its_timeout(repo, dispatchers):
    port = _free_port()
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", port))
        listener.listen(16)
        d = _dispatcher(dispatchers, repo, f"http://127.0.0.1:{port}/hook", timeout_s=30.0)
        d.start()
        d.enqueue(_hit())
        time.sleep(0.2)  # the POST is under way, waiting for an answer
        t0 = time.monotonic()
        assert d.stop(0.5) is False
        assert time.monotonic() - t0 < 1.5
    dispatchers.remove(d)


def test_outbox_max_drops_the_oldest_pending(repo, receiver, dispatchers):
    d = _dispatcher(dispatchers, repo, receiver.url, outbox_max=2)
    statuses = [d.enqueue(_hit(f"p{i}", i)) for i in range(4)]  # not started: all stay pending
    assert statuses == ["pending"] * 4
    assert d.stats["dropped"] == 2
    assert [a["dedup_key"] for a in repo.list_alerts("dropped")] == ["7:0:p0", "7:1:p1"]
    d.start()
    _wait(lambda: len(receiver.delivered()) == 2)
    time.sleep(0.2)
    assert sorted(b["dedup_key"] for b in receiver.delivered()) == ["7:2:p2", "7:3:p3"]


def test_credentials_in_the_webhook_url_are_sent_as_basic_auth_and_never_logged(repo, dispatchers, caplog):
    receiver = Receiver(codes=(500,))
    try:
        url = f"http://hookuser:s3cr%40t-pw@127.0.0.1:{receiver.port}/hook"
        with caplog.at_level(logging.DEBUG):
            d = _dispatcher(dispatchers, repo, url)
            d.start()
            d.enqueue(_hit())
            _wait(lambda: len(receiver.delivered()) == 1)
            assert d.stop(5.0)
        auth = receiver.requests[-1]["headers"]["Authorization"]
        assert base64.b64decode(auth.split()[1]).decode() == "hookuser:s3cr@t-pw"
        assert d.safe_url == f"http://***:***@127.0.0.1:{receiver.port}/hook"
        text = caplog.text
        assert "attempt 1/" in text and "***:***@127.0.0.1" in text  # the URL was logged...
        assert "s3cr" not in text and "hookuser" not in text  # ...without its credentials
        assert all("s3cr" not in (a["last_error"] or "") for a in repo.list_alerts())
    finally:
        receiver.close()


def test_no_webhook_url_means_no_alerts(repo, dispatchers):
    d = _dispatcher(dispatchers, repo, None)
    assert not d.enabled
    assert d.enqueue(_hit()) == "disabled"
    d.start()
    assert d.stop(1.0)
    assert repo.count("alert_outbox") == 0
    assert d.deliver_due() == 0


def test_bad_webhook_url_is_a_config_error_without_the_password(repo):
    with pytest.raises(ConfigError) as e:
        AlertDispatcher(repo, AlertsConfig(webhook_url="ftp://u:topsecret@host/x"))
    assert "topsecret" not in str(e.value) and "***" in str(e.value)
    with pytest.raises(ConfigError):
        AlertDispatcher(repo, AlertsConfig(webhook_url="http://host:notaport/x"))


def test_dedup_key():
    assert alert_dedup_key({"run_id": 3, "track_key": 12, "person": "Ann Lee"}) == "3:12:Ann Lee"
    long_key = alert_dedup_key({"run_id": 3, "track_key": 12, "person": "x" * 255})
    assert len(long_key) <= 255 and long_key.startswith("3:12:sha256:")
