# ruff: noqa: RUF001 - Cyrillic sample data on purpose
"""SMSC answers to values: error shapes, task lists, time formats, file-head sniffing."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest

from bot.smsc.errors import (
    SmscApiError,
    SmscAuthError,
    SmscBadResponseError,
    SmscIpBlockedError,
    SmscNotFoundError,
    SmscParameterError,
    SmscRateLimitedError,
    SmscUnknownApiError,
)
from bot.smsc.models import SMSC_TZ, TaskStatus
from bot.smsc.parsing import (
    classify_file_head,
    error_from_body,
    parse_error,
    parse_smsc_time,
    parse_task_list,
    parse_task_page,
)

ERRORS: dict[int, type[SmscApiError]] = {
    1: SmscParameterError,
    2: SmscAuthError,
    4: SmscIpBlockedError,
    5: SmscNotFoundError,
    9: SmscRateLimitedError,
    7: SmscUnknownApiError,
}


def error_body(code: int, fmt: int, description: str = "описание & <detail>") -> str:
    """Write SMSC's error in format `fmt`, as the API page shows it."""
    if fmt == 0:
        return f"ERROR = {code} ({description})"
    if fmt == 1:
        return f"0,-{code}"
    if fmt == 2:
        escaped = description.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f"<result>\n<error>{escaped}</error>\n<error_code>{code}</error_code>\n</result>"
    return json.dumps({"error": description, "error_code": code}, ensure_ascii=False)


@pytest.mark.parametrize("fmt", [0, 1, 2, 3])
@pytest.mark.parametrize("code", sorted(ERRORS))
def test_every_error_code_in_every_format(code: int, fmt: int) -> None:
    err = parse_error(error_body(code, fmt))

    assert type(err) is ERRORS[code]
    assert err.code == code
    if fmt != 1:  # 0,-N carries no description
        assert err.description == "описание & <detail>"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("\ufeff  ERROR = 2 (authorise error)\r\n", 2),
        ("ERROR=9", 9),
        ("error = 5 (task or file not found)", 5),
        (" 0 , -4 \n", 4),
        (
            '<?xml version="1.0" encoding="utf-8"?><result><error>x</error>'
            "<error_code>1</error_code></result>",
            1,
        ),
        ('{"error_code": "9", "error": "duplicate request, wait a minute"}', 9),
        ('{"error": "x", "error_code": -2}', 2),
    ],
)
def test_error_shape_variants(body: str, code: int) -> None:
    err = parse_error(body)

    assert err is not None
    assert err.code == code


@pytest.mark.parametrize(
    "body",
    ["", "[]", '[{"id": 1}]', '{"id": 1, "status": 2}', '{"error": "no code"}', "hello", "0,5"],
)
def test_not_an_error(body: str) -> None:
    assert parse_error(body) is None


def test_error_messages_are_human_and_description_is_kept_apart() -> None:
    err = parse_error(error_body(2, 3, "authorise error"))

    assert str(err) == "SMSC rejected the login or password (or this IP is not allowed)"
    assert isinstance(err, SmscApiError)
    assert err.description == "authorise error"


@pytest.mark.parametrize("fmt", [0, 1, 2, 3])
def test_list_answer_that_is_an_error_raises_it(fmt: int) -> None:
    with pytest.raises(SmscRateLimitedError):
        parse_task_list(error_body(9, fmt))


def test_list_with_numbers_and_strings() -> None:
    body = json.dumps(
        [
            {
                "id": 12,
                "name": "Рассылка",
                "status": 2,
                "created": "24.11.2026 10:05:00",
                "time": "24.11.2026 10:06:30",
                "file": "r.csv",
            },
            {"id": "11", "name": "B", "status": "1", "created": "", "time": "", "file": ""},
            {"id": 10, "name": "C", "status": "0", "extra": {"nested": True}, "colour": "red"},
        ]
    )

    tasks = parse_task_list(body)

    assert [t.id for t in tasks] == [12, 11, 10]
    assert [t.status for t in tasks] == [
        TaskStatus.COMPLETED,
        TaskStatus.RUNNING,
        TaskStatus.PENDING,
    ]
    first = tasks[0]
    assert first.created == datetime(2026, 11, 24, 10, 5, tzinfo=SMSC_TZ)
    assert first.time == datetime(2026, 11, 24, 10, 6, 30, tzinfo=SMSC_TZ)
    assert first.created_raw == "24.11.2026 10:05:00"
    assert first.file == "r.csv"
    assert tasks[1].created is None
    assert tasks[1].created_raw == ""
    assert tasks[2].name == "C"
    assert tasks[2].file == ""


