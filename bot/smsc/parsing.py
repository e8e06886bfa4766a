"""SMSC answers to values: task lists (fmt=3) and errors in any of SMSC's four shapes.

We always ask for fmt=3 (JSON), but SMSC has been seen answering errors in other shapes, so every
error shape is recognised wherever an answer is read:

* ``ERROR = N (description)``   (fmt=0)
* ``0,-N``                      (fmt=1)
* ``<result><error>description</error><error_code>N</error_code></result>``  (fmt=2)
* ``{"error": "description", "error_code": N}``                              (fmt=3)

List items SMSC sends that we cannot use (not an object, no id or an id outside SQLite's int64,
a negative id, a status outside 0..4) are skipped instead of failing the whole list: one odd task
must not hide all the others, nor stop the watcher. Text fields are sanitised, never refused:
lone surrogates (valid JSON, ``"\\ud800"``, but neither UTF-8 nor Telegram can carry them) become
U+FFFD, NUL is dropped, other types become text, and absurdly long values are cut to `MAX_TEXT`.

Skipped items are reported once per page, never once per item (10,000 bad rows must not write
10,000 log lines): in `TaskPage.skipped`, and to the caller's `collect_skipped()` collector when
there is one (the watcher's poll: one line per poll, however many pages), else in one warning.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import ValidationError

from bot.smsc.errors import (
    API_ERRORS,
    SmscApiError,
    SmscBadResponseError,
    SmscError,
    SmscUnknownApiError,
)
from bot.smsc.models import MAX_TASK_ID, SMSC_TIME_FORMAT, SMSC_TZ, Task, TaskStatus

log = logging.getLogger(__name__)

_TEXT_ERROR = re.compile(r"ERROR\s*=\s*(-?\d+)\s*(?:\((.*)\))?\s*", re.DOTALL | re.IGNORECASE)
_CSV_ERROR = re.compile(r"0\s*,\s*-(\d+)\s*")
_XML_CODE = re.compile(r"<error_code>\s*(-?\d+)\s*</error_code>", re.IGNORECASE)
_XML_TEXT = re.compile(r"<error>(.*?)</error>", re.IGNORECASE | re.DOTALL)
_INTEGER = re.compile(r"-?[0-9]+")
_BOM = "\ufeff"
_MAX_DESCRIPTION = 300
# Longest text kept from a list item, in characters: far above anything worth showing (markup.py
# cuts much shorter), small enough that a hostile list cannot bloat SQLite or alert payloads.
MAX_TEXT = 1000
# An integer literal longer than this is out of int64 range anyway; Python refuses to convert
# more than 4,300 digits at all (a ValueError that would sink the whole list), so never try.
_MAX_INT_DIGITS = 25
_OUT_OF_RANGE = MAX_TASK_ID + 1  # what an over-long integer becomes: surely out of range
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads joins proper pairs: these are lone
_SAMPLE_CHARS = 160
_PLAUSIBLE_YEARS = (1970, 9998)

# How a get_file answer starts when it is not a CSV: SMSC's text error, JSON, XML or HTML.
_HEAD_TEXT_ERROR = re.compile(rb"ERROR\s*=\s*-?\d+", re.IGNORECASE)
_HEAD_CSV_ERROR = re.compile(rb"0\s*,\s*-\d+\s*")
_UTF8_BOM = b"\xef\xbb\xbf"


def api_error(code: int, description: str = "") -> SmscApiError:
    """Build the typed exception for SMSC error number `code`."""
    description = description.strip()[:_MAX_DESCRIPTION]
    cls = API_ERRORS.get(code)
    if cls is None:
        return SmscUnknownApiError(code, description)
    return cls(description=description)


def parse_error(text: str) -> SmscApiError | None:
    """Return the SMSC error this answer carries, in any of the four shapes, or None."""
    body = text.strip().lstrip(_BOM).strip()
    if not body:
        return None
    if match := _TEXT_ERROR.fullmatch(body):
        return api_error(abs(int(match.group(1))), match.group(2) or "")
    if match := _CSV_ERROR.fullmatch(body):
        return api_error(int(match.group(1)))
    if body.startswith("<"):
        return _xml_error(body)
    if body.startswith("{"):
        try:
            data = json.loads(body)
        except ValueError:
            return None
        return _json_error(data)
    return None


@dataclass(frozen=True, slots=True)
class SkipReport:
    """List items that could not be used: how many, and what the first one looked like."""

    count: int = 0
    sample: str = ""  # "item 3: id out of range: {'id': 99999999999999999999, ...}"

    def __add__(self, other: SkipReport) -> SkipReport:
        """Both reports as one (the first sample is kept)."""
        return SkipReport(self.count + other.count, self.sample or other.sample)

    def warn(self, logger: logging.Logger, scope: str = "") -> None:
        """Log one warning for all the skipped items (none when there are none).

        `scope` follows the count ("this poll"); `logger` is the caller's, so the line says
        who skipped them.
        """
        if not self.count:
            return
        what = f"unusable SMSC list items {scope}" if scope else "unusable SMSC list items"
        logger.warning(
            "Skipped %d %s (first: %s)",
            self.count,
            what,
            self.sample,
            extra={"event": "smsc_items_skipped", "count": self.count},
        )


NO_SKIPS = SkipReport()


class TaskPage(NamedTuple):
    """One get_list answer: the usable tasks, and what paging needs to know about the raw list."""

    tasks: tuple[Task, ...]
    item_count: int  # items SMSC sent, usable or not
    last_id: int | None  # id of the last item that had one (in int64 range), in SMSC's order
    skipped: SkipReport = NO_SKIPS


@dataclass(slots=True)
class SkipCollector:
    """What `collect_skipped()` gathered: pages parsed in its scope and the items they skipped."""

    pages: int = 0
    report: SkipReport = NO_SKIPS


_collector: ContextVar[SkipCollector | None] = ContextVar("smsc_skip_collector", default=None)


@contextmanager
def collect_skipped() -> Iterator[SkipCollector]:
    """Gather the skip reports of every page parsed in this scope, instead of logging each.

    A context variable, so it follows the request into the task the SMSC client runs it in (a
    task copies the context of whoever started it). A list served from the cache, or fetched by
    another caller, is parsed outside the scope: then `pages` stays 0.
    """
    collector = SkipCollector()
    token = _collector.set(collector)
    try:
        yield collector
    finally:
        _collector.reset(token)


def parse_task_page(text: str) -> TaskPage:
    """Parse a get_list answer (fmt=3) into a page, raising the SMSC error it carries if any."""
    body = text.strip().lstrip(_BOM).strip()
    if error := parse_error(body):
        raise error
    if not body:
        raise SmscBadResponseError("SMSC sent an empty answer")
    try:
        data = json.loads(body, parse_int=_json_int)
    except RecursionError as err:
        raise SmscBadResponseError("SMSC sent JSON nested too deeply to read") from err
    except ValueError as err:
        raise SmscBadResponseError(_describe_unexpected(body)) from err
    if not isinstance(data, list):
        raise SmscBadResponseError("SMSC sent an answer that is not a task list")
    tasks: list[Task] = []
    last_id: int | None = None
    skipped = 0
    sample = ""
    for index, item in enumerate(data):
        item_id = _as_int(item.get("id")) if isinstance(item, dict) else None
        if item_id is not None and 0 <= item_id <= MAX_TASK_ID:
            last_id = item_id
        task = _task_or_reason(item)
        if isinstance(task, str):
            skipped += 1
            if not sample:
                sample = f"item {index}: {task}: {_preview(item)}"
            continue
        tasks.append(task)
    report = SkipReport(skipped, sample)
    _report(report)
    return TaskPage(tuple(tasks), len(data), last_id, report)


def _report(report: SkipReport) -> None:
    collector = _collector.get()
    if collector is not None:
        collector.pages += 1
        collector.report += report
    else:
        report.warn(log)


def parse_task(item: object) -> Task | None:
    """Turn one get_list item into a Task, or None when it has no usable id or status."""
    task = _task_or_reason(item)
    return None if isinstance(task, str) else task


def _task_or_reason(item: object) -> Task | str:
    """The item as a Task, or why it cannot be one."""
    if not isinstance(item, dict):
        return "not an object"
    raw_id = item.get("id")
    task_id = _as_int(raw_id)
    if task_id is None:
        return "no id" if raw_id is None else "id is not an integer"
    if not 0 <= task_id <= MAX_TASK_ID:
        return "id out of range"
    raw_status = item.get("status")
    status_number = _as_int(raw_status)
    if status_number is None:
        return "no status" if raw_status is None else "status is not an integer"
    try:
        status = TaskStatus(status_number)
    except ValueError:
        return "unknown status"
    created_raw = clean_text(item.get("created"))
    time_raw = clean_text(item.get("time"))
    try:
        return Task(
            id=task_id,
            name=clean_text(item.get("name")),
            status=status,
            created_raw=created_raw,
            time_raw=time_raw,
            created=parse_smsc_time(created_raw),
            time=parse_smsc_time(time_raw),
            file=clean_text(item.get("file")),
        )
    except ValidationError:  # the model's own limits; not expected after the checks above
        return "not a valid task"


def clean_text(value: object, limit: int = MAX_TEXT) -> str:
    """Any JSON value as text storage and Telegram can take: no lone surrogate or NUL, cut.

    Only what cannot be stored or sent at all: the name kept is SMSC's, bidi and controls
    included. Showing it cleans it further (`bot.texts.characters` says how, and why).
    """
    # NUL is dropped (C code reading SQLite text stops at it; it shows as nothing anyway).
    if value is None:
        return ""
    text = value if isinstance(value, str) else _as_text(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _LONE_SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def _preview(item: object) -> str:
    """A short, log-safe look at a skipped item (repr escapes surrogates and control chars)."""
    try:
        text = repr(item)
    except RecursionError:
        text = f"<{type(item).__name__}, deeply nested>"
    return text if len(text) <= _SAMPLE_CHARS else text[: _SAMPLE_CHARS - 1] + "…"


def parse_smsc_time(raw: str) -> datetime | None:
    """Parse SMSC's "dd.mm.yyyy hh:mm:ss" (Moscow time) into an aware datetime, else None."""
    text = raw.strip()
    if not text:
        return None
    try:
        naive = datetime.strptime(text, SMSC_TIME_FORMAT)  # noqa: DTZ007 - zone set next line
    except ValueError:
        return None
    if not _PLAUSIBLE_YEARS[0] <= naive.year <= _PLAUSIBLE_YEARS[1]:
        return None  # shown raw: year 1 or 9999 cannot even be converted to UTC and back
    return naive.replace(tzinfo=SMSC_TZ)


