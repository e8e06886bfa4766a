"""End-to-end: membership from the updates (issue 9).

The bot removed, kicked or blocked ends the chat's subscriptions at once; a group upgraded to a
supergroup keeps its subscriptions and its access under the new id, across restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import storage
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask
from tests.fakes.rig import ADMIN_CHAT, TEAM_GROUP, Rig, running_rig
from tests.fakes.storage_support import is_subscribed

pytestmark = pytest.mark.asyncio

NEW_GROUP = -1_001_000_777  # the supergroup TEAM_GROUP becomes
STRANGE_GROUP = -5550002


async def eventually(
    check: Callable[[], Coroutine[Any, Any, bool]],
    timeout: float = 10.0,  # noqa: ASYNC109 - a safety net, like the emulator's waits
) -> None:
    """Wait until an asynchronous condition holds (the bot handles updates concurrently)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition still false")
        await asyncio.sleep(0.02)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with running_rig(tmp_path, options={"run_delivery": False}) as rig:
        yield rig


async def subscribed(rig: Rig, chat_id: int) -> bool:
    return await storage.has_subscriptions(rig.services.db, chat_id)


async def subscribe_group(rig: Rig, chat_id: int = TEAM_GROUP, **kwargs: Any) -> None:
    text = await rig.reply_text(chat_id, "/subscribe", chat_type="group", title="Team", **kwargs)
    assert "Subscribed" in text


@pytest.mark.parametrize("status", ["kicked", "left"])
async def test_removed_from_a_group_ends_its_subscriptions_at_once(
    rig: Rig, status: str, caplog: pytest.LogCaptureFixture
) -> None:
    await subscribe_group(rig)
    await subscribe_group(rig, message_thread_id=5)
    rig.emu.set_bot_membership(TEAM_GROUP, status)

    async def gone() -> bool:
        return not await subscribed(rig, TEAM_GROUP)

    await eventually(gone)
    removed = [r for r in caplog.records if getattr(r, "event", None) == "bot_removed"]
    assert [getattr(r, "chat_id", None) for r in removed] == [TEAM_GROUP]
    # The next completion is not even queued for the chat: no failed send is needed to learn it.
    await rig.finish_task(SimTask(7, "after kick", TaskStatus.RUNNING), TaskStatus.COMPLETED)
    assert await rig.deliver() == 0
    assert rig.emu.calls_to("sendDocument", chat_id=TEAM_GROUP) == []


async def test_user_blocking_the_bot_ends_private_subscription(rig: Rig) -> None:
    assert "Subscribed" in await rig.reply_text(ADMIN_CHAT, "/subscribe")
    rig.emu.set_bot_membership(ADMIN_CHAT, "kicked")

    async def gone() -> bool:
        return not await subscribed(rig, ADMIN_CHAT)

    await eventually(gone)


async def test_restricted_without_membership_counts_as_removed(rig: Rig) -> None:
    await subscribe_group(rig)
    rig.emu.set_bot_membership(TEAM_GROUP, "restricted")

    async def gone() -> bool:
        return not await subscribed(rig, TEAM_GROUP)

    await eventually(gone)


