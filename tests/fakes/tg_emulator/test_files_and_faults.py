"""Uploads, re-sends and downloads of documents; injected failures, blocks, stop and restart."""

from __future__ import annotations

import asyncio
import datetime as dtm

import aiohttp
import pytest
import telegram
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.tg_emulator import ApiFailure, TelegramEmulator
from tests.fakes.tg_emulator.support import GROUP, TOKEN, USER, raw

# ---- documents and files ----------------------------------------------------------------


async def test_document_upload_resend_by_file_id_and_download(
    bot: telegram.Bot, emu: TelegramEmulator
) -> None:
    payload = b"id;status\n1;done\n"
    sent = await bot.send_document(
        USER, payload, filename="task-1.csv", caption="<i>Task</i> #1", parse_mode="HTML"
    )
    document = sent.document
    assert document is not None
    assert (document.file_name, document.mime_type, document.file_size) == (
        "task-1.csv",
        "text/csv",
        len(payload),
    )
    assert sent.caption == "Task #1"
    assert emu.documents == {document.file_id: payload}
    call = emu.calls_to("sendDocument")[0]
    assert call.files["document"].content == payload
    assert "document" not in call.params

    again = await bot.send_document(GROUP, document.file_id)
    assert again.document is not None
    assert again.document.file_unique_id == document.file_unique_id
    assert emu.documents[again.document.file_id] == payload

    file = await bot.get_file(document.file_id)
    assert bytes(await file.download_as_bytearray()) == payload

    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier/http url specified"):
        await bot.send_document(USER, "BQACAgIAAxkBAAI-no-such-file")
    with pytest.raises(BadRequest, match=r"(?i)message caption is too long"):
        await bot.send_document(USER, payload, filename="x.csv", caption="c" * 1025)


async def test_upload_over_the_limit_is_413(bot: telegram.Bot, emu: TelegramEmulator) -> None:
    emu.max_upload_bytes = 1_000
    await bot.send_document(USER, b"x" * 1_000, filename="fits.bin")
    with pytest.raises(NetworkError, match="Request Entity Too Large"):
        await bot.send_document(USER, b"x" * 1_001, filename="big.bin")
    call = emu.calls_to("sendDocument")[-1]
    assert (call.status, call.response) == (
        413,
        {"ok": False, "error_code": 413, "description": "Request Entity Too Large"},
    )
    assert len(emu.documents) == 1


async def test_real_50_mb_limit(bot: telegram.Bot, emu: TelegramEmulator) -> None:
    assert emu.max_upload_bytes == 50 * 1024 * 1024
    with pytest.raises(NetworkError, match="Request Entity Too Large"):
        await bot.send_document(USER, bytes(50 * 1024 * 1024 + 1), filename="huge.bin")
    assert emu.documents == {}


# ---- faults -----------------------------------------------------------------------------


async def test_injected_failures(bot: telegram.Bot, emu: TelegramEmulator) -> None:
    emu.fail("sendMessage", ApiFailure.retry_after(7))
    with pytest.raises(RetryAfter) as retry:
        await bot.send_message(USER, "x")
    assert retry.value.retry_after == dtm.timedelta(seconds=7)
    assert emu.calls[-1].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }

    emu.fail("sendMessage", ApiFailure.server_error(), count=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(USER, "x")
    assert emu.calls[-1].status == 502

    emu.fail("sendMessage", ApiFailure.blocked())
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "x")

    emu.fail("sendMessage", ApiFailure.chat_not_found(), chat_id=USER + 1)
    await bot.send_message(USER, "other chats are unaffected")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(USER + 1, "x")
    await bot.send_message(USER + 1, "only once")
    assert [c.ok for c in emu.calls_to("sendMessage")] == [False] * 4 + [True, False, True]


async def test_block_and_migrate(bot: telegram.Bot, emu: TelegramEmulator) -> None:
    emu.block(USER)
    with pytest.raises(Forbidden):
        await bot.send_message(USER, "x")
    with pytest.raises(Forbidden):
        await bot.send_chat_action(USER, "typing")
    emu.unblock(USER)
    await bot.send_message(USER, "back")

    emu.migrate_chat(GROUP, -1001234567890)
    with pytest.raises(ChatMigrated) as migrated:
        await bot.send_message(GROUP, "x")
    assert migrated.value.new_chat_id == -1001234567890
    assert emu.calls[-1].response["description"] == (
        "Bad Request: group chat was upgraded to a supergroup chat"
    )
    sent = await bot.send_message(-1001234567890, "moved")
    assert sent.chat.type == "supergroup"


async def test_timeout_failure_holds_until_the_client_gives_up(
    bot: telegram.Bot, emu: TelegramEmulator
) -> None:
    emu.fail("sendMessage", ApiFailure.timeout())
    with pytest.raises(TimedOut):
        await bot.send_message(USER, "x", read_timeout=0.2)
    call = (await emu.wait_for("sendMessage"))[0]
    assert (call.status, call.ok) == (0, False)
    await bot.send_message(USER, "the next one is answered")


async def test_stop_releases_held_requests_and_long_polls(http: aiohttp.ClientSession) -> None:
    emulator = TelegramEmulator(token=TOKEN)
    await emulator.start()
    emulator.fail("sendMessage", ApiFailure.timeout())
    held = asyncio.create_task(
        raw(http, emulator, "sendMessage", data={"chat_id": "1", "text": "x"})
    )
    poll = asyncio.create_task(raw(http, emulator, "getUpdates", data={"timeout": "60"}))
    await emulator.wait_for("sendMessage")
    await emulator.wait_until(lambda: emulator.active_polls == 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await emulator.stop()
    assert (await poll) == (200, {"ok": True, "result": []})
    assert (await held)[0] == 503
    assert loop.time() - started < 2


async def test_restart_keeps_port_and_state(http: aiohttp.ClientSession) -> None:
    emulator = TelegramEmulator(token=TOKEN)
    async with emulator:
        url = emulator.url
        emulator.send_message(USER, "queued before the outage")
    async with emulator:  # Telegram is back, on the same address, with the same backlog
        assert emulator.url == url
        status, body = await raw(http, emulator, "getUpdates", data={})
        assert status == 200
        assert [u["message"]["text"] for u in body["result"]] == ["queued before the outage"]
