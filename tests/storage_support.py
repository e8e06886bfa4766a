"""What the storage tests share: a fixed start time and a real SQLite database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from storage import open_database

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """T0 plus some minutes."""
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    """A fresh, migrated database file in the test's own folder."""
    conn = await open_database(tmp_path / "bot.sqlite3", now=T0)
    try:
        yield conn
    finally:
        await conn.close()
