"""The database: one connection, its lock and its write health, behind one `Database` object.

SQLite (`aiosqlite`, the default) or PostgreSQL (`storage.pg`, which maps the dialect): the same
storage functions, the same migrations, the same locking below. `storage.connect` opens one.

The app holds one connection for its whole life. aiosqlite runs every statement of a connection
on one thread, in order, so single statements never overlap; but a multi-statement transaction
spans several awaits, and on a shared connection *any* statement another coroutine issues in
between silently becomes part of that transaction (and is rolled back with it). So every storage
function, read or write, runs under the Database's `asyncio.Lock`: `transaction()` for writes,
`locked()` for reads (a read must not see, and act on, rows of a transaction that may still roll
back, e.g. send an alert that is then never committed).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from typing import Any

import aiosqlite
from aiosqlite.context import Result

from . import pg
from .health import WriteHealth, note_write_failure, note_write_ok

# Errors of either engine that mean "the statement or the connection failed".
DB_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, ValueError, *pg.ERRORS)


class StorageError(Exception):
    """A database the code cannot or must not work with (too new, broken migrations, ...)."""


STORAGE_ERRORS: tuple[type[BaseException], ...] = (StorageError, *DB_ERRORS)

# Either engine's connection: the same methods (see storage.pg).
EngineConnection = aiosqlite.Connection | pg.PgConnection
# What `Database.execute` returns: awaitable, or used with `async with`, for a cursor.
Executed = Result[aiosqlite.Cursor] | pg.PgResult


class Database:
    """The connection every storage function takes, with its lock and its write health.

    Rows come back readable by column name (`row["id"]`) on both engines: sqlite3.Row on
    SQLite (set here), asyncpg's Record on PostgreSQL.
    """

    def __init__(self, conn: EngineConnection) -> None:
        self.conn = conn
        if isinstance(conn, aiosqlite.Connection):
            conn.row_factory = aiosqlite.Row
        self.health = WriteHealth()  # for /healthz: see storage.health
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None  # the task holding the lock (re-entrancy)
        self._tx_depth = 0

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL, False on SQLite."""
        return isinstance(self.conn, pg.PgConnection)

    @property
    def in_transaction(self) -> bool:
        """True inside BEGIN ... COMMIT."""
        return self.conn.in_transaction

    def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> Executed:
        """Run one statement; await the result or use it with `async with` for the cursor."""
        return self.conn.execute(sql, parameters)

    async def execute_fetchall(
        self, sql: str, parameters: Iterable[Any] | None = None
    ) -> list[Any]:
        """Run a query and return all its rows."""
        return list(await self.conn.execute_fetchall(sql, parameters))

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> None:
        """Run one statement for each parameter tuple."""
        await self.conn.executemany(sql, parameters)

    async def close(self) -> None:
        """Close the connection (idempotent; on SQLite this also ends its worker thread)."""
        await self.conn.close()

    @asynccontextmanager
    async def locked(self) -> AsyncIterator[Database]:
        """Hold the connection's lock without opening a transaction (for reads).

        Re-entrant within one asyncio task. A task spawned while the lock is held is another
        task and waits for it: do not gather storage calls inside `locked()` or `transaction()`.
        """
        task = asyncio.current_task()
        if task is not None and self._owner is task:
            yield self  # already held by this task (nested call)
            return
        async with self._lock:
            self._owner = task
            try:
                yield self
            finally:
                self._owner = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        """Run the block in one transaction: BEGIN IMMEDIATE, COMMIT, or ROLLBACK on any error.

        Holds the connection's lock throughout. Nested use in the same task becomes a SAVEPOINT,
        so storage functions compose: `async with db.transaction(): await subscribe(db, ...)`.
        """
        async with self.locked():
            if self._tx_depth == 0:
                # BEGIN is inside the try: if the caller is cancelled while BEGIN is in flight,
                # the thread still runs it, and only the queued ROLLBACK keeps the next caller's
                # BEGIN from failing with "cannot start a transaction within a transaction".
                try:
                    # IMMEDIATE takes the write lock up front: a busy database fails (after
                    # busy_timeout) at BEGIN, not halfway through with work already done.
                    await self.execute("BEGIN IMMEDIATE")
                    self._tx_depth = 1
                    yield self
                except BaseException as exc:
                    note_write_failure(self, exc)  # a full or read-only disk: for /healthz
                    await self._rollback_quietly()
                    raise
                else:
                    try:
                        await self.execute("COMMIT")
                    except BaseException as exc:
                        note_write_failure(self, exc)
                        await self._rollback_quietly()
                        raise
                    note_write_ok(self)
                finally:
                    self._tx_depth = 0
            else:
                savepoint = f"sp_{self._tx_depth}"
                depth = self._tx_depth
                try:
                    await self.execute(f"SAVEPOINT {savepoint}")
                    self._tx_depth += 1
                    yield self
                except BaseException:
                    # Quietly: if this fails the connection is gone and the outer ROLLBACK (or
                    # SQLite itself) discards everything anyway; the original error matters more.
                    with suppress(*DB_ERRORS):
                        await self.execute(f"ROLLBACK TO {savepoint}")
                        await self.execute(f"RELEASE {savepoint}")
                    raise
                else:
                    await self.execute(f"RELEASE {savepoint}")
                finally:
                    self._tx_depth = depth

    async def _rollback_quietly(self) -> None:
        # The original error is what matters; the rollback may itself fail because the
        # transaction never started or the connection is closed (SQLite then discards it anyway).
        with suppress(*DB_ERRORS):
            await self.execute("ROLLBACK")