@pytest.mark.parametrize(
    "raw",
    ["", "  ", "2026-11-24T10:05:00+03:00", "garbage", "31.02.2026 10:00:00", "24.11.2026"],
)
def test_unusual_times_keep_the_raw_text(raw: str) -> None:
    body = json.dumps([{"id": 1, "name": "x", "status": 0, "created": raw, "time": raw}])

    (task,) = parse_task_list(body)

    assert task.created is None
    assert task.time is None
    assert task.created_raw == raw
    assert task.time_raw == raw


def test_parse_smsc_time_is_aware_moscow_time() -> None:
    parsed = parse_smsc_time("01.01.2027 00:00:00")

    assert parsed is not None
    assert parsed.utcoffset() is not None
    assert parsed.isoformat() == "2027-01-01T00:00:00+03:00"


def test_unusable_items_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps(
        [
            {"id": 5, "name": "ok", "status": 2},
            {"name": "no id", "status": 2},
            {"id": 4, "name": "status 7", "status": 7},
            {"id": 3, "name": "status text", "status": "done"},
            {"id": "x3", "name": "id text", "status": 1},
            {"id": True, "name": "bool id", "status": 1},
            "not an object",
            None,
            {"id": 1, "name": "ok too", "status": "4"},
        ]
    )

    with caplog.at_level(logging.WARNING, logger="bot.smsc.parsing"):
        page = parse_task_page(body)

    assert [t.id for t in page.tasks] == [5, 1]
    assert page.item_count == 9
    assert page.last_id == 1
    assert len([r for r in caplog.records if "Skipping SMSC list item" in r.getMessage()]) == 7


def test_page_last_id_counts_skipped_items() -> None:
    page = parse_task_page(json.dumps([{"id": 9, "status": 2}, {"id": 8, "status": 99}]))

    assert [t.id for t in page.tasks] == [9]
    assert page.last_id == 8


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty"),
        ("   \r\n", "empty"),
        ("<!DOCTYPE html><html><body><form>login</form></body></html>", "web page"),
        ('[{"id": 1, "name": "trunc', "JSON"),
        ('{"balance": "10.5"}', "not a task list"),
        ('"just a string"', "not a task list"),
        ("id = 1, name = x, status = 2", "could not understand"),
        ("\x00\x1f\x8b OK?? id=;;status\ufffd<<partial", "could not understand"),
    ],
)
def test_bodies_that_are_not_a_list(body: str, message: str) -> None:
    with pytest.raises(SmscBadResponseError, match=message):
        parse_task_list(body)


def test_empty_list_is_fine() -> None:
    assert parse_task_list("[]") == []
    assert parse_task_list("\ufeff[]\n") == []


@pytest.mark.parametrize(
    ("head", "complete", "verdict"),
    [
        (b"phone;message;status;sent_at;cost\r\n79001234567;", False, "data"),
        ("телефон;сообщение\r\n".encode("cp1251"), True, "data"),
        ("\ufeffтелефон;сообщение\r\n".encode(), False, "data"),
        (b"ERROR = 5 (task or file not found)", True, "error"),
        (b"ERROR=9", True, "error"),
        (b'{"error": "x", "error_code": 2}', True, "error"),
        (b'\xef\xbb\xbf\n{"error": "x"', False, "error"),
        (b"<result><error>x</error><error_code>4</error_code></result>", True, "error"),
        (b"<!DOCTYPE html>\n<html>", False, "error"),
        (b"[1, 2", False, "error"),
        (b"0,-9", True, "error"),
        (b"0,-9\r\n", True, "error"),
        (b"0,-9;a;b\r\n0,-8;c;d\r\n", True, "data"),
        (b"0,-9", False, "data"),
        (b"ERROR;code\r\n1;2\r\n", True, "data"),
        (b"\x00\x1f\x8b OK?? id=;;status", True, "binary"),
        (b"PK\x03\x04\x14\x00\x00\x00", False, "binary"),
        (b"", True, "empty"),
        (b"  \r\n", True, "empty"),
    ],
)
def test_classify_file_head(head: bytes, complete: bool, verdict: str) -> None:
    assert classify_file_head(head, complete=complete) == verdict


@pytest.mark.parametrize("fmt", [0, 1, 2, 3])
@pytest.mark.parametrize("code", sorted(ERRORS))
def test_error_from_file_body(code: int, fmt: int) -> None:
    err = error_from_body(error_body(code, fmt).encode())

    assert type(err) is ERRORS[code]


def test_error_from_file_body_in_cp1251() -> None:
    err = error_from_body("ERROR = 5 (задание не найдено)".encode("cp1251"))

    assert isinstance(err, SmscNotFoundError)
    assert err.description == "задание не найдено"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>Login</body></html>", "web page"),
        (b'{"ok": true}', "JSON"),
        (b"[]", "JSON"),
    ],
)
def test_file_body_that_is_not_an_error(body: bytes, message: str) -> None:
    err = error_from_body(body)

    assert isinstance(err, SmscBadResponseError)
    assert message in str(err)
