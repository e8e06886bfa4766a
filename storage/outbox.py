"""The alert outbox: detection and its deliveries are committed together, then sent.

`record_poll` writes a poll's task statuses, the alerts they imply and one pending delivery per
subscriber in ONE transaction, before anything is sent. The delivery loop then takes
`due_deliveries`, sends each and marks it right after the send (`mark_delivered`), or schedules
a retry (`mark_retry`) or gives up (`mark_dropped`). After a crash the same rows are simply
due again; only a crash between Telegram accepting a message and `mark_delivered` committing
can repeat one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .alert_kinds import AlertKind, DeliveryState
from .db import Database, StorageError
from .encoding import from_db_time, thread_from_db, to_db_time
from .tasks import TaskSnapshot, _mark_baseline, _upsert_tasks

ALERT_KINDS: frozenset[str] = frozenset(AlertKind)

# Telegram error texts can embed whole responses; the row only needs enough to diagnose.
_MAX_ERROR_CHARS = 2000

__all__ = [
    "ALERT_KINDS",
    "AlertKind",
    "DeliveryState",
    "NewAlert",
    "PendingDelivery",
    "TaskSnapshot",
    "awaiting_files",
    "count_pending",
    "count_pending_for_alert",
    "due_deliveries",
    "mark_delivered",
    "mark_dropped",
    "mark_retry",
    "next_due_at",
    "prune_delivered",
    "record_poll",
]


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An event to announce; `payload` must be JSON-serialisable (it is stored as JSON).

    `bot.alerts.model` makes these from typed alerts and reads `PendingDelivery.payload` back.
    """

    kind: AlertKind
    task_id: int | None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """One alert owed to one chat/topic; `created_at` is when the alert was detected."""

    delivery_id: int
    alert_id: int
    kind: AlertKind
    task_id: int | None
    payload: dict[str, Any]
    chat_id: int
    thread_id: int | None
    attempts: int  # failed attempts so far
    created_at: datetime


def _as_kind(value: str) -> AlertKind:
    if value not in ALERT_KINDS:
        raise StorageError(f"unknown alert kind {value!r} in the database")
    return AlertKind(value)


