"""Logging for people (text) or log shippers (JSON), with secrets scrubbed from every line."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.redaction import REDACTED, Redactor

__all__ = ["REDACTED", "JsonFormatter", "RedactingFormatter", "Redactor", "configure_logging"]
# Fields a call site may pass through `extra=` that are worth keeping in every format.
CONTEXT_FIELDS = ("event", "task_id", "chat_id", "thread_id", "alert_id", "method", "code")
_STD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_NON_WORD = re.compile(r"[^a-z0-9]+")


def event_of(record: logging.LogRecord) -> str:
    """The record's `event`, or one derived from its message template (stable across values).

    "SMSC poll failed: %s" becomes "smsc_poll_failed", so every line can be grouped by event
    even when the call site (or a library) gave none.
    """
    explicit = getattr(record, "event", None)
    if explicit:
        return str(explicit)
    template = str(record.msg).split("%", 1)[0].split(":", 1)[0]
    return _NON_WORD.sub("_", template.lower()).strip("_")[:48] or "log"


class RedactingFormatter(logging.Formatter):
    """Format a record, then replace every known secret in the final text.

    Redacting the finished line (not `record.msg`) also covers arguments, exception text and
    tracebacks: nothing reaches the stream unredacted.
    """

    def __init__(self, secrets: Iterable[str] | Redactor = (), fmt: str | None = None) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s")
        # The process's one redactor when given: what it learns later applies here too.
        self.redactor = secrets if isinstance(secrets, Redactor) else Redactor(secrets)

    def redact(self, text: str) -> str:
        """Return `text` with every secret replaced."""
        return self.redactor.redact(text)

    def format(self, record: logging.LogRecord) -> str:
        """Format with the context fields appended as key=value."""
        record.event = event_of(record)
        pairs = [f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if hasattr(record, k)]
        record.context = (" [" + " ".join(pairs) + "]") if pairs else ""
        return self.redact(super().format(record))


class JsonFormatter(RedactingFormatter):
    """One JSON object per line: ts, level, logger, message, context fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record as one JSON line."""
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": event_of(record),
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and key != "context" and not key.startswith("_"):
                data[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(data, ensure_ascii=False))


def configure_logging(
    level: str = "INFO",
    fmt: str = "text",
    secrets: Iterable[str] | Redactor = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Install one root handler; quiet the libraries that log request URLs (with the token)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = JsonFormatter(secrets) if fmt == "json" else RedactingFormatter(secrets)
    handler.setFormatter(formatter)
    handler.addFilter(StartupNoiseFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_libraries()
    return handler


def quiet_libraries() -> None:
    """Raise the level of loggers that would print request URLs (Bot API URLs hold the token)."""
    for noisy in ("httpx", "httpcore", "apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class StartupNoiseFilter(logging.Filter):
    """Keep PTB's tracebacks about a failed start off the log: `python -m bot` says it in one line.

    Every failure of PTB's bootstrap loop is raised on to `run_bot`, which names the cause in one
    line and exits 1; the library's own report of it is 60-100 lines of traceback. An invalid
    (non-JSON) answer, a proxy's HTML error page, is likewise raised on; before the bot started it
    is dropped, afterwards logged as one shortened line without the JSON decoder's traceback.
    """

    _PAYLOAD_CHARS = 300

    def __init__(self) -> None:
        super().__init__()
        self.started = False

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop or shorten the record; note when the bot has started."""
        if getattr(record, "event", None) == "started" and record.name.startswith("bot"):
            self.started = True
        if not record.name.startswith("telegram"):
            return True
        template = str(record.msg)
        if "Aborting" in template and "(Bootstrap" in record.getMessage():
            return False
        if template.startswith("Can not load invalid JSON data"):
            if not self.started:
                return False
            payload = str(record.args[0]) if isinstance(record.args, tuple) and record.args else ""
            if len(payload) > self._PAYLOAD_CHARS:
                payload = payload[: self._PAYLOAD_CHARS] + "..."
            record.args = (payload,)
            record.exc_info = None
            record.exc_text = None
        return True
