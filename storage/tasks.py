"""The watcher's snapshot of SMSC's deferred tasks and the outcome it recorded for each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .alert_kinds import OUTCOME_KINDS, AlertKind
from .db import Database, StorageError
from .encoding import to_db_time

# Key in the state table; its value is when the first poll was recorded.
BASELINE_KEY = "tasks.baseline_at"


@dataclass(frozen=True, slots=True)
class TaskSnapshot:
    """A task as the latest poll saw it: what `record_poll` stores."""

    id: int
    status: int
    name: str


async def load_known_statuses(db: Database) -> dict[int, int]:
    """Return task id -> last stored status for every known task."""
    async with db.locked():
        rows = await db.execute_fetchall("SELECT id, status FROM tasks")
    return {int(row["id"]): int(row["status"]) for row in rows}


async def baseline_done(db: Database) -> bool:
    """Tell whether the first poll has been recorded (so changes from now on are news)."""
    async with (
        db.locked(),
        db.execute("SELECT 1 FROM state WHERE key = ?", (BASELINE_KEY,)) as cur,
    ):
        row = await cur.fetchone()
    return row is not None


async def _upsert_tasks(db: Database, tasks: Sequence[TaskSnapshot], when: str) -> None:
    """Store the tasks' status/name; call inside `transaction()` (record_poll does)."""
    # The WHERE on DO UPDATE skips rows whose status and name are unchanged: SQLite still looks
    # each id up, but writes (and journals) only what changed, so a steady 10,000-task poll
    # touches almost no pages. seen_at therefore means "since when it looks like this".
    await db.executemany(
        "INSERT INTO tasks (id, status, name, seen_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET"
        "  status = excluded.status, name = excluded.name, seen_at = excluded.seen_at"
        # <> rather than IS NOT: both columns are NOT NULL, and <> is also PostgreSQL.
        " WHERE tasks.status <> excluded.status OR tasks.name <> excluded.name",
        [(int(t.id), int(t.status), t.name, when) for t in tasks],
    )


async def _mark_baseline(db: Database, when: str) -> None:
    """Record that the first poll happened (keeps the first time); call inside `transaction()`."""
    await db.execute(
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


async def load_finished_ids(db: Database) -> set[int]:
    """Return the ids of every task whose outcome is recorded (they never alert again)."""
    async with db.locked():
        rows = await db.execute_fetchall("SELECT task_id FROM task_outcomes")
    return {int(row["task_id"]) for row in rows}


async def get_outcome(db: Database, task_id: int) -> TaskOutcome | None:
    """Return the recorded outcome of a task, or None while it has none."""
    async with (
        db.locked(),
        db.execute(
            "SELECT task_id, kind, alerted FROM task_outcomes WHERE task_id = ?", (task_id,)
        ) as cur,
    ):
        row = await cur.fetchone()
    if row is None:
        return None
    kind = str(row["kind"])
    if kind not in OUTCOME_KINDS:
        raise StorageError(f"unknown outcome kind {kind!r} in the database")
    return TaskOutcome(int(row["task_id"]), AlertKind(kind), bool(row["alerted"]))


async def record_outcomes(db: Database, outcomes: Sequence[TaskOutcome], now: datetime) -> set[int]:
    """Record first outcomes; return the task ids that were new (an alert may go only to those).

    A task that already has an outcome keeps it: the database, not the caller's memory, has the
    last word on "never twice", so a stale snapshot cannot queue a second alert.
    """
    when = to_db_time(now)
    ids = list(dict.fromkeys(o.task_id for o in outcomes))
    async with db.transaction():
        # Which already have one, read inside the write transaction (so nothing can slip in
        # between); then one executemany: a 10,000-task baseline costs a few statements, not
        # 10,000 round trips to the database thread.
        existing: set[int] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = await db.execute_fetchall(
                f"SELECT task_id FROM task_outcomes WHERE task_id IN ({marks})",  # noqa: S608 - only "?"s
                chunk,
            )
            existing.update(int(row["task_id"]) for row in rows)
        new: dict[int, TaskOutcome] = {}
        for outcome in outcomes:
            if outcome.task_id not in existing and outcome.task_id not in new:
                new[outcome.task_id] = outcome
        await db.executemany(
            "INSERT INTO task_outcomes (task_id, kind, alerted, recorded_at) VALUES (?, ?, ?, ?)",
            [(o.task_id, o.kind, int(o.alerted), when) for o in new.values()],
        )
    return set(new)
