"""Routing and parameter decoding, sendMessage's parsing and limits, and the parsers alone."""

from __future__ import annotations

import aiohttp
import pytest
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest

from bot.tg_emulator import TelegramEmulator, parse_html, utf16_len
from bot.tg_emulator.entities import EntityParseError, parse_markdown_v2
from tests.fakes.tg_emulator.support import USER, raw

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
