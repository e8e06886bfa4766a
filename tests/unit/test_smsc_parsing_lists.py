"""SMSC task lists to values: numbers and strings, time formats, skipped and hostile items,
sanitised text fields.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest

from bot.smsc.errors import SmscBadResponseError
from bot.smsc.models import MAX_TASK_ID, SMSC_TZ, TaskStatus
from bot.smsc.parsing import MAX_TEXT, clean_text, collect_skipped, parse_smsc_time, parse_task_page


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

    tasks = parse_task_page(body).tasks

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

    (task,) = parse_task_page(body).tasks

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
    assert page.skipped.count == 7
    assert page.skipped.sample.startswith("item 1: no id")
    (line,) = [r.getMessage() for r in caplog.records]  # one line for the page, not one per item
    assert "Skipped 7 unusable SMSC list items" in line


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
        parse_task_page(body)


def test_empty_list_is_fine() -> None:
    assert parse_task_page("[]").tasks == ()
    assert parse_task_page("\ufeff[]\n").tasks == ()


# --- hostile items: skipped or sanitised, never the whole list (issue 8) ----------------------

HOSTILE_ITEMS: list[tuple[str, str]] = [
    ('{"id": 99999999999999999999, "name": "huge", "status": 2}', "id out of range"),
    ('{"id": "99999999999999999999", "name": "huge text", "status": 2}', "id out of range"),
    ('{"id": 9223372036854775808, "name": "int64 + 1", "status": 2}', "id out of range"),
    ('{"id": ' + "9" * 5000 + ', "name": "5000 digits", "status": 2}', "id out of range"),
    ('{"id": "' + "9" * 5000 + '", "name": "5000 digits text", "status": 2}', "id out of range"),
    ('{"id": 1e300, "name": "float", "status": 2}', "id out of range"),
    ('{"id": -5, "name": "negative", "status": 2}', "id out of range"),
    ('{"id": 1.5, "name": "fraction", "status": 2}', "id is not an integer"),
    ('{"id": NaN, "name": "nan", "status": 2}', "id is not an integer"),
    ('{"id": Infinity, "name": "inf", "status": 2}', "id is not an integer"),
    ('{"id": [7], "name": "list", "status": 2}', "id is not an integer"),
    ('{"id": null, "name": "null", "status": 2}', "no id"),
    ('{"id": 7, "name": "no status"}', "no status"),
    ('{"id": 7, "name": "status null", "status": null}', "no status"),
    ('{"id": 7, "name": "status dict", "status": {"v": 2}}', "status is not an integer"),
    ('{"id": 7, "name": "status huge", "status": 99999999999999999999}', "unknown status"),
    ('{"id": 7, "name": "status -1", "status": -1}', "unknown status"),
    ("[1, 2]", "not an object"),
    ('"text"', "not an object"),
    ("12", "not an object"),
]


@pytest.mark.parametrize(("item", "reason"), HOSTILE_ITEMS)
def test_a_hostile_item_is_skipped_and_the_rest_kept(item: str, reason: str) -> None:
    body = f'[{{"id": 3, "name": "good", "status": 2}}, {item}, {{"id": 1, "status": 4}}]'

    page = parse_task_page(body)

    assert [t.id for t in page.tasks] == [3, 1]
    assert page.skipped.count == 1
    assert page.skipped.sample.startswith(f"item 1: {reason}:")
    assert len(page.skipped.sample) <= 200  # a sample, not the whole item


def test_int64_bounds_are_kept() -> None:
    body = json.dumps([{"id": MAX_TASK_ID, "status": 2}, {"id": 0, "status": 1}])

    assert [t.id for t in parse_task_page(body).tasks] == [MAX_TASK_ID, 0]


@pytest.mark.parametrize(
    ("field_json", "expected"),
    [
        ('"\\ud800"', "\ufffd"),
        ('"a\\udfffb"', "a\ufffdb"),
        ('"\\ud83d\\ude00 pair"', "😀 pair"),  # a proper pair is one character, kept
        ('"nul\\u0000here"', "nulhere"),
        ("null", ""),
        ("12345", "12345"),
        ("true", "True"),
        ('{"a": 1}', "{'a': 1}"),
        ("[1, 2]", "[1, 2]"),
    ],
)
def test_text_fields_are_sanitised(field_json: str, expected: str) -> None:
    body = (
        f'[{{"id": 1, "status": 2, "name": {field_json}, "file": {field_json},'
        f' "created": {field_json}, "time": {field_json}}}]'
    )

    (task,) = parse_task_page(body).tasks

    assert task.name == task.file == task.created_raw == task.time_raw == expected
    task.name.encode("utf-8")  # storable: SQLite would raise on a lone surrogate


def test_absurdly_long_fields_are_cut() -> None:
    huge = "Ж" * 1_000_000
    body = json.dumps([{"id": 1, "status": 2, "name": huge, "created": huge, "file": huge}])

    (task,) = parse_task_page(body).tasks

    assert len(task.name) == len(task.created_raw) == len(task.file) == MAX_TEXT
    assert task.name.endswith("…")
    assert task.created is None


def test_clean_text_cuts_before_replacing() -> None:
    assert clean_text("\ud800" * 5, limit=3) == "\ufffd\ufffd…"


def test_deeply_nested_json_is_a_bad_response_not_a_crash() -> None:
    body = "[" * 100_000 + "]" * 100_000

    with pytest.raises(SmscBadResponseError, match="nested"):
        parse_task_page(body)


def test_many_bad_rows_log_one_line(caplog: pytest.LogCaptureFixture) -> None:
    rows = [{"id": -i, "status": 2} for i in range(1, 10_001)] + [{"id": 5, "status": 2}]

    with caplog.at_level(logging.WARNING, logger="bot.smsc.parsing"):
        page = parse_task_page(json.dumps(rows))

    assert [t.id for t in page.tasks] == [5]
    assert page.skipped.count == 10_000
    assert len(caplog.records) == 1
    assert "10000" in caplog.records[0].getMessage()


def test_a_collector_gathers_pages_and_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    bad = json.dumps([{"id": None, "status": 2}, {"id": 2, "status": 2}])

    with caplog.at_level(logging.WARNING), collect_skipped() as collected:
        parse_task_page(bad)
        parse_task_page(bad)
        parse_task_page("[]")

    assert collected.pages == 3
    assert collected.report.count == 2
    assert collected.report.sample.startswith("item 0: no id")
    assert caplog.records == []
    with caplog.at_level(logging.WARNING):
        parse_task_page(bad)  # outside the scope: logged again
    assert len(caplog.records) == 1


@pytest.mark.parametrize(
    "raw", ["01.01.0001 00:00:00", "31.12.9999 23:59:59", "01.01.1969 00:00:00"]
)
def test_implausible_years_are_kept_raw(raw: str) -> None:
    (task,) = parse_task_page(json.dumps([{"id": 1, "status": 2, "created": raw}])).tasks

    assert task.created is None
    assert task.created_raw == raw
