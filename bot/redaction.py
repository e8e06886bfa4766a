"""One redactor for every byte we print: log lines, `print()`, tracebacks on stderr.

A secret rarely comes back in the exact form it was configured in: a proxy's error page echoes
the request path URL-encoded (`123%3AABC`), a library lowercases it, an HTML page escapes it,
JSON escapes its non-ASCII letters, and a Bot API token can appear split at its ':' (the bot id
is public, the part after it is the secret). The redactor knows all those forms.
"""

from __future__ import annotations

import html
import io
import json
import re
import sys
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import TextIO, cast
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
# Shorter values would redact ordinary words; settings validation asks for longer secrets anyway.
MIN_SECRET_LENGTH = 4
# The environment variables holding secrets, known before Settings has validated anything.
SECRET_VARIABLES = ("TELEGRAM_BOT_TOKEN", "SMSC_PASSWORD", "SMSC_APIKEY", "WEBHOOK_SECRET")


def secret_forms(secret: str) -> set[str]:
    """Every form in which `secret` (or the secret part of a bot token) may be printed."""
    parts = [secret]
    _, sep, tail = secret.partition(":")
    if sep and len(tail) >= MIN_SECRET_LENGTH:
        parts.append(tail)  # "123456:ABC..." -> "ABC...": the bot id alone is public
    forms: set[str] = set()
    for part in parts:
        forms.update(
            {
                part,
                quote(part, safe=""),
                quote(part),  # keeps "/", encodes ":" as %3A
                quote_plus(part),
                html.escape(part),
                json.dumps(part)[1:-1],  # non-ASCII as \\uXXXX, as json.dumps prints it
            }
        )
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def secrets_in_environment(environ: Mapping[str, str]) -> list[str]:
    """The secret values set in `environ` (names case-insensitive, as Settings reads them)."""
    wanted = set(SECRET_VARIABLES)
    found = [value for name, value in environ.items() if name.upper() in wanted and value]
    for name, value in environ.items():
        if name.upper() == "DATABASE_URL":  # postgresql://user:PASSWORD@host/db
            password = urllib.parse.urlsplit(value).password
            if password:
                found += [password, urllib.parse.unquote(password)]
    return found


class Redactor:
    """Replace every known secret, in any of its forms and any letter case, with `REDACTED`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Learn more secrets (settings loaded after the streams were wrapped)."""
        forms = set(self._forms)
        for secret in secrets:
            if len(secret) >= MIN_SECRET_LENGTH:
                forms |= secret_forms(secret)
        if forms == self._forms:
            return
        self._forms = forms
        # Longest first: a form containing another is replaced whole. IGNORECASE also covers
        # %3a versus %3A and a lowercased or uppercased token.
        alternatives = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, alternatives)), re.IGNORECASE)

    def redact(self, text: str) -> str:
        """Return `text` with every secret replaced."""
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)


class RedactingStream(io.TextIOBase):
    """A text stream that redacts whole lines before they reach the real stream.

    Lines are held until their newline (or a flush), so a secret written in two pieces, as
    `print()` and tracebacks do with their parts, is still seen whole.
    """

    _MAX_PENDING = 64 * 1024

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        super().__init__()
        self.stream = stream
        self.redactor = redactor
        self._pending = ""
        # Threads print too (aiosqlite's worker, a library's): one line buffer, one writer;
        # reentrant, as a signal handler may print while this thread is inside write().
        self._lock = threading.RLock()

    def write(self, text: str) -> int:
        """Buffer `text`; pass every completed line on, redacted."""
        with self._lock:
            self._pending += text
            if "\n" in text or len(self._pending) > self._MAX_PENDING:
                head, newline, self._pending = self._pending.rpartition("\n")
                if not newline:  # one huge line without a newline: pass it on as it is
                    head, self._pending = self._pending, ""
                self.stream.write(self.redactor.redact(head + newline))
        return len(text)

    def flush(self) -> None:
        """Pass on what is pending (redacted) and flush the real stream."""
        with self._lock:
            if self._pending:
                pending, self._pending = self._pending, ""
                self.stream.write(self.redactor.redact(pending))
            self.stream.flush()

    def fileno(self) -> int:
        """The real stream's descriptor (faulthandler, subprocess)."""
        return self.stream.fileno()

    def isatty(self) -> bool:
        """Whether the real stream is a terminal."""
        return self.stream.isatty()

    def writable(self) -> bool:
        """Always: this is an output stream."""
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        """The real stream's encoding."""
        return self.stream.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        """The real stream's error handler."""
        return self.stream.errors


def redact_std_streams(redactor: Redactor) -> None:
    """Route sys.stdout and sys.stderr (prints, tracebacks, log handlers) through `redactor`."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, cast(TextIO, RedactingStream(stream, redactor)))
