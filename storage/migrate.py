"""Versioned schema migrations: the packaged `migrations/NNNN_name.sql` files, applied in order.

Each migration runs in its own transaction and is recorded in `schema_migrations`; a database
newer than the code is refused. On PostgreSQL a statement is translated (`storage.pg.translate_ddl`)
unless the migration ships a `NNNN_name.postgresql.sql` variant.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from . import pg
from .db import Database, StorageError
from .encoding import to_db_time

log = logging.getLogger(__name__)

_PACKAGE = __name__.rpartition(".")[0]
_MIGRATION_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


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


async def _current_version(db: Database) -> int:
    async with db.execute(
        "SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations"
    ) as cursor:
        row = await cursor.fetchone()
    return 0 if row is None else int(row["version"])


async def apply_migrations(
    db: Database,
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
    postgres = db.is_postgres
    async with db.locked():
        # In a transaction: on PostgreSQL two replicas starting at once would otherwise race
        # on CREATE TABLE IF NOT EXISTS (the write lock of `transaction()` serialises them).
        async with db.transaction():
            create = (
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL,"
                " applied_at TEXT NOT NULL)"
            )
            await db.execute(pg.translate_ddl(create) if postgres else create)
        current = await _current_version(db)
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
            async with db.transaction():
                # Re-read under the write lock: another process may have applied it meanwhile.
                if await _current_version(db) >= migration.version:
                    continue
                script = migration.sql
                if postgres:
                    script = migration.pg_sql or script
                translate = postgres and migration.pg_sql is None
                for statement in split_statements(script):
                    await db.execute(pg.translate_ddl(statement) if translate else statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, applied_at),
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
        return await _current_version(db)
