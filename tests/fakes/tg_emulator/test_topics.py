"""The emulator's forum topics: closed, reopened and deleted by admins, driven by a real PTB Bot."""

from __future__ import annotations

import io

import pytest
import telegram
from telegram import ReplyParameters
from telegram.error import BadRequest

from bot.tg_emulator import TelegramEmulator

FORUM = -1_001_234_567
TOPIC, OTHER_TOPIC = 11, 12


async def test_a_closed_topic_refuses_posts_until_reopened(
    bot: telegram.Bot, emu: TelegramEmulator
) -> None:
    emu.close_topic(FORUM, TOPIC)
    with pytest.raises(BadRequest, match="Topic_closed"):  # PTB capitalises the description
        await bot.send_message(FORUM, "alert", message_thread_id=TOPIC)
    with pytest.raises(BadRequest, match="Topic_closed"):
        await bot.send_document(FORUM, io.BytesIO(b"a,b\n"), message_thread_id=TOPIC)
    refused = emu.calls[-1]
    assert refused.status == 400
    assert refused.response == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: TOPIC_CLOSED",
    }
    assert emu.documents == {}  # a refused upload keeps no file
    # The chat's other topics and its General topic are open.
    assert (await bot.send_message(FORUM, "x", message_thread_id=OTHER_TOPIC)).message_thread_id
    assert (await bot.send_message(FORUM, "y")).message_thread_id is None

    emu.reopen_topic(FORUM, TOPIC)
    sent = await bot.send_message(FORUM, "alert", message_thread_id=TOPIC)
    assert sent.message_thread_id == TOPIC
    assert [m["text"] for m in emu.messages(FORUM)] == ["x", "y", "alert"]


async def test_a_reply_goes_to_its_targets_topic_and_is_refused_there_when_closed(
    bot: telegram.Bot, emu: TelegramEmulator
) -> None:
    asked = emu.send_message(FORUM, "/status", chat_type="supergroup", message_thread_id=TOPIC)
    emu.close_topic(FORUM, TOPIC)
    with pytest.raises(BadRequest, match="Topic_closed"):
        await bot.send_message(
            FORUM, "reply", reply_parameters=ReplyParameters(asked["message"]["message_id"])
        )


async def test_an_admin_bot_that_manages_topics_still_posts_in_a_closed_one(
    bot: telegram.Bot, emu: TelegramEmulator
) -> None:
    emu.close_topic(FORUM, TOPIC)
    emu.set_bot_membership(FORUM, "administrator")  # an admin without the right: still closed
    with pytest.raises(BadRequest, match="Topic_closed"):
        await bot.send_message(FORUM, "alert", message_thread_id=TOPIC)

    update = emu.set_bot_membership(FORUM, "administrator", can_manage_topics=True)
    assert update["my_chat_member"]["new_chat_member"]["can_manage_topics"] is True
    assert (await bot.send_message(FORUM, "alert", message_thread_id=TOPIC)).message_id

    emu.set_bot_membership(FORUM, "member")  # demoted: the topic is closed to it again
    with pytest.raises(BadRequest, match="Topic_closed"):
        await bot.send_message(FORUM, "alert", message_thread_id=TOPIC)


async def test_a_deleted_topic_has_no_thread_and_no_messages(
    bot: telegram.Bot, emu: TelegramEmulator
) -> None:
    kept = await bot.send_message(FORUM, "in another topic", message_thread_id=OTHER_TOPIC)
    gone = await bot.send_message(FORUM, "in the topic", message_thread_id=TOPIC)
    emu.close_topic(FORUM, TOPIC)
    emu.delete_topic(FORUM, TOPIC)  # deleted wins over closed
    with pytest.raises(BadRequest, match="Message thread not found"):
        await bot.send_message(FORUM, "alert", message_thread_id=TOPIC)
    with pytest.raises(BadRequest, match="Message thread not found"):
        await bot.send_document(FORUM, io.BytesIO(b"a,b\n"), message_thread_id=TOPIC)
    assert emu.calls[-1].response["description"] == "Bad Request: message thread not found"
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("edited", chat_id=FORUM, message_id=gone.message_id)
    assert [m["message_id"] for m in emu.messages(FORUM)] == [kept.message_id]


async def test_closing_and_reopening_can_tell_the_bot(
    bot: telegram.Bot, emu: TelegramEmulator
) -> None:
    emu.add_chat(FORUM, chat_type="supergroup", title="Team")
    emu.close_topic(FORUM, TOPIC, emit_update=True)
    emu.reopen_topic(FORUM, TOPIC, emit_update=True)
    emu.close_topic(FORUM, OTHER_TOPIC)  # silent by default
    updates = await bot.get_updates(timeout=0)
    closed, reopened = (u.message for u in updates)
    assert closed is not None
    assert reopened is not None
    assert closed.forum_topic_closed is not None
    assert reopened.forum_topic_reopened is not None
    assert (closed.message_thread_id, closed.is_topic_message) == (TOPIC, True)
    assert closed.chat.is_forum
    assert closed.chat.title == "Team"  # a known chat keeps what it was
