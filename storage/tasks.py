"""The watcher's snapshot of SMSC's deferred tasks (written by `outbox.record_poll`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from .db import from_db_time, locked

# Key in the state table; its value is when the first poll was recorded.
BASELINE_KEY = "tasks.baseline_at"


@dataclass(frozen=True, slots=True)
class TaskSnapshot:
    """A task as the latest poll saw it: what `record_poll` stores."""

    id: int
    status: int
    name: str


@dataclass(frozen=True, slots=True)
class KnownTask:
    """A stored task; `seen_at` is when its current status/name was first recorded."""

    id: int
    status: int
    name: str
    seen_at: datetime


async def load_known_statuses(conn: aiosqlite.Connection) -> dict[int, int]:
    """Return task id -> last stored status for every known task."""
    async with locked(conn):
        rows = await conn.execute_fetchall("SELECT id, status FROM tasks")
    return {int(task_id): int(status) for task_id, status in rows}


async def get_known_task(conn: aiosqlite.Connection, task_id: int) -> KnownTask | None:
    """Return the stored task, or None if no poll has seen it."""
    async with (
        locked(conn),
        conn.execute("SELECT id, status, name, seen_at FROM tasks WHERE id = ?", (task_id,)) as cur,
    ):
        row = await cur.fetchone()
    if row is None:
        return None
    return KnownTask(
        id=int(row[0]), status=int(row[1]), name=str(row[2]), seen_at=from_db_time(row[3])
    )


async def count_known_tasks(conn: aiosqlite.Connection) -> int:
    """Return how many tasks are stored."""
    async with locked(conn), conn.execute("SELECT COUNT(*) FROM tasks") as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def baseline_done(conn: aiosqlite.Connection) -> bool:
    """Tell whether the first poll has been recorded (so changes from now on are news)."""
    async with (
        locked(conn),
        conn.execute("SELECT 1 FROM state WHERE key = ?", (BASELINE_KEY,)) as cur,
    ):
        row = await cur.fetchone()
    return row is not None


async def _upsert_tasks(
    conn: aiosqlite.Connection, tasks: Sequence[TaskSnapshot], when: str
) -> None:
    """Store the tasks' status/name; call inside `transaction()` (record_poll does)."""
    # The WHERE on DO UPDATE skips rows whose status and name are unchanged: SQLite still looks
    # each id up, but writes (and journals) only what changed, so a steady 10,000-task poll
    # touches almost no pages. seen_at therefore means "since when it looks like this".
    await conn.executemany(
        "INSERT INTO tasks (id, status, name, seen_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET"
        "  status = excluded.status, name = excluded.name, seen_at = excluded.seen_at"
        " WHERE tasks.status IS NOT excluded.status OR tasks.name IS NOT excluded.name",
        [(int(t.id), int(t.status), t.name, when) for t in tasks],
    )


async def _mark_baseline(conn: aiosqlite.Connection, when: str) -> None:
    """Record that the first poll happened (keeps the first time); call inside `transaction()`."""
    await conn.execute(
        "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING",
        (BASELINE_KEY, when, when),
    )
