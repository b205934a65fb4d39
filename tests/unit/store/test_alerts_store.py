"""The alert outbox in the store (migration 0003, enqueue with dedup / cooldown / bound, due
alerts, claims, delivery outcomes), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import MetaData, insert, update

from cctv_id.store import Repository
from cctv_id.store import migrate
from cctv_id.store.models import ALERT_STATUSES, AlertOutbox, utcnow


def _enqueue(repo: Repository, key: str, cooldown_s: float = 60.0, outbox_max: int = 100, **kw) -> str:
    """Queue ``key`` ("run:track:person") for its person (the part after the last colon)."""
    person = key.rsplit(":", 1)[-1] or key
    return repo.enqueue_alert(key, person, "cam1", {"key": key, "score": 0.61}, cooldown_s, outbox_max, **kw)


def _age(repo: Repository, key: str, seconds: float) -> None:
    """Move an alert's creation (and due time) ``seconds`` into the past."""
    row = next(a for a in repo.list_alerts() if a["dedup_key"] == key)
    with repo.engine.begin() as conn:
        conn.execute(
            update(AlertOutbox.__table__)
            .where(AlertOutbox.__table__.c.id == row["id"])
            .values(created_at=row["created_at"] - timedelta(seconds=seconds),
                    next_attempt_at=row["next_attempt_at"] - timedelta(seconds=seconds))
        )


def _statuses(repo: Repository) -> dict[str, str]:
    return {a["dedup_key"]: a["status"] for a in repo.list_alerts()}


# ------------------------------------------------------------------ migration 0003


def test_migration_0003_upgrades_a_database_holding_data_and_downgrades(db_url):
    repo = Repository(db_url, migrate_schema=False)
    migrate.upgrade(repo.engine, "0002_run_checkpoints")
    meta = MetaData()
    meta.reflect(repo.engine)
    assert "alert_outbox" not in meta.tables
    with repo.engine.begin() as conn:
        conn.execute(insert(meta.tables["cameras"]).values(id=1, name="cam1", created_at=utcnow().replace(tzinfo=None)))
    migrate.upgrade(repo.engine)
    assert repo.count("cameras") == 1 and repo.count("alert_outbox") == 0
    assert _enqueue(repo, "1:1:alice") == "pending"
    from alembic import command

    with repo.engine.begin() as conn:
        cfg = migrate.alembic_config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002_run_checkpoints")
    meta = MetaData()
    meta.reflect(repo.engine)
    assert "alert_outbox" not in meta.tables and "cameras" in meta.tables
    repo.close()


def test_status_check_constraint(repo):
    from sqlalchemy.exc import IntegrityError

    now = utcnow()
    with pytest.raises(IntegrityError), repo.engine.begin() as conn:
        conn.execute(insert(AlertOutbox.__table__).values(
            dedup_key="k", person="p", camera="c", payload={}, status="bogus", attempts=0,
            next_attempt_at=now, created_at=now))


# ------------------------------------------------------------------ enqueue


def test_enqueue_pending_then_duplicate_writes_nothing(repo):
    assert _enqueue(repo, "1:7:alice") == "pending"
    [row] = repo.list_alerts()
    assert row["status"] == "pending" and row["attempts"] == 0 and row["sent_at"] is None
    assert row["person"] == "alice" and row["camera"] == "cam1"
    assert row["payload"] == {"key": "1:7:alice", "score": 0.61}
    assert row["created_at"].tzinfo is not None and row["next_attempt_at"] <= utcnow()
    # same key, other content and no cooldown: still a duplicate, the row is untouched
    assert repo.enqueue_alert("1:7:alice", "alice", "cam9", {"other": 1}, 0.0, 100) == "duplicate"
    assert repo.list_alerts() == [row]


def test_cooldown_suppresses_the_same_person_only(repo):
    assert _enqueue(repo, "1:1:alice") == "pending"
    assert _enqueue(repo, "1:2:alice") == "suppressed"
    assert _enqueue(repo, "1:3:bob") == "pending"
    assert _statuses(repo) == {"1:1:alice": "pending", "1:2:alice": "suppressed", "1:3:bob": "pending"}
    # the suppressed alert's key is consumed
    assert _enqueue(repo, "1:2:alice") == "duplicate"
    assert repo.alert_counts() == {"pending": 2, "sent": 0, "failed": 0, "dropped": 0, "suppressed": 1}


