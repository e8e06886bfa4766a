"""Which chats (and forum topics) get alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .chat_migrations import record_chat_migration
from .db import Database
from .encoding import from_db_time, thread_from_db, thread_to_db, to_db_time


@dataclass(frozen=True, slots=True)
class Subscription:
    """A chat, or one forum topic of it (`thread_id`), that receives alerts."""

    chat_id: int
    thread_id: int | None
    created_at: datetime


async def subscribe(db: Database, chat_id: int, thread_id: int | None, now: datetime) -> bool:
    """Subscribe the chat/topic; return True if it was not subscribed yet."""
    async with db.transaction():
        cur = await db.execute(
            "INSERT INTO subscriptions (chat_id, thread_id, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (chat_id, thread_id) DO NOTHING",
            (chat_id, thread_to_db(thread_id), to_db_time(now)),
        )
        return cur.rowcount == 1


async def unsubscribe(db: Database, chat_id: int, thread_id: int | None) -> bool:
    """Unsubscribe the chat/topic; return True if it was subscribed.

    Deliveries already queued for it stay: they were raised while it was subscribed.
    """
    async with db.transaction():
        cur = await db.execute(
            "DELETE FROM subscriptions WHERE chat_id = ? AND thread_id = ?",
            (chat_id, thread_to_db(thread_id)),
        )
        return cur.rowcount > 0


async def list_subscriptions(db: Database) -> list[Subscription]:
    """Return every subscription, oldest first."""
    async with db.locked():
        rows = await db.execute_fetchall(
            "SELECT chat_id, thread_id, created_at FROM subscriptions"
            " ORDER BY created_at, chat_id, thread_id"
        )
    return [
        Subscription(
            chat_id=int(row["chat_id"]),
            thread_id=thread_from_db(int(row["thread_id"])),
            created_at=from_db_time(row["created_at"]),
        )
        for row in rows
    ]


async def count_subscriptions(db: Database) -> int:
    """Return how many chats/topics are subscribed."""
    async with db.locked(), db.execute("SELECT COUNT(*) AS n FROM subscriptions") as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row["n"])


async def has_subscriptions(db: Database, chat_id: int) -> bool:
    """Tell whether the chat, or any forum topic of it, is subscribed."""
    async with (
        db.locked(),
        db.execute("SELECT 1 FROM subscriptions WHERE chat_id = ? LIMIT 1", (chat_id,)) as cur,
    ):
        row = await cur.fetchone()
    return row is not None


async def remove_chat(
    db: Database,
    chat_id: int,
    *,
    now: datetime,
    reason: str = "chat removed",
) -> int:
    """Drop every subscription of the chat and its pending deliveries; return subscriptions removed.

    For a chat that blocked the bot or no longer exists: nothing can reach it any more.
    """
    async with db.transaction():
        cur = await db.execute("DELETE FROM subscriptions WHERE chat_id = ?", (chat_id,))
        removed = cur.rowcount
        await db.execute(
            "UPDATE deliveries SET state = 'dropped', last_error = ?, finished_at = ?"
            " WHERE chat_id = ? AND state = 'pending'",
            (reason, to_db_time(now), chat_id),
        )
    return removed


async def migrate_chat(db: Database, old_chat_id: int, new_chat_id: int, *, now: datetime) -> int:
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
    async with db.transaction():
        # Remembered with the move, so access follows the group to its new id (handlers.access).
        await record_chat_migration(db, old_chat_id, new_chat_id, now=now)
        # NOT EXISTS skips the rows that would collide with an existing subscription of the new
        # id (SQLite's UPDATE OR IGNORE, portably); what remains under the old id afterwards are
        # exactly those duplicates.
        cur = await db.execute(
            "UPDATE subscriptions SET chat_id = ? WHERE chat_id = ? AND NOT EXISTS ("
            " SELECT 1 FROM subscriptions AS s WHERE s.chat_id = ?"
            " AND s.thread_id = subscriptions.thread_id)",
            (new_chat_id, old_chat_id, new_chat_id),
        )
        moved = cur.rowcount
        await db.execute("DELETE FROM subscriptions WHERE chat_id = ?", (old_chat_id,))
        await db.execute(
            "UPDATE deliveries SET chat_id = ? WHERE chat_id = ? AND state = 'pending'"
            " AND NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.chat_id = ?"
            " AND d.alert_id = deliveries.alert_id AND d.thread_id = deliveries.thread_id)",
            (new_chat_id, old_chat_id, new_chat_id),
        )
        await db.execute(
            "UPDATE deliveries SET state = 'dropped', last_error = ?, finished_at = ?"
            " WHERE chat_id = ? AND state = 'pending'",
            (f"chat migrated to {new_chat_id}; it already has this alert", when, old_chat_id),
        )
    return moved
