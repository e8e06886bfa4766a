"""Updates by long poll and by webhook, buttons, edits, deletes and bot commands."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import telegram
from aiohttp import web
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Conflict

from bot.tg_emulator import TelegramEmulator
from tests.fakes.tg_emulator.support import GROUP, USER, raw

# ---- updates ----------------------------------------------------------------------------


async def test_get_updates_offset_limit_and_long_poll(
    bot: telegram.Bot, emu: TelegramEmulator
) -> None:
    first = emu.send_message(USER, "hello")
    emu.send_message(USER, "again")
    updates = await bot.get_updates(limit=1)
    assert [u.update_id for u in updates] == [first["update_id"]]
    assert updates[0].message is not None
    assert updates[0].message.text == "hello"
    updates = await bot.get_updates(offset=first["update_id"] + 1)  # confirms the first
    assert [u.message.text for u in updates if u.message] == ["again"]
    assert await bot.get_updates(offset=updates[-1].update_id + 1) == ()
    assert emu.pending_updates == []

    waiting = asyncio.create_task(bot.get_updates(timeout=5))
    await emu.wait_until(lambda: emu.active_polls == 1)
    injected = emu.send_message(USER, "wake up")
    (update,) = await waiting
    assert update.update_id == injected["update_id"]


async def test_second_poller_terminates_the_first(
    emu: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    first = asyncio.create_task(raw(http, emu, "getUpdates", data={"timeout": "5"}))
    await emu.wait_until(lambda: emu.active_polls == 1)
    assert await raw(http, emu, "getUpdates", data={"timeout": "0"}) == (
        200,
        {"ok": True, "result": []},
    )
    status, body = await first
    assert status == 409
    assert body["description"].startswith("Conflict: terminated by other getUpdates request")


async def test_group_command_entity_as_telegram_adds_it(
    bot: telegram.Bot, emu: TelegramEmulator
) -> None:
    update = emu.send_message(GROUP, "/get@smsc_tasks_bot 42", chat_type="group", title="Team")
    message = update["message"]
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 19}]
    assert message["chat"] == {"id": GROUP, "type": "group", "title": "Team"}
    assert message["from"]["id"] != GROUP
    parsed = Update.de_json(update, bot)
    assert parsed.effective_message is not None
    assert list(parsed.effective_message.parse_entities().values()) == ["/get@smsc_tasks_bot"]
    emoji = emu.send_message(USER, "👋 /start")["message"]
    assert emoji["entities"] == [{"type": "bot_command", "offset": 3, "length": 6}]
    assert "entities" not in emu.send_message(USER, "no command")["message"]


async def test_buttons_edits_and_deletes(bot: telegram.Bot, emu: TelegramEmulator) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Refresh", callback_data="r")]])
    sent = await bot.send_message(USER, "v1", reply_markup=keyboard)
    with pytest.raises(LookupError):
        emu.press_button(USER, sent.message_id, "nope", check_button=True)
    update = emu.press_button(USER, sent.message_id, "r", check_button=True)
    query = update["callback_query"]
    assert (query["data"], query["message"]["text"], query["from"]["id"]) == ("r", "v1", USER)
    (received,) = await bot.get_updates()
    assert received.callback_query is not None
    assert await received.callback_query.answer("ok")
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(query["id"])

    stale = emu.press_button(USER, 999, "from-before-a-redeploy")["callback_query"]
    assert stale["message"] == {"chat": emu.add_chat(USER), "message_id": 999, "date": 0}
    (received,) = await bot.get_updates(offset=received.update_id + 1)
    assert received.callback_query is not None
    assert received.callback_query.message is not None
    assert not received.callback_query.message.is_accessible  # Telegram's InaccessibleMessage

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("v1", USER, sent.message_id, reply_markup=keyboard)
    await bot.edit_message_text("<b>v2</b>", USER, sent.message_id, parse_mode="HTML")
    (stored,) = emu.messages(USER)
    assert stored["text"] == "v2"
    assert "reply_markup" not in stored  # omitted markup removes the keyboard, as on Telegram
    assert "edit_date" in stored
    await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=keyboard)
    assert emu.messages(USER)[0]["reply_markup"] == keyboard.to_dict()
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", USER, 999)

    assert await bot.delete_message(USER, sent.message_id)
    assert emu.messages(USER) == []
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(USER, sent.message_id)


async def test_commands(bot: telegram.Bot, emu: TelegramEmulator) -> None:
    commands = [BotCommand("tasks", "List deferred tasks"), BotCommand("get", "Download one")]
    assert await bot.set_my_commands(commands)
    assert emu.commands == [c.to_dict() for c in commands]
    assert await bot.get_my_commands() == tuple(commands)
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Tasks", "capitals are not allowed")])
    assert await bot.delete_my_commands()
    assert emu.commands == []
    assert await bot.get_my_commands() == ()


# ---- webhook ----------------------------------------------------------------------------


async def test_webhook_delivery_with_secret_and_conflict(
    bot: telegram.Bot, emu: TelegramEmulator
) -> None:
    received: list[tuple[dict[str, Any], str | None]] = []
    answers = [500, 200, 200]

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        )
        return web.Response(status=answers.pop(0))

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        with pytest.raises(BadRequest, match=r"(?i)https url must be provided"):
            await bot.set_webhook("http://example.com/hook")
        assert await bot.set_webhook(url, secret_token="s3cr3t_token")
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()
        emu.webhook_retry_delay = 0.0
        first = emu.send_message(USER, "via webhook")
        await emu.wait_for_deliveries(2)  # a 500 is retried, like Telegram does
        assert emu.webhook_deliveries == [(first, 500), (first, 200)]
        assert received == [(first, "s3cr3t_token")] * 2
        info = await bot.get_webhook_info()
        assert (info.url, info.pending_update_count) == (url, 0)
        assert info.last_error_message == "Wrong response from the webhook: 500"

        assert await bot.delete_webhook()
        second = emu.send_message(USER, "via polling")
        (update,) = await bot.get_updates()
        assert update.update_id == second["update_id"]
        assert len(emu.webhook_deliveries) == 2
    finally:
        await runner.cleanup()
