"""The language each chat chose with /language: one row per chat, none for "not chosen"."""

from __future__ import annotations

from datetime import datetime

from .db import Database
from .encoding import to_db_time


async def get_chat_language(db: Database, chat_id: int) -> str | None:
    """The language code `chat_id` chose, or None."""
    async with (
        db.locked(),
        db.execute("SELECT language FROM chat_languages WHERE chat_id = ?", (chat_id,)) as cur,
    ):
        row = await cur.fetchone()
    return None if row is None else str(row["language"])


async def set_chat_language(
    db: Database, chat_id: int, language: str | None, now: datetime
) -> None:
    """Store `chat_id`'s choice; None forgets it (back to the automatic choice)."""
    async with db.transaction():
        if language is None:
            await db.execute("DELETE FROM chat_languages WHERE chat_id = ?", (chat_id,))
        else:
            await db.execute(
                "INSERT INTO chat_languages (chat_id, language, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (chat_id) DO UPDATE SET"
                "  language = excluded.language, updated_at = excluded.updated_at",
                (chat_id, language, to_db_time(now)),
            )
