"""storage.outbox: record_poll atomicity and fan-out, the delivery lifecycle, pruning."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from storage import (
    Database,
    NewAlert,
    TaskSnapshot,
    baseline_done,
    count_pending,
    due_deliveries,
    load_known_statuses,
    mark_delivered,
    mark_dropped,
    mark_retry,
    next_due_at,
    open_database,
    prune_delivered,
    record_poll,
    subscribe,
)
from storage.outbox import awaiting_files, count_pending_for_alert
from tests.fakes.storage_support import T0, at, outbox_stats


async def _count(db: Database, table: str) -> int:
    async with db.execute(f"SELECT COUNT(*) FROM {table}") as cur:  # noqa: S608 - test constant
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _alert(db: Database, kind: Any, task_id: int | None, when: datetime) -> int:
    (alert_id,) = await record_poll(
        db, tasks=[], alerts=[NewAlert(kind, task_id, {"task": task_id})], now=when
    )
    return alert_id


# --- record_poll --------------------------------------------------------------------------------


async def test_record_poll_stores_tasks_alerts_and_one_delivery_per_subscriber(
    db: Database,
) -> None:
    await subscribe(db, 10, None, T0)
    await subscribe(db, 20, 4, T0)
    assert not await baseline_done(db)

    ids = await record_poll(
        db,
        tasks=[TaskSnapshot(1, 2, "export"), TaskSnapshot(2, 1, "other")],
        alerts=[
            NewAlert("completed", 1, {"name": "export", "file": "a.csv", "rows": [1, 2]}),
            NewAlert("smsc_problem", None, {"error": "HTTP 502"}),
        ],
        now=T0,
    )
    assert len(ids) == 2
    assert ids[0] < ids[1]
    assert await baseline_done(db)
    assert await load_known_statuses(db) == {1: 2, 2: 1}

    due = await due_deliveries(db, T0)
    assert [(d.alert_id, d.kind, d.task_id, d.chat_id, d.thread_id) for d in due] == [
        (ids[0], "completed", 1, 10, None),
        (ids[0], "completed", 1, 20, 4),
        (ids[1], "smsc_problem", None, 10, None),
        (ids[1], "smsc_problem", None, 20, 4),
    ]
    assert due[0].payload == {"name": "export", "file": "a.csv", "rows": [1, 2]}
    assert due[2].payload == {"error": "HTTP 502"}
    assert all(d.attempts == 0 and d.created_at == T0 for d in due)


async def test_record_poll_without_alerts_or_baseline(db: Database) -> None:
    assert await record_poll(db, tasks=[], alerts=[], now=T0, mark_baseline=False) == []
    assert not await baseline_done(db)
    assert await record_poll(db, tasks=[TaskSnapshot(1, 0, "x")], alerts=[], now=T0) == []
    assert await baseline_done(db)


async def test_deliveries_go_to_subscribers_at_detection_time(db: Database) -> None:
    await subscribe(db, 10, None, T0)
    first = await _alert(db, "completed", 1, at(1))
    await subscribe(db, 20, None, at(2))  # too late for the first alert
    second = await _alert(db, "failed", 2, at(3))
    nobody = await record_poll(db, tasks=[], alerts=[], now=at(4))
    assert nobody == []

    due = await due_deliveries(db, at(5))
    assert [(d.alert_id, d.chat_id) for d in due] == [(first, 10), (second, 10), (second, 20)]


async def test_alert_with_no_subscribers_is_stored_without_deliveries(
    db: Database,
) -> None:
    await _alert(db, "canceled", 1, T0)
    assert await _count(db, "alerts") == 1
    assert await count_pending(db) == 0
    assert await next_due_at(db) is None


class _NotJson:
    pass


@pytest.mark.parametrize(
    ("bad_alert", "error"),
    [
        (NewAlert("failed", 2, {"obj": _NotJson()}), TypeError),
        (NewAlert("failed", 2, {"when": T0}), TypeError),  # datetimes must be rendered first
        (NewAlert("failed", 2, {"ratio": math.nan}), ValueError),
        (NewAlert("exploded", 2, {}), ValueError),  # type: ignore[arg-type]
    ],
)
async def test_record_poll_is_all_or_nothing(
    db: Database, bad_alert: NewAlert, error: type[Exception]
) -> None:
    await subscribe(db, 10, None, T0)
    await record_poll(db, tasks=[TaskSnapshot(1, 1, "a")], alerts=[], now=T0, mark_baseline=False)

    # The good alert and the task updates are written before the bad alert fails.
    with pytest.raises(error):
        await record_poll(
            db,
            tasks=[TaskSnapshot(1, 2, "a"), TaskSnapshot(2, 4, "b")],
            alerts=[NewAlert("completed", 1, {"ok": True}), bad_alert],
            now=at(1),
        )
    assert await load_known_statuses(db) == {1: 1}
    assert not await baseline_done(db)
    assert await _count(db, "alerts") == 0
    assert await _count(db, "deliveries") == 0
    assert not db.in_transaction


@pytest.mark.sqlite_only  # a SQLite trigger makes the failure
async def test_record_poll_rolls_back_when_sqlite_fails_mid_way(db: Database) -> None:
    # A trigger makes the deliveries INSERT of the second alert fail inside SQLite itself.
    await db.execute(
        "CREATE TRIGGER fail_on_second AFTER INSERT ON deliveries WHEN NEW.alert_id > 1"
        " BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    )
    await subscribe(db, 10, None, T0)
    with pytest.raises(aiosqlite.IntegrityError, match="disk on fire"):
        await record_poll(
            db,
            tasks=[TaskSnapshot(n, 2, f"t{n}") for n in range(100)],
            alerts=[NewAlert("completed", 1, {}), NewAlert("completed", 2, {})],
            now=T0,
        )
    assert await load_known_statuses(db) == {}
    assert not await baseline_done(db)
    assert await _count(db, "alerts") == 0
    assert await count_pending(db) == 0


async def test_record_poll_on_a_closed_connection_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    conn = await open_database(path, now=T0)
    await subscribe(conn, 10, None, T0)
    await conn.close()
    with pytest.raises(ValueError, match="connection"):
        await record_poll(
            conn, tasks=[TaskSnapshot(1, 2, "a")], alerts=[NewAlert("completed", 1, {})], now=T0
        )
    conn = await open_database(path, now=T0)
    try:
        assert await load_known_statuses(conn) == {}
        assert await outbox_stats(conn) == {
            "pending": 0,
            "retrying": 0,
            "delivered": 0,
            "dropped": 0,
        }
    finally:
        await conn.close()


async def test_crash_before_delivery_leaves_the_same_deliveries_due(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    conn = await open_database(path, now=T0)
    await subscribe(conn, 10, None, T0)
    await subscribe(conn, 20, None, T0)
    await record_poll(
        conn,
        tasks=[TaskSnapshot(1, 2, "a")],
        alerts=[NewAlert("completed", 1, {"n": 1})],
        now=T0,
    )
    before = await due_deliveries(conn, T0)
    await conn.close()  # "crash": nothing was sent or marked

    conn = await open_database(path, now=T0)
    try:
        after = await due_deliveries(conn, at(1))
        assert after == before
        assert len(after) == 2
        assert (await outbox_stats(conn))["delivered"] == 0
    finally:
        await conn.close()


# --- the delivery lifecycle ---------------------------------------------------------------------


async def test_due_order_is_oldest_alert_then_chat_then_topic(db: Database) -> None:
    for chat, thread in [(30, None), (10, 9), (10, None), (20, 2)]:
        await subscribe(db, chat, thread, T0)
    a1 = await _alert(db, "completed", 1, at(1))
    a2 = await _alert(db, "failed", 2, at(2))

    due = await due_deliveries(db, at(2))
    expected = [(a, c, t) for a in (a1, a2) for c, t in [(10, None), (10, 9), (20, 2), (30, None)]]
    assert [(d.alert_id, d.chat_id, d.thread_id) for d in due] == expected
    assert [(d.alert_id, d.chat_id) for d in await due_deliveries(db, at(2), limit=3)] == [
        (a1, 10),
        (a1, 10),
        (a1, 20),
    ]


async def test_retry_delivered_dropped_and_next_due(db: Database) -> None:
    await subscribe(db, 10, None, T0)
    await subscribe(db, 20, None, T0)
    await subscribe(db, 30, None, T0)
    await _alert(db, "completed", 1, T0)
    d10, d20, d30 = await due_deliveries(db, T0)
    assert await next_due_at(db) == T0

    assert await mark_delivered(db, d10.delivery_id, at(0.1), message_id=555)
    assert await mark_retry(db, d20.delivery_id, error="timed out", next_attempt_at=at(5))
    assert await mark_retry(db, d30.delivery_id, error="429", next_attempt_at=at(1.5))
    assert await next_due_at(db) == at(1.5)
    assert await due_deliveries(db, at(1)) == []
    assert [(d.chat_id, d.attempts) for d in await due_deliveries(db, at(1.5))] == [(30, 1)]
    assert [d.chat_id for d in await due_deliveries(db, at(5))] == [20, 30]

    assert await mark_retry(db, d30.delivery_id, error="429 again", next_attempt_at=at(10))
    assert await mark_dropped(db, d20.delivery_id, reason="too many attempts", now=at(5))
    assert await next_due_at(db) == at(10)
    assert [(d.chat_id, d.attempts) for d in await due_deliveries(db, at(10))] == [(30, 2)]
    assert await outbox_stats(db) == {"pending": 1, "retrying": 1, "delivered": 1, "dropped": 1}

    assert await mark_delivered(db, d30.delivery_id, at(10))
    assert await next_due_at(db) is None
    assert await count_pending(db) == 0
    assert await outbox_stats(db) == {"pending": 0, "retrying": 0, "delivered": 2, "dropped": 1}

    rows = await db.execute_fetchall(
        "SELECT chat_id, state, attempts, last_error, message_id FROM deliveries ORDER BY chat_id"
    )
    assert [tuple(r) for r in rows] == [
        (10, "delivered", 0, None, 555),
        (20, "dropped", 1, "too many attempts", None),
        (30, "delivered", 2, "429 again", None),
    ]


@pytest.mark.parametrize(
    ("first", "then", "expected"),
    [
        ("delivered", "delivered", False),  # a second mark is a no-op
        ("delivered", "retry", False),  # a sent alert is never rescheduled
        ("delivered", "dropped", False),
        ("dropped", "retry", False),  # nor revived once given up
        ("dropped", "dropped", False),
        ("dropped", "delivered", True),  # dropped while the send was in flight: it did go out
        ("retry", "delivered", True),
    ],
)
async def test_marks_only_apply_where_they_make_sense(
    db: Database, first: str, then: str, expected: bool
) -> None:
    await subscribe(db, 10, None, T0)
    await _alert(db, "completed", 1, T0)
    (delivery,) = await due_deliveries(db, T0)

    async def mark(how: str) -> bool:
        if how == "delivered":
            return await mark_delivered(db, delivery.delivery_id, at(1))
        if how == "retry":
            return await mark_retry(db, delivery.delivery_id, error="x", next_attempt_at=at(2))
        return await mark_dropped(db, delivery.delivery_id, reason="x", now=at(1))

    assert await mark(first) is True
    assert await mark(then) is expected


async def test_marks_on_unknown_delivery_are_no_ops(db: Database) -> None:
    assert await mark_delivered(db, 999, T0) is False
    assert await mark_retry(db, 999, error="x", next_attempt_at=T0) is False
    assert await mark_dropped(db, 999, reason="x", now=T0) is False


async def test_long_errors_are_truncated(db: Database) -> None:
    await subscribe(db, 10, None, T0)
    await _alert(db, "completed", 1, T0)
    (delivery,) = await due_deliveries(db, T0)
    await mark_retry(db, delivery.delivery_id, error="x" * 100_000, next_attempt_at=at(1))
    rows = list(await db.execute_fetchall("SELECT length(last_error) FROM deliveries"))
    assert rows[0][0] == 2000


# --- pruning ------------------------------------------------------------------------------------


async def test_prune_delivered_keeps_pending_and_recent(db: Database) -> None:
    orphan = await _alert(db, "smsc_problem", None, at(0))  # nobody subscribed yet
    await subscribe(db, 10, None, T0)
    await subscribe(db, 20, None, T0)
    old = await _alert(db, "completed", 1, at(0))  # 10 delivered, 20 dropped: prunable
    mixed = await _alert(db, "completed", 2, at(0))  # 10 delivered, 20 still pending
    recent = await _alert(db, "completed", 3, at(0))  # both delivered, but only just now
    due = {(d.alert_id, d.chat_id): d.delivery_id for d in await due_deliveries(db, T0)}
    await mark_delivered(db, due[old, 10], at(1))
    await mark_dropped(db, due[old, 20], reason="blocked", now=at(1))
    await mark_delivered(db, due[mixed, 10], at(1))
    await mark_delivered(db, due[recent, 10], at(100))
    await mark_delivered(db, due[recent, 20], at(100))

    # deliveries: old x2 + mixed/10; alerts: old, orphan.
    assert await prune_delivered(db, older_than=at(50)) == 5
    assert orphan < old
    remaining = await db.execute_fetchall("SELECT id FROM alerts ORDER BY id")
    assert [r[0] for r in remaining] == [mixed, recent]
    assert [(d.alert_id, d.chat_id) for d in await due_deliveries(db, at(200))] == [(mixed, 20)]
    assert await outbox_stats(db) == {"pending": 1, "retrying": 0, "delivered": 2, "dropped": 0}
    assert await prune_delivered(db, older_than=at(50)) == 0


# --- what the delivery loop keeps for an alert ---------------------------------------------------


async def test_pending_per_alert_and_the_tasks_whose_file_is_still_needed(
    db: Database,
) -> None:
    await subscribe(db, 10, None, T0)
    await subscribe(db, 20, None, T0)
    done = await _alert(db, "completed", 7, T0)
    failed = await _alert(db, "failed", 8, T0)
    await _alert(db, "smsc_problem", None, T0)
    assert await count_pending_for_alert(db, done) == 2
    assert await awaiting_files(db) == {7}  # completions only: their CSV is kept
    first, second = [d for d in await due_deliveries(db, T0) if d.alert_id == done]
    await mark_delivered(db, first.delivery_id, at(1))
    assert await count_pending_for_alert(db, done) == 1
    await mark_dropped(db, second.delivery_id, reason="chat gone", now=at(1))
    assert await count_pending_for_alert(db, done) == 0
    assert await awaiting_files(db) == set()
    assert await count_pending_for_alert(db, failed) == 2
    assert await count_pending_for_alert(db, 999_999) == 0
