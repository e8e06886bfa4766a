"""The database connection: opening, pragmas, transactions, versioned migrations, time encoding.

SQLite (the default, `sqlite:///path`) or PostgreSQL (`postgresql://...`, see `storage.pg`, which
maps the dialect): the same storage functions, the same migrations, the same locking below.

The app holds one `aiosqlite.Connection` for its whole life. aiosqlite runs every statement of a
connection on one thread, in order, so single statements never overlap; but a multi-statement
transaction spans several awaits, and on a shared connection *any* statement another coroutine
issues in between silently becomes part of that transaction (and is rolled back with it). So
every storage function, read or write, runs under a per-connection `asyncio.Lock`:
`transaction()` for writes, `locked()` for reads (a read must not see, and act on, rows of a
transaction that may still roll back, e.g. send an alert that is then never committed).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import threading
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from . import pg
from .health import note_write_failure, note_write_ok, record_file

log = logging.getLogger(__name__)

# UPSERT (ON CONFLICT ... DO UPDATE/NOTHING) needs 3.24, RETURNING 3.35.
MIN_SQLITE_VERSION = (3, 35, 0)

# What every storage function takes: either engine's connection (same methods, see storage.pg).
Connection = aiosqlite.Connection | pg.PgConnection

# Errors of either engine that mean "the statement or the connection failed".
DB_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, ValueError, *pg.ERRORS)

_PACKAGE = __name__.rpartition(".")[0]
_MIGRATION_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


class StorageError(Exception):
    """A database the code cannot or must not work with (too new, broken migrations, ...)."""


STORAGE_ERRORS: tuple[type[BaseException], ...] = (StorageError, *DB_ERRORS)


# --- time encoding ------------------------------------------------------------------------------


def to_db_time(moment: datetime) -> str:
    """Encode an aware datetime as the fixed-width UTC text every table stores."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: storage needs an aware (UTC) datetime")
    # Fixed width (always microseconds, always Z) so that text order is time order in SQL.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_db_time(text: str) -> datetime:
    """Decode a stored time into an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


def thread_to_db(thread_id: int | None) -> int:
    """Encode "no forum topic" as 0, which (unlike NULL) a UNIQUE key treats as one value."""
    return 0 if thread_id is None else thread_id


def thread_from_db(value: int) -> int | None:
    """Decode a stored thread id (0 means no topic)."""
    return None if value == 0 else value


# --- locking and transactions -------------------------------------------------------------------


@dataclass(slots=True)
class _Guard:
    """Per-connection lock, re-entrant for the task that holds it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    owner: asyncio.Task[Any] | None = None
    tx_depth: int = 0


# Weak keys: the guard goes away with its connection, nothing to unregister on close.
_guards: weakref.WeakKeyDictionary[Connection, _Guard] = weakref.WeakKeyDictionary()


def _guard(conn: Connection) -> _Guard:
    guard = _guards.get(conn)
    if guard is None:
        guard = _guards[conn] = _Guard()
    return guard


@asynccontextmanager
async def locked(conn: Connection) -> AsyncIterator[Connection]:
    """Hold the connection's lock without opening a transaction (for reads).

    Re-entrant within one asyncio task. A task spawned while the lock is held is another task
    and waits for it: do not gather storage calls inside `locked()` or `transaction()`.
    """
    guard = _guard(conn)
    task = asyncio.current_task()
    if task is not None and guard.owner is task:
        yield conn  # already held by this task (nested call)
        return
    async with guard.lock:
        guard.owner = task
        try:
            yield conn
        finally:
            guard.owner = None


@asynccontextmanager
async def transaction(conn: Connection) -> AsyncIterator[Connection]:
    """Run the block in one transaction: BEGIN IMMEDIATE, COMMIT, or ROLLBACK on any error.

    Holds the connection's lock throughout. Nested use in the same task becomes a SAVEPOINT, so
    storage functions compose: `async with transaction(conn): await subscribe(...); ...`.
    """
    async with locked(conn):
        guard = _guard(conn)
        if guard.tx_depth == 0:
            # BEGIN is inside the try: if the caller is cancelled while BEGIN is in flight, the
            # thread still runs it, and only the queued ROLLBACK keeps the next caller's BEGIN
            # from failing with "cannot start a transaction within a transaction".
            try:
                # IMMEDIATE takes the write lock up front: a busy database fails (after
                # busy_timeout) at BEGIN, not halfway through with work already done.
                await conn.execute("BEGIN IMMEDIATE")
                guard.tx_depth = 1
                yield conn
            except BaseException as exc:
                note_write_failure(conn, exc)  # a full or read-only disk: for /healthz
                await _rollback_quietly(conn)
                raise
            else:
                try:
                    await conn.execute("COMMIT")
                except BaseException as exc:
                    note_write_failure(conn, exc)
                    await _rollback_quietly(conn)
                    raise
                note_write_ok(conn)
            finally:
                guard.tx_depth = 0
        else:
            savepoint = f"sp_{guard.tx_depth}"
            depth = guard.tx_depth
            try:
                await conn.execute(f"SAVEPOINT {savepoint}")
                guard.tx_depth += 1
                yield conn
            except BaseException:
                # Quietly: if this fails the connection is gone and the outer ROLLBACK (or
                # SQLite itself) discards everything anyway; the original error matters more.
                with suppress(*DB_ERRORS):
                    await conn.execute(f"ROLLBACK TO {savepoint}")
                    await conn.execute(f"RELEASE {savepoint}")
                raise
            else:
                await conn.execute(f"RELEASE {savepoint}")
            finally:
                guard.tx_depth = depth


