"""Small key/value state: last successful poll, last error, "problem already reported", ...

Keys are dotted names owned by their writer (e.g. "watcher.last_poll"); "tasks.*" is
reserved for storage itself (see `tasks.BASELINE_KEY`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .db import Database
from .encoding import from_db_time, to_db_time


@dataclass(frozen=True, slots=True)
class StateEntry:
    """A stored value and when it was last set."""

    key: str
    value: str
    updated_at: datetime


async def get_state(db: Database, key: str) -> str | None:
    """Return the value stored under `key`, or None."""
    entry = await get_state_entry(db, key)
    return None if entry is None else entry.value


async def get_state_entry(db: Database, key: str) -> StateEntry | None:
    """Return the value under `key` with the time it was set, or None."""
    async with (
        db.locked(),
        db.execute("SELECT key, value, updated_at FROM state WHERE key = ?", (key,)) as cur,
    ):
        row = await cur.fetchone()
    if row is None:
        return None
    return StateEntry(
        key=str(row["key"]), value=str(row["value"]), updated_at=from_db_time(row["updated_at"])
    )


async def set_state(db: Database, key: str, value: str | None, now: datetime) -> None:
    """Store `value` under `key`; None deletes the key."""
    async with db.transaction():
        if value is None:
            await db.execute("DELETE FROM state WHERE key = ?", (key,))
        else:
            await db.execute(
                "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET"
                "  value = excluded.value, updated_at = excluded.updated_at",
                (key, value, to_db_time(now)),
            )
