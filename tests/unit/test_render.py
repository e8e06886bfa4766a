"""Rendering: escaping, Telegram's limits whatever the names, times as SMSC shows them.

Limits are checked as Telegram checks them: on the text after entity parsing, with the Bot API
emulator's port of TDLib's HTML parser (which also proves the HTML well formed).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.smsc.models import SMSC_TZ, Task, TaskStatus
from bot.texts.markup import CAPTION_LIMIT, MESSAGE_LIMIT, utf16_len
from bot.texts.tasks import format_duration, format_size, tasks_page
from bot.texts.watcher_alerts import completion_caption
from bot.tg_emulator.entities import parse_html


def shown_len(text: str) -> int:
    """UTF-16 length of the text Telegram would show (raises if the HTML does not parse)."""
    return utf16_len(parse_html(text).text)


def task(i: int, name: str, status: TaskStatus = TaskStatus.COMPLETED) -> Task:
    return Task(
        id=i, name=name, status=status, created_raw="01.11.2026 10:00:00", time_raw="garbage!"
    )


@pytest.mark.parametrize("name", ["<&>" * 500, "😀" * 2000, "a\nb\n" * 300, "Ж" * 5000])
def test_tasks_page_fits_the_message_limit(name: str) -> None:
    page = tasks_page([task(i, name) for i in range(200)], per_page=200)
    assert shown_len(page.text) <= MESSAGE_LIMIT
    assert page.shown > 0
    assert page.older_before_id is not None
    assert "<&>" not in page.text  # escaped


def test_paging_walks_every_task_once() -> None:
    tasks = [task(i, f"t{i}") for i in range(1, 26)]
    seen: list[int] = []
    before = None
    while True:
        page = tasks_page(tasks, before_id=before, per_page=10)
        seen += [t.id for t in tasks if f"#{t.id}</b>" in page.text]
        if page.older_before_id is None:
            break
        before = page.older_before_id
    assert sorted(seen, reverse=True) == list(range(25, 0, -1))


def test_unparsed_time_is_shown_raw() -> None:
    page = tasks_page([task(1, "x")])
    assert "started garbage!" in page.text


def test_caption_fits_and_reports_facts() -> None:
    t = Task(
        id=9,
        name="<" * 2000,
        status=TaskStatus.COMPLETED,
        created=datetime(2026, 11, 1, 10, 0, tzinfo=SMSC_TZ),
        time=datetime(2026, 11, 1, 10, 0, tzinfo=SMSC_TZ),
    )
    detected = datetime(2026, 11, 1, 7, 5, 30, tzinfo=UTC)  # 10:05:30 MSK
    caption = completion_caption(t, detected, size=3 * 1024 * 1024, rows=12345, compressed=True)
    assert shown_len(caption) <= CAPTION_LIMIT
    assert "took ~5 min 30 s" in caption
    assert "3.0 MB zipped" in caption
    assert "12,345 rows" in caption  # Babel: the locale groups digits


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (59, "59 s"), (61, "1 min 01 s"), (7322, "2 h 02 min"), (-5, "0 s")],
)
def test_durations(seconds: int, text: str) -> None:
    assert format_duration(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(("size", "text"), [(5, "5 B"), (2048, "2.0 KB"), (5 * 1024**3, "5.0 GB")])
def test_sizes(size: int, text: str) -> None:
    assert format_size(size) == text