def test_cooldown_expires_and_suppressed_alerts_do_not_extend_it(repo):
    assert _enqueue(repo, "1:1:alice", cooldown_s=60) == "pending"
    _age(repo, "1:1:alice", 50)
    assert _enqueue(repo, "1:2:alice", cooldown_s=60) == "suppressed"
    _age(repo, "1:1:alice", 20)  # now 70 s old; the suppressed one is recent
    assert _enqueue(repo, "1:3:alice", cooldown_s=60) == "pending"


def test_sent_failed_and_dropped_alerts_count_for_the_cooldown(repo):
    for i, mark in enumerate(("sent", "failed", "dropped")):
        person = f"p{i}"
        assert _enqueue(repo, f"1:{i}:{person}") == "pending"
        [row] = [a for a in repo.list_alerts() if a["person"] == person]
        with repo.engine.begin() as conn:
            conn.execute(update(AlertOutbox.__table__).where(AlertOutbox.__table__.c.id == row["id"]).values(status=mark))
        assert _enqueue(repo, f"1:{i + 10}:{person}") == "suppressed", mark


def test_zero_cooldown_never_suppresses(repo):
    for track in range(3):
        assert _enqueue(repo, f"1:{track}:alice", cooldown_s=0) == "pending"


def test_outbox_bound_drops_the_oldest_pending(repo, caplog):
    dropped: list[int] = []
    assert _enqueue(repo, "1:0:p0", outbox_max=2) == "pending"
    assert _enqueue(repo, "1:1:p0", outbox_max=2) == "suppressed"  # not counted as pending
    assert _enqueue(repo, "1:2:p1", outbox_max=2, on_dropped=dropped.append) == "pending"
    assert dropped == []
    with caplog.at_level(logging.WARNING, logger="cctv_id.store.alerts"):
        assert _enqueue(repo, "1:3:p2", outbox_max=2, on_dropped=dropped.append) == "pending"
    assert dropped == [1]
    assert "dropped the 1 oldest pending alert(s)" in caplog.text
    assert _statuses(repo) == {"1:0:p0": "dropped", "1:1:p0": "suppressed", "1:2:p1": "pending", "1:3:p2": "pending"}
    [drop] = repo.list_alerts("dropped")
    assert "outbox full" in drop["last_error"]
    # a smaller bound drops several at once, oldest first
    assert _enqueue(repo, "1:4:p3", outbox_max=1, on_dropped=dropped.append) == "pending"
    assert dropped == [1, 2]
    assert [a["dedup_key"] for a in repo.list_alerts("pending")] == ["1:4:p3"]


def test_enqueue_validates(repo):
    with pytest.raises(ValueError):
        _enqueue(repo, "  ")
    with pytest.raises(ValueError):
        _enqueue(repo, "k" * 256)
    with pytest.raises(ValueError):
        repo.enqueue_alert("k", "", "cam", {}, 1, 1)
    with pytest.raises(ValueError):
        repo.enqueue_alert("k", "p", "cam", {}, -1, 1)
    with pytest.raises(ValueError):
        repo.enqueue_alert("k", "p", "cam", {}, 1, 0)
    with pytest.raises(TypeError):
        repo.enqueue_alert("k", "p", "cam", ["not", "a", "dict"], 1, 1)
    with pytest.raises(TypeError, match="JSON"):
        repo.enqueue_alert("k", "p", "cam", {"at": datetime.now(timezone.utc)}, 1, 1)
    assert repo.count("alert_outbox") == 0


def test_concurrent_enqueues_of_one_person_give_one_alert(db_url):
    """Writers in separate connections (threads, as two daemons would be): the cooldown
    holds, and one dedup key is taken once."""
    Repository(db_url).close()
    n = 8
    barrier = threading.Barrier(n)
    results: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        r = Repository(db_url)
        try:
            barrier.wait()
            got = [_enqueue(r, f"{i}:1:alice"), _enqueue(r, "shared:1:bob")]
            with lock:
                results.extend(got)
        finally:
            r.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 2 * n
    repo = Repository(db_url)
    assert repo.alert_counts()["pending"] == 2  # one alice, one bob
    assert results.count("duplicate") == n - 1
    assert results.count("suppressed") == n - 1
    repo.close()


# ------------------------------------------------------------------ delivery bookkeeping