async def _rollback_quietly(conn: Connection) -> None:
    # The original error is what matters; the rollback may itself fail because the transaction
    # never started or the connection is closed (SQLite then discards it anyway).
    with suppress(*DB_ERRORS):
        await conn.execute("ROLLBACK")


# --- opening ------------------------------------------------------------------------------------


async def open_database(path: Path, *, now: datetime | None = None) -> aiosqlite.Connection:
    """Open (creating if needed) the database, set pragmas, apply migrations; caller closes it.

    `now` stamps newly applied migrations (see `apply_migrations`).
    """
    if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
        raise StorageError(
            f"SQLite {sqlite3.sqlite_version} is too old: the bot needs "
            f"{'.'.join(map(str, MIN_SQLITE_VERSION))} or newer"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the folder for {path}: {exc.strerror}") from exc
    # isolation_level=None: no implicit BEGINs from the sqlite3 module; `transaction()` is the
    # only place a transaction starts. timeout is the busy timeout during connect.
    conn = aiosqlite.connect(path, isolation_level=None, timeout=5.0)
    try:
        await conn
    except BaseException as exc:
        await _worker_stopped(conn)
        if isinstance(exc, sqlite3.Error):
            raise StorageError(f"cannot open database {path}: {exc}") from exc
        raise
    try:
        conn.row_factory = aiosqlite.Row
        mode = await _pragma(conn, "PRAGMA journal_mode=WAL")
        if str(mode).lower() != "wal":
            # e.g. a filesystem without shared memory; still crash-safe, just slower.
            log.warning("SQLite refused WAL for %s (journal_mode=%s)", path, mode)
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        # NORMAL in WAL mode: a commit survives a process crash (kill -9); only an OS crash or
        # power loss can lose the last commits, never corrupt the file.
        await conn.execute("PRAGMA synchronous=NORMAL")
        await apply_migrations(conn, now=now)
        record_file(conn, path)  # to tell, later, that the file was deleted under us
    except BaseException as exc:
        await conn.close()
        # One exception type for "the database cannot be used", e.g. a file that is not SQLite.
        if isinstance(exc, sqlite3.Error):
            raise StorageError(f"cannot open database {path}: {exc}") from exc
        raise
    return conn


async def _worker_stopped(conn: aiosqlite.Connection) -> None:
    # On a failed connect aiosqlite stops its worker thread without awaiting it; if the event
    # loop closed first, the thread would die with "Event loop is closed". Give it the moment
    # it needs (it is a private attribute, hence the defensive getattr).
    thread = getattr(conn, "_thread", None)
    if not isinstance(thread, threading.Thread):
        return
    for _ in range(1000):
        if not thread.is_alive():
            return
        await asyncio.sleep(0.001)


async def open_postgres(url: str, *, now: datetime | None = None) -> pg.PgConnection:
    """Connect to PostgreSQL and apply migrations; caller closes it. Errors never hold the URL."""
    where = pg.describe_url(url)
    try:
        conn = await pg.connect(url)
    except (*pg.ERRORS, TimeoutError, ValueError) as exc:  # type: ignore[misc]
        # asyncpg's messages name the user at most, never the password; the URL is not echoed.
        raise StorageError(f"cannot open database {where}: {type(exc).__name__}: {exc}") from exc
    try:
        await apply_migrations(conn, now=now)
    except BaseException as exc:
        await conn.close()
        if isinstance(exc, pg.ERRORS):
            raise StorageError(f"cannot migrate database {where}: {exc}") from exc
        raise
    return conn


async def open_url(url: str, *, now: datetime | None = None) -> Connection:
    """Open the database a DATABASE_URL names: `sqlite:///path` or `postgresql://...`."""
    if pg.is_postgres_url(url):
        return await open_postgres(url, now=now)
    return await open_database(Path(url.removeprefix("sqlite:///")), now=now)


async def close_database(conn: Connection) -> None:
    """Let SQLite refresh its planner statistics, then close the connection."""
    # Best effort: closing must not fail because the connection is already broken or closed.
    if isinstance(conn, aiosqlite.Connection):
        with suppress(sqlite3.Error, ValueError):
            async with locked(conn):
                await conn.execute("PRAGMA optimize")
    with suppress(*pg.ERRORS):
        await conn.close()


async def check_database(path: Path | str) -> None:
    """Open (creating and migrating if needed) and close the database: a start-up check."""
    conn = await (open_url(path) if isinstance(path, str) else open_database(path))
    await close_database(conn)


async def ping(conn: Connection) -> None:
    """Run `SELECT 1`; raise StorageError if the database is unusable (for health checks)."""
    # No lock on SQLite: a health check should not queue behind a transaction, and SELECT 1
    # reads nothing. asyncpg runs one statement at a time per connection: there it must queue.
    try:
        if isinstance(conn, pg.PgConnection):
            async with locked(conn), conn.execute("SELECT 1") as cursor:
                row = await cursor.fetchone()
        else:
            async with conn.execute("SELECT 1") as cursor:
                row = await cursor.fetchone()
    except DB_ERRORS as exc:  # aiosqlite raises ValueError once closed
        raise StorageError(f"database unavailable: {exc}") from exc
    if row is None or row[0] != 1:
        raise StorageError("SELECT 1 did not return 1")


async def _pragma(conn: aiosqlite.Connection, sql: str) -> object:
    async with conn.execute(sql) as cursor:
        row = await cursor.fetchone()
    return None if row is None else row[0]


# --- migrations ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: `NNNN_name.sql`."""

    version: int
    name: str
    sql: str
    # `NNNN_name.postgresql.sql`, used verbatim on PostgreSQL when the SQLite text cannot be
    # translated (see storage.pg.translate_ddl); None: translate `sql`.
    pg_sql: str | None = None


def load_migrations() -> list[Migration]:
    """Read the packaged `migrations/NNNN_name.sql` files, in version order."""
    root = resources.files(_PACKAGE).joinpath("migrations")
    found: list[Migration] = []
    for entry in root.iterdir():
        match = _MIGRATION_FILE.fullmatch(entry.name)
        if match is None:
            continue
        variant = root.joinpath(f"{match[1]}_{match[2]}.postgresql.sql")
        pg_sql = variant.read_text(encoding="utf-8") if variant.is_file() else None
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8"), pg_sql))
    found.sort(key=lambda m: m.version)
    return found


def _check_sequence(migrations: Sequence[Migration]) -> None:
    # Gaps or duplicates mean a botched merge or a missing file; applying "around" them would
    # leave a schema no version number describes.
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            found = [m.version for m in migrations]
            raise StorageError(f"migration versions must be 1..N without gaps, found {found}")


def split_statements(sql: str) -> list[str]:
    """Split a migration script into single statements (triggers and quoted `;` included)."""
    # sqlite3's executescript() would COMMIT our open transaction first, so statements are run
    # one by one; complete_statement() knows SQL's quoting, comments and CREATE TRIGGER bodies.
    statements: list[str] = []
    start = 0
    end = sql.find(";")
    while end != -1:
        candidate = sql[start : end + 1]
        if sqlite3.complete_statement(candidate):
            statements.append(candidate.strip())
            start = end + 1
        end = sql.find(";", end + 1)
    rest = sql[start:].strip()
    if rest and not all(line.lstrip().startswith("--") for line in rest.splitlines()):
        statements.append(rest)
    return statements


async def _current_version(conn: Connection) -> int:
    async with conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations") as cursor:
        row = await cursor.fetchone()
    return 0 if row is None else int(row[0])


async def apply_migrations(
    conn: Connection,
    *,
    now: datetime | None = None,
    migrations: Sequence[Migration] | None = None,
) -> int:
    """Apply pending migrations, each in its own transaction; return the schema version.

    Refuses (StorageError) a database whose version is newer than the code knows. `now` stamps
    `applied_at`; `migrations` defaults to the packaged ones (tests pass their own).
    """
    known = list(migrations) if migrations is not None else load_migrations()
    _check_sequence(known)
    latest = len(known)
    postgres = isinstance(conn, pg.PgConnection)
    async with locked(conn):
        # In a transaction: on PostgreSQL two replicas starting at once would otherwise race
        # on CREATE TABLE IF NOT EXISTS (the write lock of `transaction()` serialises them).
        async with transaction(conn):
            create = (
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL,"
                " applied_at TEXT NOT NULL)"
            )
            await conn.execute(pg.translate_ddl(create) if postgres else create)
        current = await _current_version(conn)
        if current > latest:
            raise StorageError(
                f"database schema version {current} is newer than this code knows ({latest}): "
                "it was written by a newer bot; run that version, or restore a backup "
                "made before the upgrade"
            )
        for migration in known[current:]:
            # The one clock read in storage: schema bookkeeping at startup, before the app's
            # Clock is wired; the value is informational only and never compared.
            applied_at = to_db_time(now if now is not None else datetime.now(UTC))
            async with transaction(conn):
                # Re-read under the write lock: another process may have applied it meanwhile.
                if await _current_version(conn) >= migration.version:
                    continue
                script = migration.sql
                if postgres:
                    script = migration.pg_sql or script
                translate = postgres and migration.pg_sql is None
                for statement in split_statements(script):
                    await conn.execute(pg.translate_ddl(statement) if translate else statement)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, applied_at),
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
        return await _current_version(conn)
