"""storage.health: write failures seen by transactions, the file's identity, on real SQLite."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from storage import Database, health, open_database, set_state, subscribe
from tests.fakes.storage_support import T0


async def _read_only(db: Database, *, on: bool) -> None:
    await db.execute(f"PRAGMA query_only={'ON' if on else 'OFF'}")


@pytest.mark.sqlite_only  # PRAGMA query_only
async def test_a_refused_write_is_reported_once_then_cleared_by_a_commit(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    assert health.database_problem(db) is None
    await _read_only(db, on=True)
    caplog.set_level(logging.WARNING, logger="storage.health")
    for _ in range(3):
        with pytest.raises(sqlite3.OperationalError):
            await set_state(db, "k", "v", T0)
    state = health.write_health(db)
    assert not state.writable
    assert state.failures == 3
    problem = health.database_problem(db)
    assert problem is not None
    assert "read-only" in problem
    assert [r.levelname for r in caplog.records] == ["ERROR"]  # one line per episode
    await _read_only(db, on=False)
    await set_state(db, "k", "v", T0)
    assert health.database_problem(db) is None
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]
    assert state.failures == 3  # a counter: the metric keeps the history


async def test_errors_that_say_nothing_about_the_disk_are_not_counted(
    db: Database,
) -> None:
    await subscribe(db, 1, None, T0)
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
        async with db.transaction():
            await db.execute(
                "INSERT INTO subscriptions (chat_id, thread_id, created_at) VALUES (1, 0, 'x')"
            )
    with pytest.raises(ValueError, match="boom"):
        async with db.transaction():
            raise ValueError("boom")
    assert health.write_health(db).writable
    assert health.write_health(db).failures == 0


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sqlite3.OperationalError("database or disk is full"), "disk"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "readonly"),
        (sqlite3.OperationalError("no such table: x"), None),
        (sqlite3.IntegrityError("UNIQUE constraint failed"), None),
        (OSError("disk full"), None),  # not SQLite's word: the caller's own problem
    ],
)
def test_unwritable_reason_by_message(error: BaseException, expected: str | None) -> None:
    reason = health.unwritable_reason(error)
    assert (reason is None) == (expected is None)
    if expected is not None:
        assert reason is not None
        assert expected in reason


async def test_deleted_and_replaced_files_are_told(tmp_path: Path) -> None:
    path = tmp_path / "gone.sqlite3"
    db = await open_database(path, now=T0)
    try:
        assert health.file_problem(db) is None
        os.replace(path, tmp_path / "elsewhere.sqlite3")
        problem = health.file_problem(db)
        assert problem is not None
        assert "deleted" in problem
        path.write_bytes(b"")
        problem = health.database_problem(db)
        assert problem is not None
        assert "replaced" in problem
    finally:
        await db.close()
