"""What the storage tests share: a fixed start time and a real database per test, on both engines.

`db` is parametrised: every test using it runs on SQLite (a file in tmp_path) and on PostgreSQL
(its own schema in the session's throwaway cluster, tests/fakes/pg_support.py). A test about SQLite
itself (pragmas, triggers, the file) is marked `sqlite_only` and runs once.

Also the few reads only tests need (no user or operator asks them): the outbox's counts by
delivery state, whether one chat/topic is subscribed, a stored task's row; and a failure alert
as the watcher writes it, for tests that seed an outbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage import (
    Database,
    DeliveryState,
    NewAlert,
    list_subscriptions,
    open_database,
    open_postgres,
)
from storage.encoding import from_db_time, thread_to_db
from tests.fakes.pg_support import PgServer, drop_schema, new_schema

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """T0 plus some minutes."""
    return T0 + timedelta(minutes=minutes)


ENGINES = ["sqlite", "postgresql"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of tests that only make sense on SQLite."""
    config.addinivalue_line("markers", "sqlite_only: the test is about SQLite itself")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the PostgreSQL case of `sqlite_only` tests (rather than skipping it)."""
    del config
    items[:] = [
        item
        for item in items
        if not (item.get_closest_marker("sqlite_only") and "[postgresql" in item.name)
    ]


@pytest.fixture(params=ENGINES)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh, migrated database: a SQLite file in tmp_path, or a PostgreSQL schema."""
    conn: Database
    if request.param == "postgresql":
        server: PgServer = request.getfixturevalue("pg_server")
        schema = await new_schema(server)
        conn = await open_postgres(server.schema_url(schema), now=T0)
        try:
            yield conn
        finally:
            await conn.close()
            await drop_schema(server, schema)
        return
    conn = await open_database(tmp_path / "bot.sqlite3", now=T0)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def engine(db: Database) -> str:
    """Which engine `db` is ("sqlite" or "postgresql")."""
    return "postgresql" if db.is_postgres else "sqlite"


async def outbox_stats(db: Database) -> dict[str, int]:
    """Delivery counts: pending, retrying (pending after a failure), delivered, dropped."""
    stats = {str(state): 0 for state in DeliveryState} | {"retrying": 0}
    async with db.locked():
        rows = await db.execute_fetchall(
            "SELECT state, COUNT(*) AS n, SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END) AS failed"
            " FROM deliveries GROUP BY state"
        )
    for row in rows:
        stats[str(row["state"])] = int(row["n"])
        if row["state"] == DeliveryState.PENDING:
            stats["retrying"] = int(row["failed"] or 0)
    return stats


async def is_subscribed(db: Database, chat_id: int, thread_id: int | None) -> bool:
    """Whether the chat/topic is subscribed (compared as stored: no topic is 0)."""
    key = (chat_id, thread_to_db(thread_id))
    return any((s.chat_id, thread_to_db(s.thread_id)) == key for s in await list_subscriptions(db))


@dataclass(frozen=True, slots=True)
class KnownTask:
    """A stored task; `seen_at` is when its current status/name was first recorded."""

    id: int
    status: int
    name: str
    seen_at: datetime


async def get_known_task(db: Database, task_id: int) -> KnownTask | None:
    """The stored task, or None if no poll has seen it."""
    async with db.locked():
        rows = await db.execute_fetchall(
            "SELECT id, status, name, seen_at FROM tasks WHERE id = ?", (task_id,)
        )
    if not rows:
        return None
    row = rows[0]
    seen_at = from_db_time(row["seen_at"])
    return KnownTask(int(row["id"]), int(row["status"]), str(row["name"]), seen_at)


def failed_alert(task_id: int, name: str, detected_at: datetime) -> NewAlert:
    """A "failed" alert for a task, with the payload the watcher records after a poll."""
    task = {
        "id": task_id,
        "name": name,
        "status": 4,
        "created_raw": "",
        "time_raw": "",
        "created": None,
        "time": None,
        "file": "",
    }
    return NewAlert(
        kind="failed",
        task_id=task_id,
        payload={"task": task, "detected_at": detected_at.isoformat()},
    )
