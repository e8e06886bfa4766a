"""Is the database still the file we opened, and does it take writes? Cheap checks for /healthz.

Two things go wrong under a running bot without SQLite noticing: the file is deleted (writes then
go to an unlinked inode and are lost at restart) and the disk fills up or turns read-only (every
write fails). The first is seen by comparing the path's inode with the one recorded at open; the
second by `Database.transaction()` reporting each write failure and each success here. Both are
per connection: the `WriteHealth` each `Database` holds.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .db import Database

log = logging.getLogger(__name__)

# SQLite primary result codes that mean "this database cannot take writes right now"; others
# (a constraint, a busy lock, a bug in our SQL) say nothing about the disk.
_UNWRITABLE = {
    8: "read-only",  # SQLITE_READONLY
    10: "disk I/O error",  # SQLITE_IOERR
    11: "corrupt",  # SQLITE_CORRUPT
    13: "disk full",  # SQLITE_FULL
    14: "cannot open",  # SQLITE_CANTOPEN
    26: "not a database",  # SQLITE_NOTADB
}


@dataclass(slots=True)
class WriteHealth:
    """Whether the last write on a connection failed, and since when; counts every failure."""

    path: Path | None = None
    inode: tuple[int, int] | None = None  # (st_dev, st_ino) recorded at open
    failing: str | None = None  # why the last write failed; None once a write succeeds
    failures: int = 0  # every failed write, for the metric
    # Called when writes start failing (e.g. the delivery loop, which then probes until they
    # work again: otherwise a failure seen by a handler would stay reported until some write).
    on_failing: list[Callable[[], None]] = field(default_factory=list)

    @property
    def writable(self) -> bool:
        """False while writes fail."""
        return self.failing is None


def write_health(db: Database) -> WriteHealth:
    """The database's write health."""
    return db.health


# PostgreSQL SQLSTATE classes/codes that mean the same: connection exceptions (08), disk full
# (53100), out of memory/resources (53), read-only transaction (25006), admin shutdown (57P).
_PG_UNWRITABLE = ("08", "53", "25006", "57P")


def unwritable_reason(err: BaseException) -> str | None:
    """Why `err` means the database cannot take writes, or None if it means something else."""
    if not isinstance(err, sqlite3.Error):
        return _pg_unwritable_reason(err)
    code = getattr(err, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _UNWRITABLE:
        return f"{_UNWRITABLE[code & 0xFF]}: {err}"
    text = str(err).lower()
    if "readonly" in text or "disk" in text or "full" in text:
        return str(err)
    return None


def _pg_unwritable_reason(err: BaseException) -> str | None:
    import asyncpg  # noqa: PLC0415 - health stays importable without touching the driver

    # A plain OSError is the caller's own problem (a file, say), not the database's.
    if isinstance(err, asyncpg.InterfaceError | asyncpg.PostgresConnectionError):
        return f"connection lost: {err}"
    sqlstate = getattr(err, "sqlstate", None)
    if (
        isinstance(err, asyncpg.PostgresError)
        and isinstance(sqlstate, str)
        and sqlstate.startswith(_PG_UNWRITABLE)
    ):
        return f"{sqlstate}: {err}"
    return None


def note_write_failure(db: Database, err: BaseException) -> None:
    """Record a failed write if it means the database is unwritable; log once per episode."""
    reason = unwritable_reason(err)
    if reason is None:
        return
    health = db.health
    health.failures += 1
    if health.failing is None:
        log.error(
            "database writes are failing (%s); logged once until a write succeeds again",
            reason,
            extra={"event": "db_unwritable"},
        )
        health.failing = reason
        for listener in health.on_failing:
            listener()
    health.failing = reason


def note_write_ok(db: Database) -> None:
    """Record a committed write; log the end of a failing episode."""
    health = db.health
    if health.failing is None:
        return
    log.warning(
        "database writes work again after %d failed write(s)",
        health.failures,
        extra={"event": "db_writable"},
    )
    health.failing = None


def record_file(db: Database, path: Path) -> None:
    """Remember which file `db` opened, so a deletion or replacement can be told."""
    health = db.health
    health.path = path
    try:
        st = path.stat()
    except OSError:
        return  # e.g. ":memory:"-like paths: nothing to compare later
    health.inode = (st.st_dev, st.st_ino)


def file_problem(db: Database) -> str | None:
    """Why the database file is no longer the one opened (deleted, replaced), or None."""
    health = db.health
    if health.path is None or health.inode is None:
        return None
    try:
        st = os.stat(health.path)
    except FileNotFoundError:
        return f"database file {health.path} was deleted while in use: writes will be lost"
    except OSError as err:
        return f"database file {health.path} cannot be checked: {err.strerror}"
    if (st.st_dev, st.st_ino) != health.inode:
        return f"database file {health.path} was replaced while in use: writes go to the old one"
    return None


def database_problem(db: Database) -> str | None:
    """The reason the database is unhealthy (file gone, writes failing), or None: a stat only."""
    problem = file_problem(db)
    if problem is not None:
        return problem
    if db.health.failing is not None:
        return f"database writes failing: {db.health.failing}"
    return None
