"""The watcher's snapshot of SMSC's deferred tasks and the outcome it recorded for each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .alert_kinds import OUTCOME_KINDS, AlertKind
from .db import Connection, StorageError, from_db_time, locked, to_db_time, transaction

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


async def load_known_statuses(conn: Connection) -> dict[int, int]:
    """Return task id -> last stored status for every known task."""
    async with locked(conn):
        rows = await conn.execute_fetchall("SELECT id, status FROM tasks")
    return {int(task_id): int(status) for task_id, status in rows}


async def get_known_task(conn: Connection, task_id: int) -> KnownTask | None:
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


async def count_known_tasks(conn: Connection) -> int:
    """Return how many tasks are stored."""
    async with locked(conn), conn.execute("SELECT COUNT(*) FROM tasks") as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def baseline_done(conn: Connection) -> bool:
    """Tell whether the first poll has been recorded (so changes from now on are news)."""
    async with (
        locked(conn),
        conn.execute("SELECT 1 FROM state WHERE key = ?", (BASELINE_KEY,)) as cur,
    ):
        row = await cur.fetchone()
    return row is not None


async def _upsert_tasks(conn: Connection, tasks: Sequence[TaskSnapshot], when: str) -> None:
    """Store the tasks' status/name; call inside `transaction()` (record_poll does)."""
    # The WHERE on DO UPDATE skips rows whose status and name are unchanged: SQLite still looks
    # each id up, but writes (and journals) only what changed, so a steady 10,000-task poll
    # touches almost no pages. seen_at therefore means "since when it looks like this".
    await conn.executemany(
        "INSERT INTO tasks (id, status, name, seen_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET"
        "  status = excluded.status, name = excluded.name, seen_at = excluded.seen_at"
        # <> rather than IS NOT: both columns are NOT NULL, and <> is also PostgreSQL.
        " WHERE tasks.status <> excluded.status OR tasks.name <> excluded.name",
        [(int(t.id), int(t.status), t.name, when) for t in tasks],
    )


async def _mark_baseline(conn: Connection, when: str) -> None:
    """Record that the first poll happened (keeps the first time); call inside `transaction()`."""
    await conn.execute(
        "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING",
        (BASELINE_KEY, when, when),
    )


# --- outcomes: what the watcher concluded about each finished task (migration 0002) -----------

_CHUNK = 500  # ids per IN (...): well under SQLite's oldest limit of 999 parameters


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """A task's first final status, and whether an alert was queued for it."""

    task_id: int
    kind: AlertKind  # one of OUTCOME_KINDS
    alerted: bool


async def load_finished_ids(conn: Connection) -> set[int]:
    """Return the ids of every task whose outcome is recorded (they never alert again)."""
    async with locked(conn):
        rows = await conn.execute_fetchall("SELECT task_id FROM task_outcomes")
    return {int(row[0]) for row in rows}


async def get_outcome(conn: Connection, task_id: int) -> TaskOutcome | None:
    """Return the recorded outcome of a task, or None while it has none."""
    async with (
        locked(conn),
        conn.execute(
            "SELECT task_id, kind, alerted FROM task_outcomes WHERE task_id = ?", (task_id,)
        ) as cur,
    ):
        row = await cur.fetchone()
    if row is None:
        return None
    kind = str(row[1])
    if kind not in OUTCOME_KINDS:
        raise StorageError(f"unknown outcome kind {kind!r} in the database")
    return TaskOutcome(int(row[0]), AlertKind(kind), bool(row[2]))


async def record_outcomes(
    conn: Connection, outcomes: Sequence[TaskOutcome], now: datetime
) -> set[int]:
    """Record first outcomes; return the task ids that were new (an alert may go only to those).

    A task that already has an outcome keeps it: the database, not the caller's memory, has the
    last word on "never twice", so a stale snapshot cannot queue a second alert.
    """
    when = to_db_time(now)
    ids = list(dict.fromkeys(o.task_id for o in outcomes))
    async with transaction(conn):
        # Which already have one, read inside the write transaction (so nothing can slip in
        # between); then one executemany: a 10,000-task baseline costs a few statements, not
        # 10,000 round trips to the database thread.
        existing: set[int] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = await conn.execute_fetchall(
                f"SELECT task_id FROM task_outcomes WHERE task_id IN ({marks})",  # noqa: S608 - only "?"s
                chunk,
            )
            existing.update(int(row[0]) for row in rows)
        new: dict[int, TaskOutcome] = {}
        for outcome in outcomes:
            if outcome.task_id not in existing and outcome.task_id not in new:
                new[outcome.task_id] = outcome
        await conn.executemany(
            "INSERT INTO task_outcomes (task_id, kind, alerted, recorded_at) VALUES (?, ?, ?, ?)",
            [(o.task_id, o.kind, int(o.alerted), when) for o in new.values()],
        )
    return set(new)
