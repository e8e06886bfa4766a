"""storage.subscriptions: subscribe/unsubscribe, removing and migrating chats."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import (
    Database,
    NewAlert,
    Subscription,
    count_subscriptions,
    due_deliveries,
    list_subscriptions,
    mark_delivered,
    migrate_chat,
    record_poll,
    remove_chat,
    subscribe,
    unsubscribe,
)
from tests.fakes.storage_support import T0, is_subscribed, outbox_stats

OLD, NEW = -4001, -1004001  # a group and the supergroup it became


async def _alert(db: Database, task_id: int = 1) -> int:
    (alert_id,) = await record_poll(
        db, tasks=[], alerts=[NewAlert("completed", task_id, {"id": task_id})], now=T0
    )
    return alert_id


async def _rows(db: Database) -> list[tuple[int, int, int, str, str | None]]:
    """(alert_id, chat_id, thread_id, state, last_error) of every delivery."""
    rows = await db.execute_fetchall(
        "SELECT alert_id, chat_id, thread_id, state, last_error FROM deliveries"
        " ORDER BY alert_id, chat_id, thread_id"
    )
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


@pytest.mark.parametrize("thread_id", [None, 7])
async def test_subscribe_and_unsubscribe_are_idempotent(
    db: Database, thread_id: int | None
) -> None:
    assert await subscribe(db, 42, thread_id, T0) is True
    assert await subscribe(db, 42, thread_id, T0 + timedelta(hours=1)) is False
    assert await is_subscribed(db, 42, thread_id)
    assert await list_subscriptions(db) == [Subscription(42, thread_id, T0)]  # first time kept

    assert await unsubscribe(db, 42, thread_id) is True
    assert await unsubscribe(db, 42, thread_id) is False
    assert not await is_subscribed(db, 42, thread_id)
    assert await count_subscriptions(db) == 0


@pytest.mark.parametrize(
    ("subscribed", "asked", "expected"),
    [
        (None, None, True),
        (None, 0, True),  # 0 is how "no topic" is stored; Telegram never uses it as a topic id
        (None, 7, False),
        (7, None, False),
        (7, 7, True),
        (7, 8, False),
    ],
)
async def test_thread_is_part_of_the_key(
    db: Database, subscribed: int | None, asked: int | None, expected: bool
) -> None:
    await subscribe(db, 42, subscribed, T0)
    assert await is_subscribed(db, 42, asked) is expected


async def test_topics_of_one_chat_are_separate_subscriptions(db: Database) -> None:
    for n, thread in enumerate([None, 3, 5]):
        assert await subscribe(db, 42, thread, T0 + timedelta(minutes=n))
    await subscribe(db, 7, None, T0 + timedelta(minutes=9))
    assert [(s.chat_id, s.thread_id) for s in await list_subscriptions(db)] == [
        (42, None),
        (42, 3),
        (42, 5),
        (7, None),
    ]
    assert await count_subscriptions(db) == 4
    assert await unsubscribe(db, 42, 3)
    assert await count_subscriptions(db) == 3


async def test_unsubscribe_keeps_already_queued_deliveries(db: Database) -> None:
    await subscribe(db, 42, None, T0)
    await _alert(db)
    await unsubscribe(db, 42, None)
    assert [d.chat_id for d in await due_deliveries(db, T0)] == [42]


async def test_remove_chat_drops_all_topics_and_pending_deliveries(
    db: Database,
) -> None:
    for chat, thread in [(42, None), (42, 5), (7, None)]:
        await subscribe(db, chat, thread, T0)
    first = await _alert(db, 1)
    delivered = next(d for d in await due_deliveries(db, T0) if d.chat_id == 42)
    await mark_delivered(db, delivered.delivery_id, T0)
    second = await _alert(db, 2)

    assert await remove_chat(db, 42, now=T0, reason="bot was blocked") == 2
    assert await remove_chat(db, 42, now=T0) == 0
    assert [(s.chat_id, s.thread_id) for s in await list_subscriptions(db)] == [(7, None)]
    assert await _rows(db) == [
        (first, 7, 0, "pending", None),
        (first, 42, 0, "delivered", None),  # history stays as it was
        (first, 42, 5, "dropped", "bot was blocked"),
        (second, 7, 0, "pending", None),
        (second, 42, 0, "dropped", "bot was blocked"),
        (second, 42, 5, "dropped", "bot was blocked"),
    ]
    assert {d.chat_id for d in await due_deliveries(db, T0)} == {7}


async def test_migrate_chat_moves_subscriptions_and_pending_deliveries(
    db: Database,
) -> None:
    await subscribe(db, OLD, None, T0)
    await subscribe(db, 7, None, T0)
    first = await _alert(db, 1)
    done = next(d for d in await due_deliveries(db, T0) if d.chat_id == OLD)
    await mark_delivered(db, done.delivery_id, T0)
    second = await _alert(db, 2)
    pending = next(d for d in await due_deliveries(db, T0) if d.chat_id == OLD)

    assert await migrate_chat(db, OLD, NEW, now=T0) == 1
    # created_at travels with the subscription (ties are ordered by chat id).
    assert [(s.chat_id, s.created_at) for s in await list_subscriptions(db)] == [
        (NEW, T0),
        (7, T0),
    ]
    assert not await is_subscribed(db, OLD, None)
    assert await _rows(db) == [
        (first, OLD, 0, "delivered", None),  # history keeps the id it was sent to
        (first, 7, 0, "pending", None),
        (second, NEW, 0, "pending", None),
        (second, 7, 0, "pending", None),
    ]
    # Same delivery id, so a loop that hit "migrated" can retry the very row it holds.
    moved = next(
        d for d in await due_deliveries(db, T0) if d.alert_id == second and d.chat_id == NEW
    )
    assert moved.delivery_id == pending.delivery_id
    assert moved.chat_id == NEW


async def test_migrate_chat_merges_when_new_id_is_already_there(db: Database) -> None:
    await subscribe(db, OLD, None, T0)
    await subscribe(db, OLD, 3, T0)
    await subscribe(db, NEW, None, T0 + timedelta(hours=1))
    alert = await _alert(db)

    # (OLD, None) merges into the existing (NEW, None); (OLD, 3) moves.
    assert await migrate_chat(db, OLD, NEW, now=T0) == 1
    assert sorted((s.chat_id, s.thread_id or 0) for s in await list_subscriptions(db)) == [
        (NEW, 0),
        (NEW, 3),
    ]
    rows = await _rows(db)
    assert [r[:4] for r in rows] == [
        (alert, NEW, 0, "pending"),
        (alert, NEW, 3, "pending"),
        (alert, OLD, 0, "dropped"),  # the new chat already has this alert: never twice
    ]
    assert rows[2][4] is not None
    assert "migrated" in rows[2][4]
    assert (await outbox_stats(db))["pending"] == 2


async def test_migrate_chat_to_itself_is_a_no_op(db: Database) -> None:
    await subscribe(db, OLD, None, T0)
    assert await migrate_chat(db, OLD, OLD, now=T0) == 0
    assert await is_subscribed(db, OLD, None)
