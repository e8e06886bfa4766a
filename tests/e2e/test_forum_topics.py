"""End-to-end: alerts to forum topics that admins closed or deleted, and commands in them.

The bot runs for real against the Bot API emulator, which answers a post into a closed topic
with "Bad Request: TOPIC_CLOSED" and into a deleted one with "message thread not found".
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import storage
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask
from bot.tg_emulator import Call
from tests.fakes.rig import ADMIN_CHAT, TEAM_GROUP, Rig, running_rig
from tests.fakes.smsc_support import until
from tests.fakes.storage_support import is_subscribed, outbox_stats

pytestmark = pytest.mark.asyncio

REFUSED, OPEN = 11, 12  # TEAM_GROUP's two subscribed topics
SUBSCRIBED = ((TEAM_GROUP, REFUSED), (TEAM_GROUP, OPEN), (ADMIN_CHAT, None))


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A bot whose delivery passes the test runs by hand; two topics and a chat subscribed."""
    async with running_rig(tmp_path, options={"run_delivery": False}) as rig:
        for chat_id, thread_id in SUBSCRIBED:
            await storage.subscribe(rig.services.db, chat_id, thread_id, rig.clock.now())
        yield rig


def alert_calls(rig: Rig) -> dict[tuple[int, int | None], list[Call]]:
    """The alert uploads (sendDocument) per chat and topic, refused ones included."""
    calls: dict[tuple[int, int | None], list[Call]] = {}
    for call in rig.emu.calls_to("sendDocument"):
        key = (int(call.params["chat_id"]), call.params.get("message_thread_id"))
        calls.setdefault(key, []).append(call)
    return calls


def events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


async def complete_a_task(rig: Rig, task_id: int) -> None:
    await rig.finish_task(
        SimTask(task_id, f"report {task_id}", TaskStatus.RUNNING), TaskStatus.COMPLETED
    )


async def deliver_for_a_while(rig: Rig) -> None:
    """Delivery passes over the next hours: whatever is retried would go out again."""
    await rig.deliver()
    for _ in range(5):
        rig.clock.advance(3600)
        await rig.deliver()


async def first_alert_refused_in_one_topic(rig: Rig, description: str) -> None:
    """Task 301 completes; the REFUSED topic answers `description` once, the others take it."""
    await complete_a_task(rig, 301)
    await deliver_for_a_while(rig)
    calls = alert_calls(rig)
    refused = calls[(TEAM_GROUP, REFUSED)]
    # One attempt: nothing is retried into a topic that is gone or closed.
    assert [(c.status, c.response["description"]) for c in refused] == [(400, description)]
    assert [c.status for c in calls[(TEAM_GROUP, OPEN)]] == [200]
    assert [c.status for c in calls[(ADMIN_CHAT, None)]] == [200]


async def test_a_deleted_topic_is_unsubscribed_after_one_refused_alert(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    rig.emu.delete_topic(TEAM_GROUP, REFUSED)
    await first_alert_refused_in_one_topic(rig, "Bad Request: message thread not found")

    db = rig.services.db
    assert not await is_subscribed(db, TEAM_GROUP, REFUSED)
    assert await is_subscribed(db, TEAM_GROUP, OPEN)
    assert await is_subscribed(db, ADMIN_CHAT, None)
    stats = await outbox_stats(db)
    assert (stats["delivered"], stats["dropped"], stats["pending"]) == (2, 1, 0)
    [dropped] = events(caplog, "topic_gone")
    assert getattr(dropped, "chat_id", None) == TEAM_GROUP
    # PTB hands the description out reworded ("Message thread not found"), the words stay.
    said = dropped.getMessage().lower()
    assert "unsubscribed" in said
    assert "message thread not found" in said
    assert events(caplog, "alert_retry") == []
    # /status counts what is left subscribed: the other topic and the private chat.
    assert "Subscribed chats: 2" in await rig.reply_text(ADMIN_CHAT, "/status")

    # The next completion is not even queued for the topic.
    await complete_a_task(rig, 302)
    await deliver_for_a_while(rig)
    calls = alert_calls(rig)
    assert len(calls[(TEAM_GROUP, REFUSED)]) == 1
    assert len(calls[(TEAM_GROUP, OPEN)]) == len(calls[(ADMIN_CHAT, None)]) == 2


async def test_a_closed_topic_misses_alerts_once_each_and_gets_them_again_when_reopened(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    rig.emu.close_topic(TEAM_GROUP, REFUSED)
    await first_alert_refused_in_one_topic(rig, "Bad Request: TOPIC_CLOSED")
    assert not any(m.get("message_thread_id") == REFUSED for m in rig.emu.messages(TEAM_GROUP))
    db = rig.services.db
    assert await is_subscribed(db, TEAM_GROUP, REFUSED)  # closed is not gone: admins reopen
    stats = await outbox_stats(db)
    assert (stats["delivered"], stats["dropped"], stats["pending"]) == (2, 1, 0)
    [dropped] = events(caplog, "topic_closed")
    assert getattr(dropped, "chat_id", None) == TEAM_GROUP
    assert "topic closed" in dropped.getMessage().lower()
    assert events(caplog, "alert_retry") == []
    assert events(caplog, "topic_gone") == []
    assert "Subscribed chats: 3" in await rig.reply_text(ADMIN_CHAT, "/status")

    rig.emu.reopen_topic(TEAM_GROUP, REFUSED)
    await complete_a_task(rig, 302)
    await deliver_for_a_while(rig)
    calls = alert_calls(rig)
    assert [c.status for c in calls[(TEAM_GROUP, REFUSED)]] == [400, 200]
    assert len(calls[(TEAM_GROUP, OPEN)]) == len(calls[(ADMIN_CHAT, None)]) == 2
    [reached] = [m for m in rig.emu.messages(TEAM_GROUP) if m.get("message_thread_id") == REFUSED]
    assert "report 302" in reached["caption"]


async def test_a_command_in_a_closed_topic_gets_a_reply_only_from_an_admin_bot(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Only admins can post in a closed topic; the bot's reply is refused unless it is one too."""
    rig.emu.close_topic(TEAM_GROUP, REFUSED)
    asked = {"chat_type": "supergroup", "title": "Team", "message_thread_id": REFUSED}
    await rig.say(TEAM_GROUP, "/status", wait=None, **asked)
    # The reply is refused; the error handler knows why and sends no "sorry" into the same topic.
    refused = await rig.emu.wait_for("sendMessage", chat_id=TEAM_GROUP, count=1, timeout=10.0)
    assert [(c.params["message_thread_id"], c.status) for c in refused] == [(REFUSED, 400)]
    assert refused[0].response["description"] == "Bad Request: TOPIC_CLOSED"
    said = "reply refused: the forum topic is closed"
    await until(lambda: any(r.getMessage() == said for r in caplog.records), said, within=10.0)
    to_closed = [c for c in rig.emu.calls_to("sendMessage") if c.params.get("message_thread_id")]
    assert [c.params["message_thread_id"] for c in to_closed] == [REFUSED]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # not an "unhandled error"
    assert not any(m.get("message_thread_id") == REFUSED for m in rig.emu.messages(TEAM_GROUP))
    # The bot carries on: the open topic is answered.
    text = await rig.reply_text(TEAM_GROUP, "/status", **{**asked, "message_thread_id": OPEN})
    assert "Subscribed chats: 3" in text

    rig.emu.set_bot_membership(TEAM_GROUP, "administrator", can_manage_topics=True)
    assert "Subscribed chats: 3" in await rig.reply_text(TEAM_GROUP, "/status", **asked)
