# ruff: noqa: RUF001 - Cyrillic sample data on purpose
"""SMSC's error answers to values: every code and shape, in list answers and file bodies, and
the sniffing of a file's head.
"""

from __future__ import annotations

import json

import pytest

from bot.smsc.errors import (
    SmscApiError,
    SmscBadResponseError,
    SmscNotFoundError,
    SmscRateLimitedError,
)
from bot.smsc.parsing import classify_file_head, error_from_body, parse_error, parse_task_page
from tests.fakes.smsc_support import ERRORS


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
        parse_task_page(error_body(9, fmt))


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
