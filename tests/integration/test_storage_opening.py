"""storage.db, connect, migrate, encoding: opening, pragmas, migrations, the time encoding."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import aiosqlite
import pytest

from storage import (
    Database,
    Migration,
    StorageError,
    apply_migrations,
    close_database,
    count_subscriptions,
    load_migrations,
    open_database,
    ping,
    subscribe,
)
from storage.encoding import from_db_time, to_db_time
from storage.migrate import split_statements
from tests.fakes.storage_support import T0


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
