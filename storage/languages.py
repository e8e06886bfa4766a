"""The language each chat chose with /language: one row per chat, none for "not chosen"."""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from .db import locked, to_db_time, transaction


async def get_chat_language(conn: aiosqlite.Connection, chat_id: int) -> str | None:
    """The language code `chat_id` chose, or None."""
    async with (
        locked(conn),
        conn.execute("SELECT language FROM chat_languages WHERE chat_id = ?", (chat_id,)) as cur,
    ):
        row = await cur.fetchone()
    return None if row is None else str(row[0])


async def set_chat_language(
    conn: aiosqlite.Connection, chat_id: int, language: str | None, now: datetime
) -> None:
    """Store `chat_id`'s choice; None forgets it (back to the automatic choice)."""
    async with transaction(conn):
        if language is None:
            await conn.execute("DELETE FROM chat_languages WHERE chat_id = ?", (chat_id,))
        else:
            await conn.execute(
                "INSERT INTO chat_languages (chat_id, language, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (chat_id) DO UPDATE SET"
                "  language = excluded.language, updated_at = excluded.updated_at",
                (chat_id, language, to_db_time(now)),
            )
