"""Log output: secrets scrubbed from every line and format; quiet request-URL loggers."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import REDACTED, configure_logging

TOKEN = "123456:AAH-very-secret-token"
PASSWORD = "hunter2-password"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_redacted_everywhere(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", fmt, [TOKEN, PASSWORD], stream=stream)
    log = logging.getLogger("bot.test")
    log.info("calling https://api.telegram.org/bot%s/getMe", TOKEN)
    log.warning("login with %s failed", PASSWORD, extra={"chat_id": 5, "task_id": 7})
    err = RuntimeError(f"boom {PASSWORD}")
    log.error("failure", exc_info=err)
    out = stream.getvalue()
    assert TOKEN not in out
    assert PASSWORD not in out
    assert out.count(REDACTED) >= 3
    if fmt == "json":
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        assert lines[1]["chat_id"] == 5
        assert lines[1]["task_id"] == 7
        assert lines[0]["event"] == "calling_https"  # derived from the template
        assert lines[1]["event"] == "login_with"
        assert "exc" in lines[2]
    else:
        assert "chat_id=5" in out
        assert "event=login_with" in out


@pytest.mark.usefixtures("restore_logging")
def test_httpx_request_lines_are_silenced() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "text", [], stream=stream)
    logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot%s/x", TOKEN)
    assert stream.getvalue() == ""