def _error_text(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


async def record_poll(
    db: Database,
    *,
    tasks: Sequence[TaskSnapshot],
    alerts: Sequence[NewAlert],
    now: datetime,
    mark_baseline: bool = True,
) -> list[int]:
    """Store a poll's tasks, its alerts and their deliveries in one transaction; return alert ids.

    Each alert gets one pending delivery per subscription that exists at this moment. Nothing
    is written if anything fails (e.g. a payload that is not JSON-serialisable).
    """
    when = to_db_time(now)
    alert_ids: list[int] = []
    async with db.transaction():
        if tasks:
            await _upsert_tasks(db, tasks, when)
        if mark_baseline:
            await _mark_baseline(db, when)
        for alert in alerts:
            if alert.kind not in ALERT_KINDS:
                raise ValueError(f"unknown alert kind {alert.kind!r}")
            # allow_nan=False: NaN/Infinity are not JSON and would not load anywhere else.
            payload = json.dumps(alert.payload, ensure_ascii=False, allow_nan=False)
            # RETURNING, not lastrowid: PostgreSQL has no lastrowid (SQLite >= 3.35 has both).
            async with db.execute(
                "INSERT INTO alerts (kind, task_id, payload, created_at) VALUES (?, ?, ?, ?)"
                " RETURNING id",
                (alert.kind, alert.task_id, payload, when),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                raise StorageError("INSERT INTO alerts returned no row id")
            alert_id = int(row["id"])
            # The fan-out reads subscriptions inside the same transaction: exactly the chats
            # subscribed at detection time, and a concurrent /subscribe cannot half-see it.
            await db.execute(
                "INSERT INTO deliveries (alert_id, chat_id, thread_id, next_attempt_at, created_at)"
                # CAST: PostgreSQL cannot infer a bare select-list parameter's type.
                " SELECT CAST(? AS BIGINT), chat_id, thread_id, ?, ? FROM subscriptions",
                (alert_id, when, when),
            )
            alert_ids.append(alert_id)
    return alert_ids


async def due_deliveries(db: Database, now: datetime, limit: int = 100) -> list[PendingDelivery]:
    """Return pending deliveries due at `now`: oldest alert first, then by chat and topic."""
    async with db.locked():
        rows = await db.execute_fetchall(
            "SELECT d.id, d.alert_id, a.kind, a.task_id, a.payload, d.chat_id, d.thread_id,"
            "       d.attempts, a.created_at"
            " FROM deliveries AS d JOIN alerts AS a ON a.id = d.alert_id"
            " WHERE d.state = 'pending' AND d.next_attempt_at <= ?"
            " ORDER BY d.alert_id, d.chat_id, d.thread_id"
            " LIMIT ?",
            (to_db_time(now), limit),
        )
    result: list[PendingDelivery] = []
    for row in rows:
        payload = json.loads(row["payload"])
        if not isinstance(payload, dict):
            raise StorageError(f"alert {row['alert_id']} has a payload that is not a JSON object")
        result.append(
            PendingDelivery(
                delivery_id=int(row["id"]),
                alert_id=int(row["alert_id"]),
                kind=_as_kind(row["kind"]),
                task_id=None if row["task_id"] is None else int(row["task_id"]),
                payload=payload,
                chat_id=int(row["chat_id"]),
                thread_id=thread_from_db(int(row["thread_id"])),
                attempts=int(row["attempts"]),
                created_at=from_db_time(row["created_at"]),
            )
        )
    return result


async def next_due_at(db: Database) -> datetime | None:
    """Return the earliest next attempt among pending deliveries, or None if none is pending."""
    async with (
        db.locked(),
        db.execute(
            "SELECT MIN(next_attempt_at) AS due FROM deliveries WHERE state = 'pending'"
        ) as cur,
    ):
        row = await cur.fetchone()
    if row is None or row["due"] is None:
        return None
    return from_db_time(row["due"])


async def mark_delivered(
    db: Database, delivery_id: int, now: datetime, *, message_id: int | None = None
) -> bool:
    """Record that the delivery was sent (committed at once); return False if already delivered.

    A delivery dropped while its send was in flight (e.g. the chat was removed) is still marked
    delivered: the message did go out.
    """
    async with db.transaction():
        cur = await db.execute(
            "UPDATE deliveries SET state = 'delivered', finished_at = ?, message_id = ?"
            " WHERE id = ? AND state <> 'delivered'",
            (to_db_time(now), message_id, delivery_id),
        )
        return cur.rowcount > 0


async def mark_retry(
    db: Database, delivery_id: int, *, error: str, next_attempt_at: datetime
) -> bool:
    """Count a failed attempt and schedule the next; return False if it is no longer pending."""
    async with db.transaction():
        cur = await db.execute(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
            " WHERE id = ? AND state = 'pending'",
            (_error_text(error), to_db_time(next_attempt_at), delivery_id),
        )
        return cur.rowcount > 0


async def mark_dropped(db: Database, delivery_id: int, *, reason: str, now: datetime) -> bool:
    """Give up on a pending delivery (chat gone, too many attempts); return False if not pending."""
    async with db.transaction():
        cur = await db.execute(
            "UPDATE deliveries SET state = 'dropped', last_error = ?, finished_at = ?"
            " WHERE id = ? AND state = 'pending'",
            (_error_text(reason), to_db_time(now), delivery_id),
        )
        return cur.rowcount > 0


async def count_pending(db: Database) -> int:
    """Return how many deliveries are still to be sent."""
    async with (
        db.locked(),
        db.execute("SELECT COUNT(*) AS n FROM deliveries WHERE state = 'pending'") as cur,
    ):
        row = await cur.fetchone()
    return 0 if row is None else int(row["n"])


async def count_pending_for_alert(db: Database, alert_id: int) -> int:
    """Return how many of the alert's deliveries are still to be sent."""
    async with (
        db.locked(),
        db.execute(
            "SELECT COUNT(*) AS n FROM deliveries WHERE alert_id = ? AND state = 'pending'",
            (alert_id,),
        ) as cur,
    ):
        row = await cur.fetchone()
    return 0 if row is None else int(row["n"])


async def awaiting_files(db: Database) -> set[int]:
    """Return the tasks whose completion alert still has deliveries to send (their file is kept)."""
    async with db.locked():
        rows = await db.execute_fetchall(
            "SELECT DISTINCT a.task_id FROM alerts AS a JOIN deliveries AS d ON d.alert_id = a.id"
            " WHERE a.kind = 'completed' AND d.state = 'pending' AND a.task_id IS NOT NULL"
        )
    return {int(row["task_id"]) for row in rows}


async def prune_delivered(db: Database, older_than: datetime) -> int:
    """Delete deliveries finished before `older_than` and alerts left without any; return rows.

    The count is deliveries plus alerts deleted. Pending deliveries are never touched, and an
    alert is kept while any of its deliveries remains.
    """
    cutoff = to_db_time(older_than)
    async with db.transaction():
        cur = await db.execute(
            "DELETE FROM deliveries WHERE state <> 'pending' AND finished_at < ?", (cutoff,)
        )
        deleted = cur.rowcount
        # created_at bound: a brand-new alert whose subscribers list was empty has no
        # deliveries either, and is history worth keeping as long as any other.
        cur = await db.execute(
            "DELETE FROM alerts WHERE created_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.alert_id = alerts.id)",
            (cutoff,),
        )
        deleted += cur.rowcount
    return deleted
