"""One redactor for every path to stdout/stderr; a failed start says so in one line."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from aiohttp import web

from bot.redaction import REDACTED, RedactingStream, Redactor, secrets_in_environment
from bot.tg_emulator import ApiFailure, TelegramEmulator
from storage import check_database
from tests.fakes.rig import PASSWORD, TOKEN, bot_env, bot_process, free_port, serve

SECRET_PART = TOKEN.partition(":")[2]
HOOK_SECRET = "s3cret_Hook-token"


def token_forms(token: str = TOKEN) -> list[str]:
    """How a proxy, a library or an error page may echo the token."""
    tail = token.partition(":")[2]
    return [
        token,
        token.lower(),
        token.upper(),
        quote(token, safe=""),
        quote(token, safe="").lower(),  # %3a
        tail,
        tail.upper(),
    ]


def assert_no_secret(text: str) -> None:
    """Neither the token (in any form, or its secret part alone) nor the password."""
    lowered = text.lower()
    for secret in (SECRET_PART, PASSWORD):
        assert secret.lower() not in lowered, text
        assert quote(secret, safe="").lower() not in lowered, text


@pytest.mark.parametrize("form", token_forms())
def test_every_form_of_the_token_is_redacted(form: str) -> None:
    out = Redactor([TOKEN]).redact(f"upstream for /bot{form}/getMe failed")
    assert out == f"upstream for /bot{REDACTED}/getMe failed"


@pytest.mark.parametrize(
    ("secret", "printed"),
    [
        ("pa55-Секрет-0xC0FFEE", quote("pa55-Секрет-0xC0FFEE")),  # URL-encoded UTF-8
        ("pa55-Секрет-0xC0FFEE", json.dumps("pa55-Секрет-0xC0FFEE")[1:-1]),  # \u0421...
        ("pa55-Секрет-0xC0FFEE", "pa55-Секрет-0xC0FFEE".upper()),  # Unicode case folding
        ("p&ss<word>", "p&amp;ss&lt;word&gt;"),  # an HTML error page
        ("two words here", "two+words+here"),  # a form-encoded body
        ("key-6f1c2a9d4b7e", "key-6f1c2a9d4b7e"),
    ],
)
def test_other_secrets_are_redacted_in_their_printed_forms(secret: str, printed: str) -> None:
    assert Redactor([secret]).redact(f"<{printed}>") == f"<{REDACTED}>"


def test_the_public_bot_id_and_short_values_are_left_alone() -> None:
    redactor = Redactor([TOKEN, "abc", ""])
    assert redactor.redact("bot 123456 said abc") == "bot 123456 said abc"


def test_a_redactor_learns_secrets_later_and_the_longest_form_wins() -> None:
    redactor = Redactor()
    assert redactor.redact(TOKEN) == TOKEN
    redactor.add([TOKEN])
    assert redactor.redact(f"x{TOKEN}y") == f"x{REDACTED}y"  # not "123456:[redacted]"


def test_secrets_in_environment_reads_the_secret_variables_only() -> None:
    env = {"telegram_bot_token": TOKEN, "SMSC_PASSWORD": PASSWORD, "SMSC_LOGIN": "team", "X": ""}
    assert sorted(secrets_in_environment(env)) == sorted([TOKEN, PASSWORD])


def test_a_stream_redacts_a_secret_written_in_pieces() -> None:
    real = io.StringIO()
    stream = RedactingStream(real, Redactor([TOKEN]))
    half = len(TOKEN) // 2
    stream.write(f"getMe /bot{TOKEN[:half]}")
    stream.write(f"{TOKEN[half:]}/getMe failed\nnext ")
    assert real.getvalue() == f"getMe /bot{REDACTED}/getMe failed\n"
    stream.write(TOKEN)
    stream.flush()  # a partial line is passed on at flush, redacted too
    assert real.getvalue().endswith(f"next {REDACTED}")
    assert TOKEN not in real.getvalue()


async def _run_until_exit(env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    async with bot_process(env, cwd, capture_stdout=True) as proc:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), stderr.decode()


def _without_env_token(env: dict[str, str], cwd: Path) -> dict[str, str]:
    """Move the secrets into `cwd/.env`: the redactor must learn them from the file too."""
    (cwd / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\nSMSC_PASSWORD={PASSWORD}\n")
    return {k: v for k, v in env.items() if k not in ("TELEGRAM_BOT_TOKEN", "SMSC_PASSWORD")}


@pytest.mark.parametrize("source", ["environment", "dotenv"])
async def test_a_getme_error_echoing_the_token_prints_no_form_of_it(
    tmp_path: Path, source: str
) -> None:
    """A proxy's JSON error description echoing the request path, in every form."""
    echoed = " ".join(f"/bot{form}/getMe" for form in token_forms())
    async with TelegramEmulator(token=TOKEN) as emu:
        emu.fail("getMe", ApiFailure(502, f"Bad Gateway: upstream for {echoed} failed"), count=5)
        env = bot_env(emu.url, "http://127.0.0.1:9", tmp_path / "bot.sqlite3")
        if source == "dotenv":
            env = _without_env_token(env, tmp_path)
        code, stdout, stderr = await _run_until_exit(env, tmp_path)
        assert emu.calls_to("getMe"), "the bot never asked getMe"
    assert code == 1, stderr
    assert "Bad Gateway: upstream for /bot[redacted]/getMe" in stderr  # the cause stays readable
    assert_no_secret(stdout + stderr)
    assert "Traceback" not in stderr


def _html_page(status: int) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def page(request: web.Request) -> web.Response:
        """A reverse proxy's error page (or a captive portal's 200), echoing the path."""
        path = request.path
        body = (
            f"<html><head><title>{status}</title></head><body><h1>Bad Gateway</h1>"
            f"<p>upstream for {path} failed</p><p>{quote(path, safe='')}</p>"
            f"<p>{quote_plus(path.lower())}</p></body></html>"
        )
        return web.Response(status=status, text=body, content_type="text/html")

    return page


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (502, "error: cannot reach the Telegram Bot API at {url}: Bad Gateway"),
        (200, "error: the Telegram Bot API at {url} failed: Invalid server response"),
    ],
)
async def test_an_html_page_echoing_the_token_prints_one_redacted_line(
    tmp_path: Path, status: int, words: str
) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _html_page(status))
    async with serve(app) as proxy_url:
        env = bot_env(proxy_url, "http://127.0.0.1:9", tmp_path / "bot.sqlite3")
        await check_database(tmp_path / "bot.sqlite3")  # migrations done: nothing else to say
        code, stdout, stderr = await _run_until_exit(env, tmp_path)
    assert code == 1, stderr
    assert_no_secret(stdout + stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(words.format(url=proxy_url)), lines[0]


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_telegram_unreachable_at_start_is_one_line_and_exit_1(
    tmp_path: Path, mode: str
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    extra = {}
    if mode == "webhook":
        extra = {"WEBHOOK_URL": "http://127.0.0.1:8443/hook", "WEBHOOK_SECRET": HOOK_SECRET}
    env = bot_env(closed, "http://127.0.0.1:9", tmp_path / "bot.sqlite3", **extra)
    await check_database(tmp_path / "bot.sqlite3")
    code, stdout, stderr = await _run_until_exit(env, tmp_path)
    assert code == 1, stderr
    assert stderr.splitlines() == [
        f"error: cannot reach the Telegram Bot API at {closed}: "
        "httpx.ConnectError: All connection attempts failed"
    ]
    assert stdout == ""
    assert_no_secret(stdout + stderr)
    assert HOOK_SECRET not in stderr
