"""End-to-end: the webhook's edge cases, over real HTTP (issue 9).

Telegram resends any update that does not get a 2xx, so everything authentic gets 200, even
an update the library cannot parse. Only bodies that are no JSON object get 400, without a
traceback; refusals are logged at most once a minute per reason.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from bot.runtime.web import SECRET_HEADER, webhook_path_key
from tests.fakes.rig import ADMIN_CHAT
from tests.fakes.webhook_support import SECRET, webhook_bot

PRIVATE = "personal-words-never-logged"


async def post(
    url: str | URL, body: bytes | str, *, secret: str | None = SECRET
) -> tuple[int, str]:
    """POST a raw body as Telegram would (JSON content type, the secret header)."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, await r.text()


async def get(url: str) -> tuple[int, str]:
    """GET one of the bot's endpoints."""
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.text()


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    """Fail if any record carried an exception or was an error."""
    bad = [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert bad == []


@pytest.mark.parametrize(
    "body",
    ["[]", "null", "123", '"x"', "true", "[{}]", "{", "", "not json", b"\xff\xfe", "[" * 100_000],
    ids=[
        "array",
        "null",
        "number",
        "string",
        "bool",
        "array_of_object",
        "truncated",
        "empty",
        "text",
        "not_utf8",
        "deep",
    ],
)
async def test_a_body_that_is_no_json_object_gets_400_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, body: str | bytes
) -> None:
    caplog.set_level(logging.INFO)
    async with webhook_bot(tmp_path) as bot:
        status, text = await post(bot.url, body)
        assert status == 400
        assert text.startswith("bad update")
        assert (await get(bot.local("/healthz")))[0] == 200
        _, metrics = await get(bot.local("/metrics"))
        assert 'webhook_requests_refused_total{reason="not_' in metrics
    no_tracebacks(caplog)


async def test_an_update_the_library_cannot_parse_gets_200_and_is_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bad = {
        "update_id": 900,
        "message": {"message_id": 1, "date": 1, "chat": {"id": 5}, "text": PRIVATE},
    }
    async with webhook_bot(tmp_path) as bot:
        for body in (bad, {"update_id": 901}, {}, {"message": {"text": PRIVATE}}):
            status, _ = await post(bot.url, json.dumps(body))
            assert status == 200  # anything else and Telegram resends it for ever
        bot.emu.send_message(ADMIN_CHAT, "/help")  # the bot still answers
        await bot.emu.wait_for("sendMessage", chat_id=ADMIN_CHAT, timeout=10)
        _, metrics = await get(bot.local("/metrics"))
        assert 'telegram_updates_unparseable_total{type="message"} 2.0' in metrics
        assert 'telegram_updates_unparseable_total{type="none"} 1.0' in metrics
    lines = [
        r.getMessage() for r in caplog.records if r.__dict__.get("event") == "update_unparseable"
    ]
    assert any("update_id=900 type=message" in line for line in lines)
    assert PRIVATE not in caplog.text
    no_tracebacks(caplog)


async def test_refusals_are_logged_once_a_minute_per_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with webhook_bot(tmp_path) as bot:
        for _ in range(30):
            assert (await post(bot.url, '{"update_id": 1}', secret="wrong"))[0] == 403
            assert (await post(bot.url, '{"update_id": 1}', secret=None))[0] == 403
            assert (await post(bot.url, "[]"))[0] == 400
        _, metrics = await get(bot.local("/metrics"))
        assert 'webhook_requests_refused_total{reason="forbidden"} 60.0' in metrics
        assert 'webhook_requests_refused_total{reason="not_object"} 30.0' in metrics
    refused = [r for r in caplog.records if r.__dict__.get("event") == "webhook_refused"]
    assert len(refused) == 2  # one per reason, not 90
    assert "wrong or missing secret token" in refused[0].getMessage()


@pytest.mark.parametrize(
    "path",
    [
        "/hook/привет",
        "/hook/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82",
        "/hook/%d0%bf%d1%80%d0%b8",  # lower-case escapes
        "/hook/a b",
        "/hook/{x}/ü",
        "/hook/a%2Fb",
    ],
)
async def test_a_webhook_url_with_non_ascii_or_escaped_path_still_routes(
    tmp_path: Path, path: str
) -> None:
    async with webhook_bot(tmp_path, path) as bot:
        # The emulator posts to the URL setWebhook registered, encoded as an HTTP client does.
        bot.emu.send_message(ADMIN_CHAT, "/help")
        await bot.emu.wait_for("sendMessage", chat_id=ADMIN_CHAT, timeout=10)
        assert [status for _, status in bot.emu.webhook_deliveries] == [200]
        # The path sent byte for byte as registered (already %-escaped) matches too.
        registered = URL(bot.url, encoded=True)
        status, _ = await post(registered, '{"update_id": 5}')
        assert status == 200
        assert (await post(bot.local("/elsewhere"), '{"update_id": 6}'))[0] == 404
        assert (await get(bot.local("/healthz")))[0] == 200


def test_webhook_path_key_treats_every_spelling_alike() -> None:
    spellings = [
        "/h/привет",
        "/h/%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82",
        "/h/%d0%bf%d1%80%d0%b8%d0%b2%d0%b5%d1%82",
    ]
    assert len({webhook_path_key(s) for s in spellings}) == 1
    assert webhook_path_key("/h/%ff") != webhook_path_key("/h/x")  # invalid UTF-8: no crash
    assert webhook_path_key("/a") != webhook_path_key("/a/")
