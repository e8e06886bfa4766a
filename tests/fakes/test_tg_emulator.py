"""The Bot API emulator, driven by a real python-telegram-bot `Bot`/`Application` and raw HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import telegram
from aiohttp import web
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from bot.clock import FakeClock
from bot.tg_emulator import ApiFailure, TelegramEmulator, WaitTimeoutError, parse_html, utf16_len
from bot.tg_emulator.entities import EntityParseError, parse_markdown_v2

TOKEN = "123456:TEST-token"
USER = 5001
GROUP = -100500


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """PTB 22 warns (an error here) when RetryAfter.retry_after is an int; opt in to timedelta."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(token=TOKEN, bot_username="smsc_tasks_bot") as emulator:
        yield emulator


@pytest.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(
        TOKEN,
        base_url=f"{emu.url}/bot{{token}}",
        base_file_url=f"{emu.url}/file/bot{{token}}",
    ) as ptb_bot:
        yield ptb_bot


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def raw(
    http: aiohttp.ClientSession,
    emu: TelegramEmulator,
    method: str,
    *,
    token: str = TOKEN,
    **kwargs: Any,
) -> tuple[int, dict[str, Any]]:
    """POST (or GET with params=) one raw Bot API request; (status, JSON body)."""
    verb = "GET" if "params" in kwargs and "data" not in kwargs and "json" not in kwargs else "POST"
    async with http.request(verb, f"{emu.url}/bot{token}/{method}", **kwargs) as resp:
        return resp.status, await resp.json()


# ---- basics -----------------------------------------------------------------------------


async def test_get_me_and_bot_identity(bot: telegram.Bot, emu: TelegramEmulator) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "smsc_tasks_bot", True)
    assert [c.method for c in emu.calls] == ["getMe", "getMe"]  # initialize() + ours
    assert emu.calls[-1].ok


