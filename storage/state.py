"""Small key/value state: last successful poll, last error, "problem already reported", ...

Keys are dotted names owned by their writer (e.g. "watcher.last_poll_at"); "tasks.*" is
reserved for storage itself (see `tasks.BASELINE_KEY`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .db import Connection, from_db_time, locked, to_db_time, transaction


@dataclass(frozen=True, slots=True)
class StateEntry:
    """A stored value and when it was last set."""

    key: str
    value: str
    updated_at: datetime


async def get_state(conn: Connection, key: str) -> str | None:
    """Return the value stored under `key`, or None."""
    entry = await get_state_entry(conn, key)
    return None if entry is None else entry.value


async def get_state_entry(conn: Connection, key: str) -> StateEntry | None:
    """Return the value under `key` with the time it was set, or None."""
    async with (
        locked(conn),
        conn.execute("SELECT key, value, updated_at FROM state WHERE key = ?", (key,)) as cur,
    ):
        row = await cur.fetchone()
    if row is None:
        return None
    return StateEntry(key=str(row[0]), value=str(row[1]), updated_at=from_db_time(row[2]))


async def set_state(conn: Connection, key: str, value: str | None, now: datetime) -> None:
    """Store `value` under `key`; None deletes the key."""
    async with transaction(conn):
        if value is None:
            await conn.execute("DELETE FROM state WHERE key = ?", (key,))
        else:
            await conn.execute(
                "INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET"
                "  value = excluded.value, updated_at = excluded.updated_at",
                (key, value, to_db_time(now)),
            )
