"""storage.db, connect, migrate, encoding: opening, pragmas, migrations, transactions, the lock."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import aiosqlite
import pytest

from storage import (
    Database,
    Migration,
    NewAlert,
    StorageError,
    TaskSnapshot,
    apply_migrations,
    close_database,
    count_subscriptions,
    due_deliveries,
    get_state,
    list_subscriptions,
    load_known_statuses,
    load_migrations,
    open_database,
    ping,
    record_poll,
    set_state,
    subscribe,
)
from storage.encoding import from_db_time, to_db_time
from storage.migrate import split_statements
from tests.fakes.storage_support import T0, outbox_stats

REPO_ROOT = Path(__file__).resolve().parents[2]


async def _scalar(conn: Database, sql: str) -> object:
    async with conn.execute(sql) as cur:
        row = await cur.fetchone()
    assert row is not None
    return row[0]


# --- opening and migrations ---------------------------------------------------------------------


async def test_fresh_database_is_migrated_to_latest(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "bot.sqlite3"  # parents are created
    conn = await open_database(path, now=T0)
    try:
        latest = len(load_migrations())
        assert latest >= 1
        rows = list(
            await conn.execute_fetchall(
                "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
            )
        )
        assert [(r[0], r[1]) for r in rows] == [(m.version, m.name) for m in load_migrations()]
        assert rows[0][2] == to_db_time(T0)
        tables = {
            r[0]
            for r in await conn.execute_fetchall(
                "SELECT name FROM sqlite_master WHERE type='table'"
            )
        }
        assert {"subscriptions", "tasks", "state", "alerts", "deliveries", "task_files"} <= tables
    finally:
        await conn.close()
    assert path.exists()


async def test_reopen_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    conn = await open_database(path, now=T0)
    await subscribe(conn, 1, None, T0)
    await conn.close()

    conn = await open_database(path, now=T0 + timedelta(days=1))
    try:
        assert await apply_migrations(conn) == len(load_migrations())
        assert await _scalar(conn, "SELECT COUNT(*) FROM schema_migrations") == len(
            load_migrations()
        )
        # Not re-stamped by the second open.
        assert await _scalar(conn, "SELECT MIN(applied_at) FROM schema_migrations") == to_db_time(
            T0
        )
        assert await count_subscriptions(conn) == 1
    finally:
        await close_database(conn)


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    conn = await open_database(path, now=T0)
    future = len(load_migrations()) + 1
    await conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', ?)",
        (future, to_db_time(T0)),
    )
    await conn.close()

    # open_database closes its connection on failure: no ResourceWarning (warnings are errors).
    with pytest.raises(StorageError, match=rf"version {future} is newer than this code knows"):
        await open_database(path, now=T0)


@pytest.mark.parametrize(
    "content", [b"this is not a database" * 100, b"SQLite format 3\x00garbage"]
)
async def test_unusable_file_is_a_storage_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(content)
    with pytest.raises(StorageError, match="cannot open database"):
        await open_database(path, now=T0)


async def test_directory_instead_of_file_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot open database"):
        await open_database(tmp_path, now=T0)


async def test_close_database_twice_is_harmless(tmp_path: Path) -> None:
    conn = await open_database(tmp_path / "bot.sqlite3", now=T0)
    await close_database(conn)
    await close_database(conn)


async def _raw_connection(path: Path) -> Database:
    return Database(await aiosqlite.connect(path, isolation_level=None))


async def test_each_migration_is_its_own_transaction(tmp_path: Path) -> None:
    good = Migration(1, "good", "CREATE TABLE a (x INTEGER);")
    bad = Migration(2, "bad", "CREATE TABLE b (x INTEGER);\nINSERT INTO no_such_table VALUES (1);")
    conn = await _raw_connection(tmp_path / "m.sqlite3")
    try:
        with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
            await apply_migrations(conn, now=T0, migrations=[good, bad])
        names = {r[0] for r in await conn.execute_fetchall("SELECT name FROM sqlite_master")}
        assert "a" in names
        assert "b" not in names  # rolled back with its migration
        assert await _scalar(conn, "SELECT MAX(version) FROM schema_migrations") == 1
        assert not conn.in_transaction

        fixed = Migration(2, "bad", "CREATE TABLE b (x INTEGER);")
        assert await apply_migrations(conn, now=T0, migrations=[good, fixed]) == 2
    finally:
        await conn.close()


@pytest.mark.parametrize("versions", [[1, 3], [2], [1, 1]])
async def test_migration_sequence_must_be_contiguous(tmp_path: Path, versions: list[int]) -> None:
    migrations = [Migration(v, f"m{v}", "SELECT 1;") for v in versions]
    conn = await _raw_connection(tmp_path / "m.sqlite3")
    try:
        with pytest.raises(StorageError, match="without gaps"):
            await apply_migrations(conn, now=T0, migrations=migrations)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("SELECT 1;", ["SELECT 1;"]),
        ("SELECT 1; SELECT 2;", ["SELECT 1;", "SELECT 2;"]),
        ("SELECT ';';\nSELECT 2;", ["SELECT ';';", "SELECT 2;"]),
        ("-- a; comment\nSELECT 1;", ["-- a; comment\nSELECT 1;"]),
        ("SELECT 1;\n-- trailing comment\n", ["SELECT 1;"]),
        ("SELECT 1;\nSELECT 2", ["SELECT 1;", "SELECT 2"]),
        (
            "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; SELECT 2; END;\nSELECT 3;",
            ["CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; SELECT 2; END;", "SELECT 3;"],
        ),
        ("", []),
    ],
)
def test_split_statements(script: str, expected: list[str]) -> None:
    assert split_statements(script) == expected


def test_packaged_migrations_split_cleanly() -> None:
    for migration in load_migrations():
        statements = split_statements(migration.sql)
        assert statements
        assert all(sqlite3.complete_statement(s) for s in statements)


@pytest.mark.sqlite_only
@pytest.mark.parametrize(
    ("pragma", "expected"),
    [
        ("journal_mode", "wal"),
        ("foreign_keys", 1),
        ("busy_timeout", 5000),
        ("synchronous", 1),  # NORMAL
    ],
)
async def test_pragmas(db: Database, pragma: str, expected: object) -> None:
    assert await _scalar(db, f"PRAGMA {pragma}") == expected


@pytest.mark.sqlite_only
async def test_autocommit_outside_transactions(db: Database) -> None:
    assert db.conn.isolation_level is None
    await subscribe(db, 1, None, T0)
    assert not db.in_transaction


async def test_ping(tmp_path: Path) -> None:
    conn = await open_database(tmp_path / "bot.sqlite3", now=T0)
    await ping(conn)
    await conn.close()
    with pytest.raises(StorageError, match="unavailable"):
        await ping(conn)


# --- time encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        T0,
        datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=3))),
        datetime(1999, 1, 1, tzinfo=UTC),
    ],
)
def test_time_round_trip(moment: datetime) -> None:
    text = to_db_time(moment)
    assert len(text) == len("2026-11-25T09:00:00.000000Z")
    back = from_db_time(text)
    assert back == moment
    assert back.utcoffset() == timedelta(0)


def test_time_text_order_is_time_order() -> None:
    moments = [T0 + timedelta(microseconds=n) for n in (0, 1, 999_999, 1_000_000, 10**9)]
    assert sorted(to_db_time(m) for m in moments) == [to_db_time(m) for m in moments]


async def test_naive_datetime_is_rejected(db: Database) -> None:
    with pytest.raises(ValueError, match="naive"):
        await subscribe(db, 1, None, datetime(2026, 11, 25, 9, 0))  # noqa: DTZ001
    assert await count_subscriptions(db) == 0


# --- transactions and the lock ------------------------------------------------------------------


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    async def write_then_fail() -> None:
        async with db.transaction():
            await subscribe(db, 1, None, T0)
            await set_state(db, "k", "v", T0)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    assert await count_subscriptions(db) == 0
    assert await get_state(db, "k") is None
    assert not db.in_transaction


async def test_nested_transaction_is_a_savepoint(db: Database) -> None:
    async def inner_fails() -> None:
        async with db.transaction():
            await subscribe(db, 2, None, T0)
            raise RuntimeError("inner only")

    async with db.transaction():
        await subscribe(db, 1, None, T0)
        with pytest.raises(RuntimeError):
            await inner_fails()
        await set_state(db, "k", "v", T0)
    assert [s.chat_id for s in await list_subscriptions(db)] == [1]
    assert await get_state(db, "k") == "v"


@pytest.mark.sqlite_only
async def test_concurrent_writers_do_not_interleave(db: Database) -> None:
    trace: list[str] = []
    await db.conn.set_trace_callback(trace.append)

    async def poll(n: int) -> list[int]:
        await asyncio.sleep(0)
        return await record_poll(
            db,
            tasks=[TaskSnapshot(n, 2, f"task {n}")],
            alerts=[NewAlert("completed", n, {"n": n})],
            now=T0,
        )

    async def sub(n: int) -> bool:
        return await subscribe(db, 100 + n, None, T0)

    # Without the lock the second BEGIN would fail ("cannot start a transaction within a
    # transaction") or a subscribe would land inside a record_poll transaction.
    results = await asyncio.gather(*(f(n) for n in range(20) for f in (poll, sub)))
    statements = trace.copy()
    assert all(results)

    in_tx = False
    block: list[str] = []
    subscribed = 0
    expected_fanout: list[int] = []
    for statement in statements:
        head = statement.lstrip().upper()
        if head.startswith("BEGIN"):
            assert not in_tx, "BEGIN inside an open transaction"
            in_tx, block = True, []
        elif head.startswith(("COMMIT", "ROLLBACK")):
            assert in_tx
            in_tx = False
            polls = [s for s in block if s.startswith("INSERT INTO alerts")]
            subs = [s for s in block if s.startswith("INSERT INTO subscriptions")]
            assert not (polls and subs), "two callers' statements in one transaction"
            subscribed += len(subs)
            expected_fanout += [subscribed] * len(polls)
        elif head.startswith(("INSERT", "UPDATE", "DELETE")):
            assert in_tx, f"write outside a transaction: {statement}"
            block.append(statement.lstrip())
    assert not in_tx

    # Every alert fanned out to exactly the chats subscribed when its transaction committed.
    rows = await db.execute_fetchall(
        "SELECT a.id, COUNT(d.id) FROM alerts AS a LEFT JOIN deliveries AS d ON d.alert_id = a.id"
        " GROUP BY a.id ORDER BY a.id"
    )
    assert [r[1] for r in rows] == expected_fanout


async def test_reads_never_see_an_uncommitted_transaction(db: Database) -> None:
    await subscribe(db, 1, None, T0)
    inside = asyncio.Event()

    async def write_wait_fail() -> None:
        async with db.transaction():
            await record_poll(db, tasks=[], alerts=[NewAlert("failed", 1, {})], now=T0)
            inside.set()
            await asyncio.sleep(0.05)
            raise RuntimeError("rolled back")

    async def failing_writer() -> None:
        with pytest.raises(RuntimeError):
            await write_wait_fail()

    async def reader() -> int:
        await inside.wait()
        return len(await due_deliveries(db, T0))

    _, seen = await asyncio.gather(failing_writer(), reader())
    assert seen == 0
    assert (await outbox_stats(db))["pending"] == 0


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 8, 13, 40])
async def test_cancelled_writer_leaves_no_open_transaction(db: Database, steps: int) -> None:
    await subscribe(db, 1, None, T0)
    tasks = [TaskSnapshot(n, 2, f"t{n}") for n in range(500)]
    writer = asyncio.create_task(
        record_poll(db, tasks=tasks, alerts=[NewAlert("completed", 1, {})], now=T0)
    )
    for _ in range(steps):  # steps=1 cancels while BEGIN itself is in flight
        await asyncio.sleep(0)
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writer

    # All or nothing, whichever side of COMMIT the cancel landed on; and the next writer works.
    assert await subscribe(db, 2, None, T0)
    known = await load_known_statuses(db)
    pending = (await outbox_stats(db))["pending"]
    assert (len(known), pending) in {(0, 0), (500, 1)}
    assert not db.in_transaction


# --- a real kill -9 -----------------------------------------------------------------------------

_CHILD = """
import asyncio, os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
import storage as s