async def test_routing_errors_are_telegrams(
    emu: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    assert await raw(http, emu, "fooBar", data={"x": "1"}) == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    assert await raw(http, emu, "getMe", token="123456:WRONG") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    status, _ = await raw(http, emu, "getMe", token="not-a-token")
    assert status == 404
    status, body = await raw(http, emu, "GETME", params={})  # names are case-insensitive
    assert (status, body["result"]["username"]) == (200, "smsc_tasks_bot")
    assert emu.calls[-1].method == "getMe"


async def test_parameters_in_query_form_json_are_decoded_per_spec(
    emu: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    status, body = await raw(http, emu, "sendMessage", params={"chat_id": "7", "text": "q"})
    assert (status, body["result"]["text"]) == (200, "q")
    markup = {"inline_keyboard": [[{"text": "a", "callback_data": "x"}]]}
    status, body = await raw(
        http,
        emu,
        "sendMessage",
        json={"chat_id": 7, "text": "j", "reply_markup": markup, "colour": "blue"},
    )
    assert status == 200
    call = emu.calls[-1]
    assert call.params == {"chat_id": 7, "text": "j", "reply_markup": markup}
    assert call.ignored == {"colour": "blue"}  # unknown parameters are ignored, but kept
    status, _ = await raw(
        http,
        emu,
        "sendMessage",
        data={"chat_id": "7", "text": "f", "disable_notification": "true", "reply_markup": "{}"},
    )
    assert status == 400  # {} is none of the four reply markups
    status, _ = await raw(http, emu, "sendMessage", data={"chat_id": "@nobody", "text": "x"})
    assert status == 400


@pytest.mark.parametrize(
    ("data", "description"),
    [
        ({"text": "hi"}, "Bad Request: chat_id is empty"),
        ({"chat_id": "7"}, "Bad Request: message text is empty"),
        ({"chat_id": "7", "text": ""}, "Bad Request: message text is empty"),
        ({"chat_id": "7", "text": "x", "message_thread_id": "abc"}, None),
        ({"chat_id": "7", "text": "x", "disable_notification": "maybe"}, None),
        (
            {"chat_id": "7", "text": "x", "reply_markup": "{not json"},
            "Bad Request: can't parse reply keyboard markup JSON object",
        ),
        (
            {"chat_id": "7", "text": "x", "reply_markup": '{"inline_keyboard": [[{"url": "x"}]]}'},
            None,
        ),
        ({"chat_id": "nobody", "text": "x"}, "Bad Request: chat not found"),
    ],
)
async def test_bad_parameters_are_refused(
    emu: TelegramEmulator,
    http: aiohttp.ClientSession,
    data: dict[str, str],
    description: str | None,
) -> None:
    status, body = await raw(http, emu, "sendMessage", data=data)
    assert (status, body["ok"], body["error_code"]) == (400, False, 400)
    if description is not None:
        assert body["description"] == description
    assert emu.calls[-1].status == 400
    assert emu.messages(7) == []


async def test_other_methods_are_validated_then_answer_true(
    emu: TelegramEmulator, http: aiohttp.ClientSession
) -> None:
    status, body = await raw(http, emu, "setChatTitle", data={"chat_id": "-5", "title": "T"})
    assert (status, body) == (200, {"ok": True, "result": True})
    status, body = await raw(http, emu, "setChatTitle", data={"chat_id": "-5"})
    assert (status, body["description"]) == (400, "Bad Request: title is empty")
    assert [c.method for c in emu.calls_to("setchattitle")] == ["setChatTitle"] * 2


# ---- sendMessage ------------------------------------------------------------------------


async def test_send_message_stores_parsed_text(bot: telegram.Bot, emu: TelegramEmulator) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Older", callback_data="page:2")]])
    sent = await bot.send_message(
        USER, "  <b>Tasks</b> &lt;all&gt; &amp; more  ", parse_mode="HTML", reply_markup=keyboard
    )
    assert sent.text == "Tasks <all> & more"
    assert sent.entities[0].type == "bold"
    assert sent.from_user is not None
    assert sent.from_user.id == emu.bot_id
    (stored,) = emu.messages(USER)
    assert stored["text"] == "Tasks <all> & more"
    assert stored["reply_markup"] == keyboard.to_dict()
    call = (await emu.wait_for("sendMessage", chat_id=USER, ok=True))[0]
    assert call.params["parse_mode"] == "HTML"
    assert call.params["reply_markup"] == keyboard.to_dict()


async def test_length_is_counted_after_parsing_in_utf16(bot: telegram.Bot) -> None:
    await bot.send_message(USER, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")
    await bot.send_message(USER, "😀" * 2048)  # 4096 UTF-16 code units
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "😀" * 2049)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "a" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(USER, "   ")


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("<foo>bar</foo>", 'unsupported start tag "foo" at byte offset 0'),
        ("a < b", 'unsupported start tag "" at byte offset 2'),
        ("Tom & Jerry", 'unescaped "&" at byte offset 4; use "&amp;"'),
        ("a&nbsp;b", 'unsupported html entity "&nbsp;" at byte offset 1'),
        ("<b>bold", "can't find end tag corresponding to start tag b"),
        ("<b><i>x</b></i>", 'unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("<span>x</span>", 'tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
async def test_bad_html_is_refused(bot: telegram.Bot, text: str, detail: str) -> None:
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(USER, text, parse_mode="HTML")
    assert caught.value.message.lower() == f"can't parse entities: {detail}"


async def test_markdown_v2_reserved_characters(bot: telegram.Bot) -> None:
    ok = await bot.send_message(USER, r"*Task* \#42 done\. [log](https://x.io/a_b)", "MarkdownV2")
    assert ok.text == "Task #42 done. log"
    with pytest.raises(BadRequest, match=r"(?i)character '\.' is reserved"):
        await bot.send_message(USER, "Task 42 done.", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match=r"(?i)unsupported parse_mode"):
        await bot.send_message(USER, "x", parse_mode="BBCode")


async def test_callback_data_limit(bot: telegram.Bot) -> None:
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="é" * 32)]])  # 64 bytes
    await bot.send_message(USER, "fits", reply_markup=ok)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="x" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(USER, "does not", reply_markup=too_long)


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


# ---- the parsers on their own -----------------------------------------------------------


def test_html_offsets_are_utf16() -> None:
    parsed = parse_html('😀 <a href="https://x.io/?a=1&amp;b=2">link</a> <code>&lt;x&gt;</code>')
    assert parsed.text == "😀 link <x>"
    assert parsed.entities == [
        {"type": "text_link", "offset": 3, "length": 4, "url": "https://x.io/?a=1&b=2"},
        {"type": "code", "offset": 8, "length": 3},
    ]
    assert utf16_len(parsed.text) == 11
    pre = parse_html('<pre><code class="language-python">x = 1</code></pre>')
    assert pre.entities == [{"type": "pre", "offset": 0, "length": 5, "language": "python"}]
    lenient = parse_html("R&D &copy;", strict_entities=False)  # exactly what Telegram does
    assert lenient.text == "R&D &copy;"
    with pytest.raises(EntityParseError, match="byte offset 5"):
        parse_html("Жж <x>")  # byte offsets count UTF-8 bytes


def test_markdown_v2_escapes_and_nesting() -> None:
    parsed = parse_markdown_v2(r"*bold _italic_* \*not\* `a_b` ||s||")
    assert parsed.text == "bold italic *not* a_b s"
    assert [e["type"] for e in parsed.entities] == ["bold", "italic", "code", "spoiler"]
    with pytest.raises(EntityParseError, match="Can't find end of Bold entity at byte offset 0"):
        parse_markdown_v2("*open")
