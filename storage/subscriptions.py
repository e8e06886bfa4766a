"""Which chats (and forum topics) get alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from .chat_migrations import record_chat_migration
from .db import from_db_time, locked, thread_from_db, thread_to_db, to_db_time, transaction


@dataclass(frozen=True, slots=True)
class Subscription:
    """A chat, or one forum topic of it (`thread_id`), that receives alerts."""

    chat_id: int
    thread_id: int | None
    created_at: datetime


async def subscribe(
    conn: aiosqlite.Connection, chat_id: int, thread_id: int | None, now: datetime
) -> bool:
    """Subscribe the chat/topic; return True if it was not subscribed yet."""
    async with transaction(conn):
        cur = await conn.execute(
            "INSERT INTO subscriptions (chat_id, thread_id, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (chat_id, thread_id) DO NOTHING",
            (chat_id, thread_to_db(thread_id), to_db_time(now)),
        )
        return cur.rowcount == 1


async def unsubscribe(conn: aiosqlite.Connection, chat_id: int, thread_id: int | None) -> bool:
    """Unsubscribe the chat/topic; return True if it was subscribed.

    Deliveries already queued for it stay: they were raised while it was subscribed.
    """
    async with transaction(conn):
        cur = await conn.execute(
            "DELETE FROM subscriptions WHERE chat_id = ? AND thread_id = ?",
            (chat_id, thread_to_db(thread_id)),
        )
        return cur.rowcount > 0


async def list_subscriptions(conn: aiosqlite.Connection) -> list[Subscription]:
    """Return every subscription, oldest first."""
    async with locked(conn):
        rows = await conn.execute_fetchall(
            "SELECT chat_id, thread_id, created_at FROM subscriptions"
            " ORDER BY created_at, chat_id, thread_id"
        )
    return [
        Subscription(
            chat_id=int(chat_id),
            thread_id=thread_from_db(int(thread_id)),
            created_at=from_db_time(created_at),
        )
        for chat_id, thread_id, created_at in rows
    ]


async def count_subscriptions(conn: aiosqlite.Connection) -> int:
    """Return how many chats/topics are subscribed."""
    async with locked(conn), conn.execute("SELECT COUNT(*) FROM subscriptions") as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def is_subscribed(conn: aiosqlite.Connection, chat_id: int, thread_id: int | None) -> bool:
    """Tell whether the chat/topic is subscribed."""
    async with (
        locked(conn),
        conn.execute(
            "SELECT 1 FROM subscriptions WHERE chat_id = ? AND thread_id = ?",
            (chat_id, thread_to_db(thread_id)),
        ) as cur,
    ):
        row = await cur.fetchone()
    return row is not None


async def has_subscriptions(conn: aiosqlite.Connection, chat_id: int) -> bool:
    """Tell whether the chat, or any forum topic of it, is subscribed."""
    async with (
        locked(conn),
        conn.execute("SELECT 1 FROM subscriptions WHERE chat_id = ? LIMIT 1", (chat_id,)) as cur,
    ):
        row = await cur.fetchone()
    return row is not None


async def remove_chat(
    conn: aiosqlite.Connection,
    chat_id: int,
    *,
    now: datetime,
    reason: str = "chat removed",
) -> int:
    """Drop every subscription of the chat and its pending deliveries; return subscriptions removed.

    For a chat that blocked the bot or no longer exists: nothing can reach it any more.
    """
    async with transaction(conn):
        cur = await conn.execute("DELETE FROM subscriptions WHERE chat_id = ?", (chat_id,))
        removed = cur.rowcount
        await conn.execute(
            "UPDATE deliveries SET state = 'dropped', last_error = ?, finished_at = ?"
            " WHERE chat_id = ? AND state = 'pending'",
            (reason, to_db_time(now), chat_id),
        )
    return removed


async def migrate_chat(
    conn: aiosqlite.Connection, old_chat_id: int, new_chat_id: int, *, now: datetime
) -> int:
    """Move the chat's subscriptions and pending deliveries to its new id; return how many moved.

    Also records the migration (`chat_migrations`), whoever noticed it: a service message, or
    a ChatMigrated answer to a send.

    For a group upgraded to a supergroup. Where the new id is already subscribed (same topic)
    the two merge; where it already has a delivery of the same alert, the old chat's copy is
    dropped, so the alert still reaches the chat exactly once. Delivery ids are kept, so a
    delivery loop holding one can retry it right away. Merged subscriptions are not counted.
    """
    if old_chat_id == new_chat_id:
        return 0
    when = to_db_time(now)
    async with transaction(conn):
        # Remembered with the move, so access follows the group to its new id (handlers.access).
        await record_chat_migration(conn, old_chat_id, new_chat_id, now=now)
        # OR IGNORE skips the rows that would collide with an existing subscription of the new
        # id; what remains under the old id afterwards are exactly those duplicates.
        cur = await conn.execute(
            "UPDATE OR IGNORE subscriptions SET chat_id = ? WHERE chat_id = ?",
            (new_chat_id, old_chat_id),
        )
        moved = cur.rowcount
        await conn.execute("DELETE FROM subscriptions WHERE chat_id = ?", (old_chat_id,))
        await conn.execute(
            "UPDATE OR IGNORE deliveries SET chat_id = ? WHERE chat_id = ? AND state = 'pending'",
            (new_chat_id, old_chat_id),
        )
        await conn.execute(
            "UPDATE deliveries SET state = 'dropped', last_error = ?, finished_at = ?"
            " WHERE chat_id = ? AND state = 'pending'",
            (f"chat migrated to {new_chat_id}; it already has this alert", when, old_chat_id),
        )
    return moved
