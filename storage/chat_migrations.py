"""Groups upgraded to supergroups: which old chat id became which new one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .db import Database
from .encoding import from_db_time, to_db_time


@dataclass(frozen=True, slots=True)
class ChatMigration:
    """A group (`old_chat_id`) that became the supergroup `new_chat_id`."""

    old_chat_id: int
    new_chat_id: int
    migrated_at: datetime


async def record_chat_migration(
    db: Database, old_chat_id: int, new_chat_id: int, *, now: datetime
) -> bool:
    """Remember that the group became a supergroup; return True if this is news.

    The first record wins: Telegram upgrades a group once, and a later, different claim (a
    replayed or out-of-order update) must not redirect the group's access elsewhere.
    """
    if old_chat_id == new_chat_id:
        return False
    async with db.transaction():
        cur = await db.execute(
            "INSERT INTO chat_migrations (old_chat_id, new_chat_id, migrated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (old_chat_id) DO NOTHING",
            (old_chat_id, new_chat_id, to_db_time(now)),
        )
        return cur.rowcount == 1


async def migrated_from(db: Database, new_chat_id: int) -> list[int]:
    """The old ids that became `new_chat_id` (usually none, at most one in practice)."""
    async with db.locked():
        rows = await db.execute_fetchall(
            "SELECT old_chat_id FROM chat_migrations WHERE new_chat_id = ? ORDER BY old_chat_id",
            (new_chat_id,),
        )
    return [int(row["old_chat_id"]) for row in rows]


async def list_chat_migrations(db: Database) -> list[ChatMigration]:
    """Every recorded migration, newest first."""
    async with db.locked():
        rows = await db.execute_fetchall(
            "SELECT old_chat_id, new_chat_id, migrated_at FROM chat_migrations"
            " ORDER BY migrated_at DESC, old_chat_id"
        )
    return [
        ChatMigration(
            int(row["old_chat_id"]), int(row["new_chat_id"]), from_db_time(row["migrated_at"])
        )
        for row in rows
    ]


async def migration_targets(db: Database) -> dict[int, int]:
    """Old chat id -> the id it has now."""
    return {m.old_chat_id: m.new_chat_id for m in await list_chat_migrations(db)}
