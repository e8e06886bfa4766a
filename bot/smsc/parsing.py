"""SMSC answers to values: task lists (fmt=3) and errors in any of SMSC's four shapes.

We always ask for fmt=3 (JSON), but SMSC has been seen answering errors in other shapes, so every
error shape is recognised wherever an answer is read:

* ``ERROR = N (description)``   (fmt=0)
* ``0,-N``                      (fmt=1)
* ``<result><error>description</error><error_code>N</error_code></result>``  (fmt=2)
* ``{"error": "description", "error_code": N}``                              (fmt=3)

List items SMSC sends that we cannot use (no id, a status outside 0..4, not an object) are skipped
with a warning instead of failing the whole list: one odd task must not hide all the others.
"""

from __future__ import annotations

import html
import json
import logging
import re
from datetime import datetime
from typing import Any, Literal, NamedTuple

from bot.smsc.errors import (
    API_ERRORS,
    SmscApiError,
    SmscBadResponseError,
    SmscError,
    SmscUnknownApiError,
)
from bot.smsc.models import SMSC_TIME_FORMAT, SMSC_TZ, Task, TaskStatus

log = logging.getLogger(__name__)

_TEXT_ERROR = re.compile(r"ERROR\s*=\s*(-?\d+)\s*(?:\((.*)\))?\s*", re.DOTALL | re.IGNORECASE)
_CSV_ERROR = re.compile(r"0\s*,\s*-(\d+)\s*")
_XML_CODE = re.compile(r"<error_code>\s*(-?\d+)\s*</error_code>", re.IGNORECASE)
_XML_TEXT = re.compile(r"<error>(.*?)</error>", re.IGNORECASE | re.DOTALL)
_INTEGER = re.compile(r"-?[0-9]+")
_BOM = "\ufeff"
_MAX_DESCRIPTION = 300

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


class TaskPage(NamedTuple):
    """One get_list answer: the usable tasks, and what paging needs to know about the raw list."""

    tasks: tuple[Task, ...]
    item_count: int  # items SMSC sent, usable or not
    last_id: int | None  # id of the last item that had one, in SMSC's order


def parse_task_list(text: str) -> list[Task]:
    """Parse a get_list answer (fmt=3) into tasks, raising the SMSC error it carries if any."""
    return list(parse_task_page(text).tasks)


def parse_task_page(text: str) -> TaskPage:
    """Parse a get_list answer (fmt=3) into a page, raising the SMSC error it carries if any."""
    body = text.strip().lstrip(_BOM).strip()
    if error := parse_error(body):
        raise error
    if not body:
        raise SmscBadResponseError("SMSC sent an empty answer")
    try:
        data = json.loads(body)
    except ValueError as err:
        raise SmscBadResponseError(_describe_unexpected(body)) from err
    if not isinstance(data, list):
        raise SmscBadResponseError("SMSC sent an answer that is not a task list")
    tasks: list[Task] = []
    last_id: int | None = None
    for index, item in enumerate(data):
        item_id = _as_int(item.get("id")) if isinstance(item, dict) else None
        if item_id is not None:
            last_id = item_id
        task = parse_task(item)
        if task is None:
            log.warning("Skipping SMSC list item %d: no usable id or status", index)
            continue
        tasks.append(task)
    return TaskPage(tuple(tasks), len(data), last_id)


def parse_task(item: object) -> Task | None:
    """Turn one get_list item into a Task, or None when it has no usable id or status."""
    if not isinstance(item, dict):
        return None
    task_id = _as_int(item.get("id"))
    status_number = _as_int(item.get("status"))
    if task_id is None or status_number is None:
        return None
    try:
        status = TaskStatus(status_number)
    except ValueError:
        return None
    created_raw = _as_text(item.get("created"))
    time_raw = _as_text(item.get("time"))
    return Task(
        id=task_id,
        name=_as_text(item.get("name")),
        status=status,
        created_raw=created_raw,
        time_raw=time_raw,
        created=parse_smsc_time(created_raw),
        time=parse_smsc_time(time_raw),
        file=_as_text(item.get("file")),
    )


def parse_smsc_time(raw: str) -> datetime | None:
    """Parse SMSC's "dd.mm.yyyy hh:mm:ss" (Moscow time) into an aware datetime, else None."""
    text = raw.strip()
    if not text:
        return None
    try:
        naive = datetime.strptime(text, SMSC_TIME_FORMAT)  # noqa: DTZ007 - zone set next line
    except ValueError:
        return None
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
            return int(text)
    return None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return str(value)