FileHead = Literal["data", "error", "empty", "binary"]


def classify_file_head(head: bytes, *, complete: bool) -> FileHead:
    """Tell from the first bytes of a get_file answer whether it is the file or an error.

    `complete` says the whole answer fits in `head`. The Content-Type header is not trusted: PHP
    labels everything text/html unless told otherwise, so a real CSV may arrive as text/html.
    A CSV never starts with ``{``, ``[``, ``<`` or ``ERROR = N``, is never exactly ``0,-N``, and
    never holds a NUL byte in UTF-8 or windows-1251.
    """
    start = head.removeprefix(_UTF8_BOM).lstrip()
    if not start:
        return "empty" if complete else "data"
    if b"\x00" in start:
        return "binary"
    if start[:1] in (b"{", b"[", b"<") or _HEAD_TEXT_ERROR.match(start):
        return "error"
    if complete and _HEAD_CSV_ERROR.fullmatch(start):
        return "error"
    return "data"


def error_from_body(raw: bytes) -> SmscError:
    """Return the exception for a non-file answer: SMSC's own error or a bad-response error."""
    text = decode_text(raw)
    error = parse_error(text)
    if error is not None:
        return error
    return SmscBadResponseError(_describe_unexpected(text.strip()))


def decode_text(raw: bytes) -> str:
    """Decode an SMSC text answer: UTF-8 as asked for, windows-1251 if SMSC ignored charset."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1251", errors="replace")


def _xml_error(body: str) -> SmscApiError | None:
    code = _XML_CODE.search(body)
    if code is None:
        return None
    text = _XML_TEXT.search(body)
    description = html.unescape(text.group(1)) if text else ""
    return api_error(abs(int(code.group(1))), description)


def _json_error(data: object) -> SmscApiError | None:
    if not isinstance(data, dict) or "error_code" not in data:
        return None
    code = _as_int(data.get("error_code"))
    if code is None:
        return None
    return api_error(abs(code), _as_text(data.get("error")))


def _describe_unexpected(body: str) -> str:
    """Say what kind of wrong answer this is, without echoing it (it may be a whole page)."""
    lowered = body[:200].lower()
    if lowered.startswith(("<!doctype html", "<html")) or "<html" in lowered:
        return "SMSC sent a web page instead of an API answer"
    if body.startswith(("{", "[")):
        return "SMSC sent incomplete or unexpected JSON"
    if not body:
        return "SMSC sent an empty answer"
    return SmscBadResponseError.default_message


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return _json_int(text)
    return None


def _json_int(text: str) -> int:
    """An integer literal as an int; one too long to be in range becomes an out-of-range int."""
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        return -_OUT_OF_RANGE if text.startswith("-") else _OUT_OF_RANGE
    return int(text)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        text = str(value)
    except RecursionError:
        return ""
    return text[: MAX_TEXT * 4]  # clean_text cuts it further
