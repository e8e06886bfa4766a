"""Opening and closing the `Database`: SQLite's pragmas, PostgreSQL's connection, migrations."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from pathlib import Path

import aiosqlite

from . import pg
from .db import DB_ERRORS, Database, StorageError
from .health import record_file
from .migrate import apply_migrations

log = logging.getLogger(__name__)

# UPSERT (ON CONFLICT ... DO UPDATE/NOTHING) needs 3.24, RETURNING 3.35.
MIN_SQLITE_VERSION = (3, 35, 0)


async def open_database(path: Path, *, now: datetime | None = None) -> Database:
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
    # Opened here, then handed to aiosqlite's worker thread: a failure to open then happens
    # before that thread exists (aiosqlite does not wait for it to stop on a failed connect,
    # and a thread outliving the event loop dies with "Event loop is closed"); from here on
    # `close()` awaits it. isolation_level=None: no implicit BEGINs from the sqlite3 module,
    # `Database.transaction()` is the only place a transaction starts. timeout is the busy
    # timeout during connect; check_same_thread=False: opened on one thread, used on another.
    try:
        raw = await asyncio.to_thread(
            sqlite3.connect, path, isolation_level=None, timeout=5.0, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open database {path}: {exc}") from exc
    conn = aiosqlite.Connection(lambda: raw, iter_chunk_size=64)
    await conn  # starts the worker thread; the connector above cannot fail
    db = Database(conn)
    # One exception type for "the database cannot be used", e.g. a file that is not SQLite.
    async with _closed_on_failure(db, (sqlite3.Error,), f"cannot open database {path}"):
        async with db.execute("PRAGMA journal_mode=WAL") as cursor:
            row = await cursor.fetchone()
        mode = None if row is None else row["journal_mode"]
        if str(mode).lower() != "wal":
            # e.g. a filesystem without shared memory; still crash-safe, just slower.
            log.warning("SQLite refused WAL for %s (journal_mode=%s)", path, mode)
        await db.execute("PRAGMA foreign_keys=ON")
        await db.execute("PRAGMA busy_timeout=5000")
        # NORMAL in WAL mode: a commit survives a process crash (kill -9); only an OS crash or
        # power loss can lose the last commits, never corrupt the file.
        await db.execute("PRAGMA synchronous=NORMAL")
        await apply_migrations(db, now=now)
        record_file(db, path)  # to tell, later, that the file was deleted under us
    return db


async def open_postgres(url: str, *, now: datetime | None = None) -> Database:
    """Connect to PostgreSQL and apply migrations; caller closes it. Errors never hold the URL."""
    where = pg.describe_url(url)
    try:
        conn = await pg.connect(url)
    except (*pg.ERRORS, TimeoutError, ValueError) as exc:  # type: ignore[misc]
        # asyncpg's messages name the user at most, never the password; the URL is not echoed.
        raise StorageError(f"cannot open database {where}: {type(exc).__name__}: {exc}") from exc
    db = Database(conn)
    async with _closed_on_failure(db, pg.ERRORS, f"cannot migrate database {where}"):
        await apply_migrations(db, now=now)
    return db


@asynccontextmanager
async def _closed_on_failure(
    db: Database, errors: tuple[type[BaseException], ...], what: str
) -> AsyncIterator[None]:
    """Close the half-opened `db` on any failure; the backend's own `errors` become StorageError."""
    try:
        yield
    except BaseException as exc:
        await db.close()
        if isinstance(exc, errors):
            raise StorageError(f"{what}: {exc}") from exc
        raise


async def open_url(url: str, *, now: datetime | None = None) -> Database:
    """Open the database a DATABASE_URL names: `sqlite:///path` or `postgresql://...`."""
    if pg.is_postgres_url(url):
        return await open_postgres(url, now=now)
    return await open_database(Path(url.removeprefix("sqlite:///")), now=now)


async def close_database(db: Database) -> None:
    """Let SQLite refresh its planner statistics, then close the connection."""
    # Best effort: closing must not fail because the connection is already broken or closed.
    if not db.is_postgres:
        with suppress(sqlite3.Error, ValueError):
            async with db.locked():
                await db.execute("PRAGMA optimize")
    with suppress(*pg.ERRORS):
        await db.close()


async def check_database(path: Path | str) -> None:
    """Open (creating and migrating if needed) and close the database: a start-up check."""
    db = await (open_url(path) if isinstance(path, str) else open_database(path))
    await close_database(db)


async def ping(db: Database) -> None:
    """Run `SELECT 1`; raise StorageError if the database is unusable (for health checks)."""
    # No lock on SQLite: a health check should not queue behind a transaction, and SELECT 1
    # reads nothing. asyncpg runs one statement at a time per connection: there it must queue.
    try:
        if db.is_postgres:
            async with db.locked(), db.execute("SELECT 1 AS one") as cursor:
                row = await cursor.fetchone()
        else:
            async with db.execute("SELECT 1 AS one") as cursor:
                row = await cursor.fetchone()
    except DB_ERRORS as exc:  # aiosqlite raises ValueError once closed
        raise StorageError(f"database unavailable: {exc}") from exc
    if row is None or row["one"] != 1:
        raise StorageError("SELECT 1 did not return 1")
