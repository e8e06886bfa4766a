"""Flood limits on a fake clock, and a real PTB Application polling the emulator."""

from __future__ import annotations

import datetime as dtm

import pytest
import telegram
from telegram import Update
from telegram.error import RetryAfter
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from bot.clock import FakeClock
from bot.tg_emulator import TelegramEmulator, WaitTimeoutError
from tests.fakes.tg_emulator.support import GROUP, TOKEN, USER

# ---- flood limits -----------------------------------------------------------------------


async def test_flood_limits_with_a_fake_clock(bot: telegram.Bot, emu: TelegramEmulator) -> None:
    clock = FakeClock()
    emu.clock = clock
    emu.enforce_flood_limits = True

    await bot.send_message(USER, "one")
    with pytest.raises(RetryAfter) as retry:
        await bot.send_message(USER, "two in the same second")
    assert retry.value.retry_after == dtm.timedelta(seconds=1)
    clock.advance(1.0)
    await bot.send_message(USER, "two, a second later")

    for i in range(20):  # 20 a minute to one group, one a second
        clock.advance(1.0)
        await bot.send_message(GROUP, f"group {i}")
    clock.advance(1.0)
    with pytest.raises(RetryAfter) as retry:
        await bot.send_message(GROUP, "the 21st within a minute")
    assert retry.value.retry_after == dtm.timedelta(seconds=40)

    clock.advance(60.0)
    for chat in range(30):  # 30 a second overall
        await bot.send_message(USER + 1 + chat, "burst")
    with pytest.raises(RetryAfter):
        await bot.send_message(USER + 100, "the 31st this second")
    await bot.send_chat_action(USER + 100, "typing")  # not a message: not limited
    assert emu.flood_429s == 3


# ---- a real Application -----------------------------------------------------------------


async def test_application_long_polling_answers_ping(emu: TelegramEmulator) -> None:
    async def ping(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("pong")

    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{emu.url}/bot{{token}}")
        .base_file_url(f"{emu.url}/file/bot{{token}}")
        .build()
    )
    app.add_handler(CommandHandler("ping", ping))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            emu.send_message(USER, "/ping")
            emu.send_message(GROUP, "/ping@smsc_tasks_bot", chat_type="supergroup", title="T")
            await emu.wait_for("sendMessage", count=2)
        finally:
            await app.updater.stop()
            await app.stop()
    replies = {c.params["chat_id"]: c.params["text"] for c in emu.calls_to("sendMessage")}
    assert replies == {USER: "pong", GROUP: "pong"}
    assert emu.pending_updates == []  # the shutdown poll confirmed them


async def test_wait_for_times_out_with_context(emu: TelegramEmulator) -> None:
    with pytest.raises(WaitTimeoutError, match="sendMessage"):
        await emu.wait_for("sendMessage", timeout=0.05)