def test_due_alerts_oldest_first_only_pending_and_due(repo):
    for i in range(4):
        assert _enqueue(repo, f"1:{i}:p{i}") == "pending"
    _age(repo, "1:2:p2", 30)
    rows = repo.due_alerts(utcnow(), 10)
    assert [a["dedup_key"] for a in rows] == ["1:2:p2", "1:0:p0", "1:1:p1", "1:3:p3"]
    assert [a["dedup_key"] for a in repo.due_alerts(utcnow(), 2)] == ["1:2:p2", "1:0:p0"]
    assert repo.due_alerts(utcnow() - timedelta(seconds=10), 10)[0]["dedup_key"] == "1:2:p2"
    assert len(repo.due_alerts(utcnow() - timedelta(seconds=10), 10)) == 1
    retry = rows[1]["id"]
    assert repo.mark_alert_retry(retry, "HTTP 500", utcnow() + timedelta(hours=1))
    assert repo.mark_alert_sent(rows[2]["id"])
    assert [a["dedup_key"] for a in repo.due_alerts(utcnow(), 10)] == ["1:2:p2", "1:3:p3"]
    with pytest.raises(ValueError):
        repo.due_alerts(datetime(2024, 1, 1), 10)  # naive


def test_claim_is_taken_once_until_the_lease_passes(repo):
    assert _enqueue(repo, "1:1:alice") == "pending"
    [row] = repo.due_alerts(utcnow(), 10)
    now = utcnow()
    assert repo.claim_alert(row["id"], now, 30.0)
    assert not repo.claim_alert(row["id"], now, 30.0)  # another process: not due any more
    assert repo.due_alerts(now + timedelta(seconds=29), 10) == []
    later = now + timedelta(seconds=31)
    assert [a["id"] for a in repo.due_alerts(later, 10)] == [row["id"]]
    assert repo.claim_alert(row["id"], later, 30.0)  # the first claimant died: taken again
    assert repo.mark_alert_sent(row["id"])
    assert not repo.claim_alert(row["id"], later + timedelta(hours=1), 30.0)  # sent


def test_outcomes_and_attempts(repo):
    for i in range(3):
        assert _enqueue(repo, f"1:{i}:p{i}") == "pending"
    a, b, c = (r["id"] for r in repo.list_alerts())
    t = utcnow() + timedelta(seconds=5)
    assert repo.mark_alert_retry(a, "connection refused", t)
    assert repo.mark_alert_retry(a, "HTTP 503", t)
    assert repo.mark_alert_sent(a)
    assert not repo.mark_alert_sent(a)  # sent once: sent_at stays the first one
    assert not repo.mark_alert_retry(a, "late", t)  # no going back to pending
    assert repo.mark_alert_failed(b, "HTTP 500 Internal Server Error")
    assert not repo.mark_alert_failed(b, "again")
    assert not repo.mark_alert_sent(999_999)
    rows = {r["id"]: r for r in repo.list_alerts()}
    assert rows[a]["status"] == "sent" and rows[a]["attempts"] == 3 and rows[a]["last_error"] == "HTTP 503"
    assert rows[a]["sent_at"] is not None and rows[a]["sent_at"].tzinfo == timezone.utc
    assert rows[b]["status"] == "failed" and rows[b]["attempts"] == 1
    assert rows[b]["last_error"] == "HTTP 500 Internal Server Error"
    assert rows[c]["status"] == "pending" and rows[c]["attempts"] == 0
    # an alert dropped while its attempt ran, which then arrived, is recorded as sent
    with repo.engine.begin() as conn:
        conn.execute(update(AlertOutbox.__table__).where(AlertOutbox.__table__.c.id == c).values(status="dropped"))
    assert not repo.mark_alert_retry(c, "x", t)
    assert repo.mark_alert_sent(c)
    assert repo.alert_counts() == {"pending": 0, "sent": 2, "failed": 1, "dropped": 0, "suppressed": 0}


def test_counts_and_listing(repo):
    assert repo.alert_counts() == dict.fromkeys(ALERT_STATUSES, 0)
    assert repo.list_alerts() == []
    _enqueue(repo, "1:1:alice")
    _enqueue(repo, "1:2:alice")
    assert [a["dedup_key"] for a in repo.list_alerts("suppressed")] == ["1:2:alice"]
    assert [a["dedup_key"] for a in repo.list_alerts()] == ["1:1:alice", "1:2:alice"]
    with pytest.raises(ValueError):
        repo.list_alerts("bogus")
