"""Webhook alerts of the live daemon: hits queued in the database outbox, POSTed by a thread.

Owns turning a hit into an alert (its dedup key ``run_id:track_key:person`` and JSON payload),
queueing it through the repository's outbox (duplicates ignored, the person's cooldown
applied, the outbox bounded), and delivering the outbox: one background thread POSTs each
due alert (JSON body, ``X-Cctv-Id-Alert: <dedup key>`` for the receiver to drop repeats),
retries failures (connection refused, timeout, any non-2xx answer, redirects included) with
exponential backoff and jitter, and gives up after ``max_attempts``. The outbox lives in the
database, so alerts a previous process left pending are delivered by the next one, and
sent ones never again. Delivery is at least once: a process that dies between the POST and
recording it sends that alert again (same dedup key) once its claim has lapsed.

The webhook URL may hold credentials: they are sent as HTTP Basic auth, and every URL and
error text logged or stored goes through :func:`cctv_id.redact.redact_url`.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import random
import threading
import time
import urllib.error
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from cctv_id import __version__
from cctv_id.config import AlertsConfig
from cctv_id.errors import ConfigError
from cctv_id.redact import redact_url
from cctv_id.store.models import utcnow

if TYPE_CHECKING:
    from cctv_id.store import Repository

log = logging.getLogger("cctv_id.daemon.alerts")

STAT_KEYS = ("enqueued", "sent", "failed", "retries", "suppressed", "duplicate", "dropped")
IDEMPOTENCY_HEADER = "X-Cctv-Id-Alert"
DEFAULT_STOP_TIMEOUT_S = 5.0
_BATCH = 20  # due alerts read per query
_LEASE_MARGIN_S = 10.0  # a claim outlives the POST's timeout by this much
_ERROR_MAX = 500  # characters of an error kept in the outbox
_KEY_MAX = 255


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx answer is not a delivery (urllib would re-send a POST as a bodiless GET)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx code


def alert_dedup_key(hit: dict) -> str:
    """``run_id:track_key:person``; a key too long for the outbox hashes the person."""
    key = f"{hit['run_id']}:{hit['track_key']}:{hit['person']}"
    if len(key) > _KEY_MAX:
        digest = hashlib.sha256(str(hit["person"]).encode("utf-8")).hexdigest()
        key = f"{hit['run_id']}:{hit['track_key']}:sha256:{digest}"
    return key


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    return str(value)


def _jsonable(obj: dict) -> dict:
    return json.loads(json.dumps(obj, default=_json_default))


def _endpoint(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its credentials, and those credentials as a Basic auth header."""
    safe = redact_url(url)
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConfigError(f"alerts.webhook_url is not a valid URL: {safe}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"alerts.webhook_url must be an http:// or https:// URL, got {safe}")
    headers: dict[str, str] = {}
    if "@" in parts.netloc:
        user, pw = unquote(parts.username or ""), unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{pw}".encode("utf-8")).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return urlunsplit(parts), headers


class AlertDispatcher:
    """Queues hits as alerts in ``repo``'s outbox and delivers them to ``cfg.webhook_url``.

    ``enqueue`` is called from any thread; ``start`` runs the delivery thread, ``stop`` ends
    it. Without a webhook URL everything is a no-op (``enqueue`` returns "disabled").
    ``poll_s``: how often the outbox is looked at for alerts other processes queued (alerts
    queued here wake the thread at once).
    """

    def __init__(self, repo: Repository, cfg: AlertsConfig, *, poll_s: float = 1.0) -> None:
        self._repo = repo
        self._cfg = cfg
        self._poll_s = max(0.01, float(poll_s))
        self._url: str | None = None
        self._auth: dict[str, str] = {}
        self.safe_url: str | None = None
        if cfg.webhook_url:
            self._url, self._auth = _endpoint(cfg.webhook_url)
            self.safe_url = redact_url(cfg.webhook_url)
        self._opener = urllib.request.build_opener(_NoRedirect)
        self._lock = threading.Lock()
        self._stats = dict.fromkeys(STAT_KEYS, 0)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._deadline: float | None = None  # monotonic; set by stop()
        self._next_retry: float | None = None  # monotonic; earliest retry this process set
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self._url is not None

    @property
    def stats(self) -> dict[str, int]:
        """Counters since this dispatcher was made: enqueued, sent, failed, retries,
        suppressed, duplicate, dropped."""
        with self._lock:
            return dict(self._stats)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._stats[key] += n

    # ------------------------------------------------------------------ queueing

    def enqueue(self, hit: dict) -> str:
        """Queue an alert for ``hit`` (at least run_id, track_key, person, camera; datetimes
        become ISO strings). Returns "pending", "duplicate" (this run, track and person were
        alerted already), "suppressed" (the person's cooldown) or "disabled" (no webhook).
        A database that cannot be written raises :class:`~cctv_id.errors.StoreError`.
        """
        if self._url is None:
            return "disabled"
        missing = [k for k in ("run_id", "track_key", "person", "camera") if hit.get(k) is None]
        if missing:
            raise ValueError(f"alert hit lacks {', '.join(missing)}")
        key = alert_dedup_key(hit)
        status = self._repo.enqueue_alert(
            key,
            str(hit["person"]),
            str(hit["camera"]),
            _jsonable(dict(hit)),
            self._cfg.cooldown_s,
            self._cfg.outbox_max,
            on_dropped=lambda n: self._count("dropped", n),
        )
        self._count("enqueued" if status == "pending" else status)
        if status == "pending":
            self._wake.set()
        else:
            log.debug("alert %s: %s", key, status)
        return status

    # ------------------------------------------------------------------ delivery thread

    def start(self) -> None:
        """Start the delivery thread (a no-op without a webhook, or when it runs already)."""
        if self._url is None:
            log.info("alerts: no webhook_url configured; alerts are off")
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._deadline = None
        pending = self._repo.alert_counts()["pending"]
        log.info("alerts: delivering to %s (%d pending in the outbox)", self.safe_url, pending)
        self._thread = threading.Thread(target=self._run, name="alert-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> bool:
        """Deliver what is due, then end the thread, within ``timeout_s``. False: it had
        not finished by then (it goes on in the background, a daemon thread); what it could
        not deliver stays pending for the next process."""
        thread = self._thread
        if thread is None:
            return True
        self._deadline = time.monotonic() + max(0.0, float(timeout_s))
        self._stopping.set()
        self._wake.set()
        thread.join(max(0.0, float(timeout_s)))
        if thread.is_alive():
            log.warning("alerts: delivery still busy after %g s; stopping without waiting", timeout_s)
            return False
        self._thread = None
        return True

    def _run(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            try:
                self.deliver_due()
            except Exception as e:  # noqa: BLE001 - the thread must survive a database outage
                log.error("alerts: delivery pass failed: %s", redact_url(f"{type(e).__name__}: {e}"))
                if not stopping:
                    self._stopping.wait(self._poll_s)
            if stopping:
                return
            self._wake.wait(self._wait_s())
            self._wake.clear()

    def _wait_s(self) -> float:
        with self._lock:
            nxt = self._next_retry
        if nxt is None:
            return self._poll_s
        return min(self._poll_s, max(0.0, nxt - time.monotonic()))

    def deliver_due(self) -> int:
        """Attempt every alert due now (this thread's work; callable directly, e.g. by a
        one-shot tool). Returns the number of attempts made. After :meth:`stop` it ends at
        the stop's deadline."""
        if self._url is None:
            return 0
        with self._lock:
            self._next_retry = None
        attempts = 0
        while True:
            rows = self._repo.due_alerts(utcnow(), _BATCH)
            if not rows:
                return attempts
            for row in rows:
                if self._out_of_time():
                    return attempts
                if self._deliver(row):
                    attempts += 1

    def _out_of_time(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _deliver(self, row: dict) -> bool:
        """One attempt at one alert, if this process gets the claim on it."""
        timeout = self._cfg.timeout_s
        if self._deadline is not None:
            timeout = max(0.05, min(timeout, self._deadline - time.monotonic()))
        if not self._repo.claim_alert(row["id"], utcnow(), timeout + _LEASE_MARGIN_S):
            return False
        error = self._post(row, timeout)
        key = row["dedup_key"]
        if error is None:
            self._repo.mark_alert_sent(row["id"])
            self._count("sent")
            log.info("alert %s sent to %s", key, self.safe_url)
            return True
        error = redact_url(error)[:_ERROR_MAX]
        attempt = int(row["attempts"]) + 1
        if attempt >= self._cfg.max_attempts:
            self._repo.mark_alert_failed(row["id"], error)
            self._count("failed")
            log.warning("alert %s: giving up after %d attempt(s) to %s: %s", key, attempt, self.safe_url, error)
            return True
        delay = self._backoff_s(attempt)
        self._repo.mark_alert_retry(row["id"], error, utcnow() + timedelta(seconds=delay))
        self._count("retries")
        with self._lock:
            due = time.monotonic() + delay
            self._next_retry = due if self._next_retry is None else min(self._next_retry, due)
        log.warning(
            "alert %s: attempt %d/%d to %s failed: %s; retrying in %.2f s",
            key, attempt, self._cfg.max_attempts, self.safe_url, error, delay,
        )
        return True

    def _backoff_s(self, attempt: int) -> float:
        """Doubling from ``backoff_initial_s`` per failed attempt, up to ``backoff_max_s``,
        with up to +50% jitter (never past the maximum)."""
        cfg = self._cfg
        base = min(cfg.backoff_max_s, cfg.backoff_initial_s * 2.0 ** min(attempt - 1, 60))
        return min(cfg.backoff_max_s, base * random.uniform(1.0, 1.5))

    def _post(self, row: dict, timeout: float) -> str | None:
        """POST the alert; None on a 2xx answer, else what went wrong (one line)."""
        body = {**row["payload"], "alert_id": row["id"], "dedup_key": row["dedup_key"]}
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"cctv-id/{__version__}",
            **self._auth,
            **self._cfg.headers,
            IDEMPOTENCY_HEADER: row["dedup_key"],
        }
        assert self._url is not None
        req = urllib.request.Request(
            self._url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        try:
            with self._opener.open(req, timeout=timeout) as resp:
                resp.read(65536)
                code = resp.status
        except urllib.error.HTTPError as e:
            e.close()
            return f"HTTP {e.code} {e.reason}".strip()
        except urllib.error.URLError as e:
            return f"connection failed: {e.reason}"
        except (OSError, http.client.HTTPException, ValueError) as e:
            return f"{type(e).__name__}: {e}".strip()
        return None if 200 <= code < 300 else f"HTTP {code}"
