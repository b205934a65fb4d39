"""The webhook alert outbox.

Owns queueing an alert (at most once per dedup key, suppressed within a person's cooldown,
the outbox bounded by dropping the oldest pending alerts), finding the alerts due for
delivery, claiming one for a delivery attempt and recording how that attempt went (sent,
retry later, failed), and the counts and listings for metrics and admin tools.

Several processes may share one database: :meth:`AlertsMixin.enqueue_alert` is serialised
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock), so the
cooldown and the bound hold across them, and :meth:`AlertsMixin.claim_alert` gives one
attempt to one process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from cctv_id.store.engine import RepositoryBase
from cctv_id.store.models import ALERT_STATUSES, AlertOutbox, to_utc, utcnow

log = logging.getLogger("cctv_id.store.alerts")

# pg_advisory_xact_lock(int4, int4) key: serialises enqueues of all processes (the two-key
# space does not overlap the one-key lock the migrations take)
_PG_ENQUEUE_LOCK = (0x0CC7_1D00, 0xA1E7)
_KEY_MAX = 255


class AlertsMixin(RepositoryBase):
    """The webhook alert outbox (part of :class:`Repository`)."""

    def enqueue_alert(
        self,
        dedup_key: str,
        person: str,
        camera: str,
        payload: dict,
        cooldown_s: float,
        outbox_max: int,
        *,
        on_dropped: Callable[[int], None] | None = None,
    ) -> str:
        """Queue an alert, in ONE transaction; returns what became of it:

        - "duplicate": ``dedup_key`` is already in the outbox; nothing is written;
        - "suppressed": ``person`` had an alert (of any status but "suppressed") created in
          the last ``cooldown_s`` seconds; a "suppressed" row is written, so the key is
          consumed and the decision can be seen;
        - "pending": queued for delivery, due now. When that leaves more than ``outbox_max``
          alerts pending, the oldest pending ones become "dropped" (a warning says how many;
          ``on_dropped(n)`` is called after the commit).
        """
        dedup_key = self._name(dedup_key, "alert dedup key")
        if len(dedup_key) > _KEY_MAX:
            raise ValueError(f"alert dedup key longer than {_KEY_MAX} characters: {dedup_key[:40]!r}...")
        person = self._name(person, "person")
        camera = self._name(camera, "camera")
        if not isinstance(payload, dict):
            raise TypeError(f"alert payload must be a dict, got {type(payload).__name__}")
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as e:
            raise TypeError(f"alert payload must be JSON-serialisable: {e}") from None
        cooldown = timedelta(seconds=float(cooldown_s))
        if cooldown < timedelta(0):
            raise ValueError(f"cooldown_s must be >= 0, got {cooldown_s!r}")
        if int(outbox_max) < 1:
            raise ValueError(f"outbox_max must be >= 1, got {outbox_max!r}")
        outbox_max = int(outbox_max)

        def body(s: Session) -> tuple[str, int]:
            if s.get_bind().dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"),
                          {"a": _PG_ENQUEUE_LOCK[0], "b": _PG_ENQUEUE_LOCK[1]})
            known = s.execute(select(AlertOutbox.id).where(AlertOutbox.dedup_key == dedup_key)).first()
            if known is not None:
                return "duplicate", 0
            now = utcnow()
            status = "pending"
            if cooldown > timedelta(0):
                recent = s.execute(
                    select(AlertOutbox.id)
                    .where(
                        AlertOutbox.person == person,
                        AlertOutbox.status != "suppressed",
                        AlertOutbox.created_at > now - cooldown,
                    )
                    .limit(1)
                ).first()
                if recent is not None:
                    status = "suppressed"
            row = {
                "dedup_key": dedup_key,
                "person": person,
                "camera": camera,
                "payload": payload,
                "status": status,
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": None,
                "created_at": now,
                "sent_at": None,
            }
            if not self._insert_ignore(s, AlertOutbox, row, ["dedup_key"]):
                return "duplicate", 0  # another writer without the lock (other dialects)
            dropped = self._drop_oldest_pending(s, outbox_max) if status == "pending" else 0
            return status, dropped

        status, dropped = self._transact(body, write=True)
        if dropped:
            log.warning(
                "alert outbox full: dropped the %d oldest pending alert(s) (outbox_max %d)",
                dropped, outbox_max,
            )
            if on_dropped is not None:
                on_dropped(dropped)
        return status

    @staticmethod
    def _drop_oldest_pending(s: Session, outbox_max: int) -> int:
        pending = s.execute(
            select(func.count()).select_from(AlertOutbox).where(AlertOutbox.status == "pending")
        ).scalar_one()
        excess = pending - outbox_max
        if excess <= 0:
            return 0
        oldest = list(
            s.execute(
                select(AlertOutbox.id)
                .where(AlertOutbox.status == "pending")
                .order_by(AlertOutbox.created_at, AlertOutbox.id)
                .limit(excess)
            ).scalars()
        )
        s.execute(
            update(AlertOutbox)
            .where(AlertOutbox.id.in_(oldest), AlertOutbox.status == "pending")
            .values(status="dropped", last_error=f"outbox full (outbox_max {outbox_max})")
        )
        return len(oldest)

    def due_alerts(self, now: datetime, limit: int) -> list[dict]:
        """Pending alerts whose next attempt is due at ``now``, oldest first (as
        :meth:`list_alerts`). Reads only: :meth:`claim_alert` one before sending it."""
        now = to_utc(now, "now")
        q = (
            select(AlertOutbox)
            .where(AlertOutbox.status == "pending", AlertOutbox.next_attempt_at <= now)
            .order_by(AlertOutbox.created_at, AlertOutbox.id)
            .limit(max(0, int(limit)))
        )
        return self._transact(lambda s: [self._alert_dict(a) for a in s.execute(q).scalars()])

    def claim_alert(self, alert_id: int, now: datetime, lease_s: float) -> bool:
        """Take a due pending alert for one delivery attempt: its next attempt moves to
        ``now + lease_s``, so no other process takes it meanwhile (nor again if this one
        dies before recording the outcome, until the lease has passed). False: it is no
        longer pending and due (another process claimed, sent or dropped it)."""
        now = to_utc(now, "now")
        until = now + timedelta(seconds=float(lease_s))

        def body(s: Session) -> bool:
            res = s.execute(
                update(AlertOutbox)
                .where(
                    AlertOutbox.id == alert_id,
                    AlertOutbox.status == "pending",
                    AlertOutbox.next_attempt_at <= now,
                )
                .values(next_attempt_at=until)
            )
            return res.rowcount == 1

        return self._transact(body, write=True)

    def mark_alert_sent(self, alert_id: int) -> bool:
        """The alert was delivered: "sent" (even if it was dropped or given up on while the
        attempt ran: it did arrive), one more attempt counted. False: unknown, already sent
        or suppressed."""
        return self._set_alert(
            alert_id, ("pending", "dropped", "failed"),
            status="sent", sent_at=utcnow(), attempts=AlertOutbox.attempts + 1,
        )

    def mark_alert_retry(self, alert_id: int, error: str, next_attempt_at: datetime) -> bool:
        """A failed attempt to try again at ``next_attempt_at``: stays "pending", one more
        attempt counted, ``error`` kept. False: the alert is no longer pending."""
        next_attempt_at = to_utc(next_attempt_at, "next_attempt_at")
        return self._set_alert(
            alert_id, ("pending",),
            attempts=AlertOutbox.attempts + 1, last_error=str(error), next_attempt_at=next_attempt_at,
        )

    def mark_alert_failed(self, alert_id: int, error: str) -> bool:
        """The last attempt failed too: "failed", one more attempt counted, ``error`` kept.
        False: the alert is no longer pending."""
        return self._set_alert(
            alert_id, ("pending",), status="failed", attempts=AlertOutbox.attempts + 1, last_error=str(error)
        )

    def _set_alert(self, alert_id: int, from_statuses: tuple[str, ...], **values: Any) -> bool:
        def body(s: Session) -> bool:
            res = s.execute(
                update(AlertOutbox)
                .where(AlertOutbox.id == alert_id, AlertOutbox.status.in_(from_statuses))
                .values(**values)
            )
            return res.rowcount == 1

        return self._transact(body, write=True)

    def alert_counts(self) -> dict[str, int]:
        """Alerts per status, every status present (0 when none)."""

        def body(s: Session) -> dict[str, int]:
            rows = s.execute(select(AlertOutbox.status, func.count()).group_by(AlertOutbox.status))
            return {status: int(n) for status, n in rows}

        found = self._transact(body)
        return {status: found.get(status, 0) for status in ALERT_STATUSES}

    def list_alerts(self, status: str | None = None) -> list[dict]:
        """Alerts (all, or those with ``status``), oldest first, as dicts: id, dedup_key,
        person, camera, payload, status, attempts, next_attempt_at, last_error, created_at,
        sent_at."""
        q = select(AlertOutbox).order_by(AlertOutbox.created_at, AlertOutbox.id)
        if status is not None:
            if status not in ALERT_STATUSES:
                raise ValueError(f"unknown alert status {status!r}; one of {', '.join(ALERT_STATUSES)}")
            q = q.where(AlertOutbox.status == status)
        return self._transact(lambda s: [self._alert_dict(a) for a in s.execute(q).scalars()])

    @staticmethod
    def _alert_dict(a: AlertOutbox) -> dict:
        return {
            "id": a.id,
            "dedup_key": a.dedup_key,
            "person": a.person,
            "camera": a.camera,
            "payload": dict(a.payload or {}),
            "status": a.status,
            "attempts": a.attempts,
            "next_attempt_at": a.next_attempt_at,
            "last_error": a.last_error,
            "created_at": a.created_at,
            "sent_at": a.sent_at,
        }