async def main() -> None:
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    conn = await s.open_database(Path(sys.argv[1]), now=now)
    await s.subscribe(conn, 1, None, now)
    await s.record_poll(conn, tasks=[s.TaskSnapshot(1, 2, "a")],
                        alerts=[s.NewAlert("completed", 1, {"n": 1})], now=now)
    await s.record_poll(conn, tasks=[s.TaskSnapshot(2, 4, "b")],
                        alerts=[s.NewAlert("failed", 2, {"n": 2})], now=now)
    first = (await s.due_deliveries(conn, now))[0]
    await s.mark_delivered(conn, first.delivery_id, now, message_id=77)
    async with conn.transaction():
        await s.record_poll(conn, tasks=[s.TaskSnapshot(3, 3, "c")],
                            alerts=[s.NewAlert("canceled", 3, {"n": 3})], now=now)
        os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction, nothing closed or flushed

asyncio.run(main())
"""


async def test_kill_9_keeps_commits_and_loses_only_the_open_transaction(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        str(path),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await proc.communicate()
    assert proc.returncode == -signal.SIGKILL, stderr.decode()

    conn = await open_database(path, now=T0)
    try:
        assert await load_known_statuses(conn) == {1: 2, 2: 4}
        due = await due_deliveries(conn, T0)
        assert [(d.kind, d.payload) for d in due] == [("failed", {"n": 2})]
        assert await outbox_stats(conn) == {
            "pending": 1,
            "retrying": 0,
            "delivered": 1,
            "dropped": 0,
        }
    finally:
        await conn.close()
