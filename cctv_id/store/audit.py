"""The append-only audit log: who did what to the biometric data, when, with what.

Owns writing an entry (alone, or inside the transaction of the action it records, so an
action and its entry commit together or not at all) and reading entries back. There is no
update or delete: the migration's triggers refuse both on the table itself.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cctv_id.store.engine import RepositoryBase
from cctv_id.store.models import AuditEntry, to_utc, utcnow

AUDITED_ACTIONS = ("enrol", "remove-person", "search", "export", "purge", "review", "reembed",
                   "retro-match", "login")


def default_operator() -> str:
    """Who is acting when nobody said: the OS user (``uid<N>`` without a passwd entry)."""
    import getpass
    import os

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return f"uid{os.getuid()}"


def _jsonable(value: Any) -> Any:
    """Parameters as JSON values (paths and datetimes as strings)."""
    return json.loads(json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime)
                                 else str(v)))


class AuditMixin(RepositoryBase):
    """The audit log (part of :class:`Repository`)."""

    def record_audit(self, operator: str, action: str, params: dict | None = None,
                     outcome: dict | None = None) -> int:
        """Append one entry in its own transaction; returns its id."""
        return self._transact(lambda s: self._audit(s, operator, action, params, outcome), write=True)

    def _audit(self, s: Session, operator: str, action: str, params: dict | None = None,
               outcome: dict | None = None) -> int:
        """Append one entry inside the caller's transaction ``s``."""
        if action not in AUDITED_ACTIONS:
            raise ValueError(f"unknown audit action {action!r}; one of {', '.join(AUDITED_ACTIONS)}")
        operator = self._name(operator, "operator")
        entry = AuditEntry(at=utcnow(), operator=operator, action=action,
                           params=_jsonable(params or {}), outcome=_jsonable(outcome or {}))
        s.add(entry)
        s.flush()
        return int(entry.id)

    def list_audit(self, since: datetime | None = None, until: datetime | None = None,
                   action: str | None = None, operator: str | None = None,
                   limit: int | None = None) -> list[dict]:
        """Entries, oldest first."""
        since, until = to_utc(since, "since"), to_utc(until, "until")
        if action is not None and action not in AUDITED_ACTIONS:
            raise ValueError(f"unknown audit action {action!r}; one of {', '.join(AUDITED_ACTIONS)}")
        q = select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id)
        if since is not None:
            q = q.where(AuditEntry.at >= since)
        if until is not None:
            q = q.where(AuditEntry.at <= until)
        if action is not None:
            q = q.where(AuditEntry.action == action)
        if operator is not None:
            q = q.where(AuditEntry.operator == operator)
        if limit is not None:
            q = q.limit(int(limit))

        def body(s: Session) -> list[dict]:
            return [{"id": e.id, "at": e.at, "operator": e.operator, "action": e.action,
                     "params": e.params, "outcome": e.outcome} for e in s.execute(q).scalars()]

        return self._transact(body)
