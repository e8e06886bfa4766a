"""Logging for people (text) or log shippers (JSON), with secrets scrubbed from every line."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

# Fields a call site may pass through `extra=` that are worth keeping in every format.
CONTEXT_FIELDS = ("event", "task_id", "chat_id", "thread_id", "alert_id", "method", "code")
_STD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
REDACTED = "[redacted]"
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

    def __init__(self, secrets: Iterable[str] = (), fmt: str | None = None) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s")
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """Return `text` with every secret replaced."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

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
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Install one root handler; quiet the libraries that log request URLs (with the token)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = JsonFormatter(secrets) if fmt == "json" else RedactingFormatter(secrets)
    handler.setFormatter(formatter)
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
