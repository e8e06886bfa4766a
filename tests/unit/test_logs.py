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


@pytest.mark.usefixtures("restore_logging")
def test_ptb_start_failures_are_left_to_the_one_line_report() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "text", [TOKEN], stream=stream)
    ptb = logging.getLogger("telegram.ext")
    request = logging.getLogger("telegram.request.BaseRequest")
    page = "<html>" + "x" * 5000 + "</html>"
    try:
        raise ValueError("Expecting value: line 1 column 1 (char 0)")  # noqa: TRY301
    except ValueError:
        ptb.exception(
            "%s Failed run number %s of %s. Aborting.",
            "Network Retry Loop (Bootstrap Initialize Application):",
            0,
            0,
        )
        request.exception('Can not load invalid JSON data: "%s"', page)
    assert stream.getvalue() == ""  # raised on to `python -m bot`, which prints one line
    logging.getLogger("bot.runtime.app").info("bot started", extra={"event": "started"})
    try:
        raise ValueError("Expecting value")  # noqa: TRY301
    except ValueError:
        request.exception('Can not load invalid JSON data: "%s"', page)
        ptb.exception("Network Retry Loop (Polling Updates): Failed run number 3. Retrying.")
    lines = stream.getvalue().splitlines()
    assert "bot started" in lines[0]
    assert "Can not load invalid JSON data" in lines[1]
    assert len(lines[1]) < 500  # shortened, and without the JSON decoder's traceback
    assert "Traceback" in "\n".join(lines[2:])  # other library errors keep their traceback