async def test_promoted_or_readded_keeps_subscriptions(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    await subscribe_group(rig)
    rig.emu.set_bot_membership(TEAM_GROUP, "administrator")
    rig.emu.set_bot_membership(-777_000, "member", old_status="left")  # added to a stranger group

    async def both_seen() -> bool:
        events = [getattr(r, "event", None) for r in caplog.records]
        return events.count("bot_membership") == 2

    await eventually(both_seen)
    assert await subscribed(rig, TEAM_GROUP)
    assert rig.emu.calls_to("sendMessage", chat_id=-777_000) == []  # nothing said to strangers


async def migrated(rig: Rig) -> bool:
    return await storage.migration_targets(rig.services.db) == {TEAM_GROUP: NEW_GROUP}


async def test_upgraded_group_keeps_subscriptions_and_access(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    await subscribe_group(rig)
    rig.emu.migrate_chat(TEAM_GROUP, NEW_GROUP, emit_updates=True)
    await eventually(lambda: migrated(rig))
    assert not await subscribed(rig, TEAM_GROUP)
    assert await is_subscribed(rig.services.db, NEW_GROUP, None)
    # The supergroup is let in although ALLOWED_CHAT_IDS names only the old group.
    text = await rig.reply_text(NEW_GROUP, "/tasks", chat_type="supergroup", title="Team")
    assert "not allowed" not in text
    status = await rig.reply_text(ADMIN_CHAT, "/status")
    assert f"{TEAM_GROUP} → {NEW_GROUP}" in status
    logged = [r for r in caplog.records if getattr(r, "event", None) == "chat_migrated"]
    assert len(logged) == 1  # both service messages, one migration
    # Alerts go to the new id.
    await rig.finish_task(SimTask(8, "after upgrade", TaskStatus.RUNNING), TaskStatus.FAILED)
    await rig.deliver()
    assert len(rig.emu.calls_to("sendMessage", chat_id=NEW_GROUP, ok=True)) == 2
    assert rig.emu.calls_to("sendMessage", chat_id=TEAM_GROUP, ok=False) == []


async def test_upgrade_survives_a_restart(rig: Rig) -> None:
    await subscribe_group(rig)
    rig.emu.migrate_chat(TEAM_GROUP, NEW_GROUP, emit_updates=True)
    await eventually(lambda: migrated(rig))
    await rig.restart()
    # Start-up keeps the new id's subscription (it is the allowed group, renamed by Telegram).
    assert await is_subscribed(rig.services.db, NEW_GROUP, None)
    text = await rig.reply_text(NEW_GROUP, "/tasks", chat_type="supergroup", title="Team")
    assert "not allowed" not in text


async def test_upgraded_alert_chat_is_subscribed_under_its_new_id_at_start(
    tmp_path: Path,
) -> None:
    async with running_rig(
        tmp_path, options={"run_delivery": False}, alert_chat_ids=str(TEAM_GROUP)
    ) as rig:
        rig.emu.migrate_chat(TEAM_GROUP, NEW_GROUP, emit_updates=True)
        await eventually(lambda: migrated(rig))
        await rig.restart()
        subs = await storage.list_subscriptions(rig.services.db)
        assert [s.chat_id for s in subs] == [NEW_GROUP]


async def test_chat_migrated_on_a_reply_moves_access(rig: Rig) -> None:
    await subscribe_group(rig)
    rig.emu.migrate_chat(TEAM_GROUP, NEW_GROUP)  # no service messages seen
    rig.emu.send_message(TEAM_GROUP, "/status", chat_type="group", title="Team")
    await rig.emu.wait_for("sendMessage", chat_id=TEAM_GROUP, ok=False)
    await eventually(lambda: migrated(rig))
    assert await is_subscribed(rig.services.db, NEW_GROUP, None)
    text = await rig.reply_text(NEW_GROUP, "/tasks", chat_type="supergroup", title="Team")
    assert "not allowed" not in text


async def test_chat_migrated_on_an_alert_moves_access(rig: Rig) -> None:
    await subscribe_group(rig)
    rig.emu.migrate_chat(TEAM_GROUP, NEW_GROUP)
    await rig.finish_task(SimTask(9, "during upgrade", TaskStatus.RUNNING), TaskStatus.FAILED)
    await rig.deliver()
    assert await migrated(rig)  # recorded by the delivery path (storage.migrate_chat)
    text = await rig.reply_text(NEW_GROUP, "/tasks", chat_type="supergroup", title="Team")
    assert "not allowed" not in text


async def test_a_strangers_upgrade_grants_nothing(rig: Rig) -> None:
    new = -1_005_550_002
    rig.emu.migrate_chat(STRANGE_GROUP, new, emit_updates=True)
    text = await rig.reply_text(new, "/tasks@smsc_tasks_bot", chat_type="supergroup", title="X")
    assert "not allowed" in text
    assert await storage.migration_targets(rig.services.db) == {}
