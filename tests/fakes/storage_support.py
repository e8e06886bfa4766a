"""What the storage tests share: a fixed start time and a real database per test, on both engines.

`db` is parametrised: every test using it runs on SQLite (a file in tmp_path) and on PostgreSQL
(its own schema in the session's throwaway cluster, tests/fakes/pg_support.py). A test about SQLite
itself (pragmas, triggers, the file) is marked `sqlite_only` and runs once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from storage import Connection, open_database, open_postgres
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
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Connection]:
    """A fresh, migrated database: a SQLite file in tmp_path, or a PostgreSQL schema."""
    conn: Connection
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
def engine(db: Connection) -> str:
    """Which engine `db` is ("sqlite" or "postgresql")."""
    return "sqlite" if isinstance(db, aiosqlite.Connection) else "postgresql"
