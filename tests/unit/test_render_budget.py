"""Every text we send fits Telegram whatever the input: a seeded property test of bot.texts.

hypothesis is not a dependency, so a seeded generator of hostile strings (long runs, astral
characters, HTML metacharacters, entities, newlines, right-to-left text, combining marks) feeds
every public renderer. Each result must parse as Telegram's HTML (the emulator's port of TDLib's
parser, strict about entities) and stay within the limit after parsing, and what it shows must
not be empty.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.smsc.models import MAX_TASK_ID, Task, TaskStatus
from bot.telegram.task_csv import FileFacts
from bot.texts import characters, markup, watcher_alerts
from bot.texts import commands as command_texts
from bot.texts import help as help_texts
from bot.texts import status as status_texts
from bot.texts import tasks as task_texts
from bot.texts.help import not_allowed_text, usage_text
from bot.texts.i18n import LANGUAGES, Language, Translator, translator
from bot.texts.markup import CAPTION_LIMIT, MESSAGE_LIMIT, esc, fit, shorten, utf16_len, visible_len
from bot.texts.status import StatusInfo, status_text
from bot.texts.tasks import (
    STATUS_FILTERS,
    document_caption,
    task_line,
    task_status_text,
    tasks_page,
)
from bot.tg_emulator.entities import parse_html

PIECES = [
    "<", ">", "&", "&amp;", "&lt;", "&#1;", "<b>", "</b>", "</i>", "<a href='x'>", "\n", "\r\n",
    "\t", " ", "  ", "😀", "\U0001d54f",
    "👨‍👩‍👧", "Ж", "Рассылка ", "\u202e", "\u200f", "\u2066", "שלום",
    "مرحبا", "e\u0301", "\ufffd", "\u200b", "0", "9", "#", "/get", "\x01", "\x7f", "…", "a",
]  # fmt: skip
ROUNDS = 100


def hostile(rng: random.Random, longest: int = 2500) -> str:
    """A string built to break budgets and HTML (lone surrogates excluded: parsing drops them)."""
    roll = rng.random()
    if roll < 0.08:
        return ""
    if roll < 0.3:
        return rng.choice(PIECES) * rng.randint(1, longest)
    count = rng.randint(1, rng.choice([3, 30, 300, longest]))
    return "".join(rng.choice(PIECES) for _ in range(count))


def moment(rng: random.Random) -> datetime:
    return datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 3_000_000_000))


def hostile_task(rng: random.Random) -> Task:
    return Task(
        id=rng.choice([0, 1, rng.randint(0, 10**6), MAX_TASK_ID, rng.randint(0, MAX_TASK_ID)]),
        name=hostile(rng),
        status=rng.choice(list(TaskStatus)),
        created_raw=hostile(rng),
        time_raw=hostile(rng),
        created=moment(rng) if rng.random() < 0.5 else None,
        time=moment(rng) if rng.random() < 0.5 else None,
        file=hostile(rng),
    )


def hostile_facts(rng: random.Random) -> FileFacts:
    return FileFacts(
        filename=hostile(rng),
        size=rng.randint(0, 2**62),
        original_size=rng.randint(0, 2**62),
        rows=rng.choice([None, 0, rng.randint(0, 2**62)]),
        compressed=rng.random() < 0.5,
    )


def hostile_status(rng: random.Random) -> StatusInfo:
    now = moment(rng)
    return StatusInfo(
        version=hostile(rng),
        uptime=timedelta(seconds=rng.randint(0, 10**10)),
        now=now,
        last_success=rng.choice([None, moment(rng)]),
        last_error=rng.choice([None, hostile(rng)]),
        last_error_at=rng.choice([None, moment(rng)]),
        last_poll=rng.choice([None, moment(rng)]),
        subscribers=rng.randint(0, 10**12),
        queued_alerts=rng.randint(0, 10**12),
        watching=rng.random() < 0.5,
        skipped_items=rng.choice([0, rng.randint(0, 10**9)]),
    )


def tasks_page_text(rng: random.Random, t: Translator) -> str:
    tasks = [hostile_task(rng) for _ in range(rng.randint(0, 20))]
    page = tasks_page(
        tasks,
        status_filter=rng.choice([None, *STATUS_FILTERS, hostile(rng, 50)]),
        before_id=rng.choice([None, rng.randint(0, MAX_TASK_ID)]),
        per_page=rng.randint(1, 60),
        t=t,
    )
    if page.shown:
        assert f"#{page.older_before_id}</b>" in page.text or page.older_before_id is None
    return page.text


Make = Callable[[random.Random, Translator], str]

# Every public renderer of a message or caption, and the limit its result must respect.
RENDERERS: dict[str, tuple[int, Make]] = {
    "tasks_page": (MESSAGE_LIMIT, tasks_page_text),
    "task_line": (MESSAGE_LIMIT, lambda r, t: task_line(hostile_task(r), t)),
    "usage_text": (MESSAGE_LIMIT, lambda r, t: usage_text(t)),
    "not_allowed_text": (
        MESSAGE_LIMIT,
        lambda r, t: not_allowed_text(r.randint(-(2**63), 2**63 - 1), t),
    ),
    "document_caption": (
        CAPTION_LIMIT,
        lambda r, t: document_caption(hostile_task(r), t)(hostile_facts(r)),
    ),
    "task_status_text": (MESSAGE_LIMIT, lambda r, t: task_status_text(hostile_task(r), t)),
    "status_text": (MESSAGE_LIMIT, lambda r, t: status_text(hostile_status(r), t)),
    "completion_caption": (
        CAPTION_LIMIT,
        lambda r, t: watcher_alerts.completion_caption(
            hostile_task(r),
            moment(r),
            size=r.randint(0, 2**62),
            rows=r.choice([None, r.randint(0, 2**62)]),
            compressed=r.random() < 0.5,
            t=t,
        ),
    ),
    "completion_without_file_text": (
        MESSAGE_LIMIT,
        lambda r, t: watcher_alerts.completion_without_file_text(
            hostile_task(r), moment(r), hostile(r), t
        ),
    ),
    "failure_text": (
        MESSAGE_LIMIT,
        lambda r, t: watcher_alerts.failure_text(hostile_task(r), moment(r), t),
    ),
    "canceled_text": (MESSAGE_LIMIT, lambda r, t: watcher_alerts.canceled_text(hostile_task(r), t)),
    "problem_text": (MESSAGE_LIMIT, lambda r, t: watcher_alerts.problem_text(hostile(r), t)),
    "recovered_text": (MESSAGE_LIMIT, lambda r, t: watcher_alerts.recovered_text(hostile(r), t)),
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_every_renderer_fits_and_parses_whatever_the_input(name: str, language: Language) -> None:
    limit, make = RENDERERS[name]
    t = translator(language)
    rng = random.Random(f"render-{name}")
    for round_ in range(ROUNDS):
        text = make(rng, t)
        parsed = parse_html(text)  # raises on a tag or entity cut in half, or left open
        shown = utf16_len(parsed.text)
        assert shown <= limit, (name, language, round_, shown)
        assert parsed.text.strip(), (name, language, round_)
        assert visible_len(text) == shown  # our measure is Telegram's


@pytest.mark.parametrize("language", LANGUAGES)
def test_command_menu_fits_telegram_in_every_language(language: Language) -> None:
    menu = command_texts.menu(translator(language))
    assert [name for name, _ in menu] == [c.name for c in command_texts.COMMANDS]
    for _, description in menu:
        assert 1 <= len(description) <= 256  # BotCommand.description's limits
    if language == "ru":
        assert all(any("а" <= ch <= "я" for ch in d) for _, d in menu)  # noqa: RUF001


def test_public_renderers_are_all_covered() -> None:
    helpers = {
        "esc", "neutralise", "shorten", "utf16_len", "visible_len", "fit", "format_when",
        "format_duration", "format_size", "without_controls",
    }  # fmt: skip
    modules = (markup, characters, task_texts, status_texts, watcher_alerts, help_texts)
    public = {
        name
        for module in modules
        for name, value in vars(module).items()
        if callable(value)
        and not name.startswith("_")
        and getattr(value, "__module__", "") == module.__name__
        and not isinstance(value, type)
    }
    assert public - helpers == set(RENDERERS)


@pytest.mark.parametrize("seed", range(40))
def test_fit_cuts_between_tags_and_entities_and_closes_them(seed: int) -> None:
    rng = random.Random(seed)
    parts: list[str] = []
    open_tags: list[str] = []
    for _ in range(rng.randint(1, 400)):
        roll = rng.random()
        if roll < 0.2 and len(open_tags) < 3:
            tag = rng.choice(["b", "i", "code", "u"])
            parts.append(f"<{tag}>")
            open_tags.append(tag)
        elif roll < 0.35 and open_tags:
            parts.append(f"</{open_tags.pop()}>")
        else:
            parts.append(esc(hostile(rng, 50)))
    parts += [f"</{tag}>" for tag in reversed(open_tags)]
    text = "".join(parts)
    limit = rng.randint(1, max(1, visible_len(text) + 5))

    result = fit(text, limit)

    parsed = parse_html(result)
    assert utf16_len(parsed.text) <= limit
    if visible_len(text) > limit:
        assert parsed.text.endswith("…")
    else:
        assert result == text


def test_overlong_fields_are_cut_with_an_ellipsis() -> None:
    task = Task(
        id=1,
        name="N" * 50_000,
        status=TaskStatus.FAILED,
        created_raw="C" * 50_000,
        time_raw="😀" * 50_000,
        file="F" * 50_000,
    )
    text = parse_html(watcher_alerts.failure_text(task, datetime(2026, 1, 1, tzinfo=UTC))).text
    assert "N" * 79 + "…" in text  # the name, at its own limit
    assert "C" * 39 + "…" in text  # the raw time, at its own
    assert "😀" * 19 + "…" in text  # 19 astral characters are 38 UTF-16 units
    assert utf16_len(text) < 400


def test_shorten_counts_utf16_units_and_never_splits_a_pair() -> None:
    assert shorten("😀" * 10, 5) == "😀😀…"
    assert utf16_len(shorten("😀" * 10, 6)) <= 6
    assert shorten("a\nb\t c", 80) == "a b c"
    assert shorten("", 5) == ""


def test_page_budget_is_measured_not_tuned() -> None:
    # Both languages, and a smaller limit standing in for longer wording: the page still fits and
    # still shows at least one task, and nothing is cut mid-line by the final guard.
    tasks = [Task(id=i, name="Ж" * 80, status=TaskStatus.COMPLETED) for i in range(1, 30)]
    for limit in (300, 700, 1500, 4096):
        for t in (translator("en"), translator("ru")):
            page = tasks_page(tasks, per_page=30, limit=limit, t=t)
            parsed = parse_html(page.text)
            assert utf16_len(parsed.text) <= limit
            assert page.shown >= 1
            assert "…</i>" not in page.text  # the guard did not have to cut
            assert page.older_before_id == (None if page.shown == 29 else 30 - page.shown)


def test_status_shows_skipped_items() -> None:
    info = StatusInfo(
        version="1.0",
        uptime=timedelta(seconds=5),
        now=datetime(2026, 1, 1, tzinfo=UTC),
        last_success=None,
        last_error=None,
        last_error_at=None,
        last_poll=datetime(2026, 1, 1, tzinfo=UTC),
        subscribers=1,
        queued_alerts=0,
        watching=True,
        skipped_items=3,
    )
    assert "3 unusable SMSC list items skipped" in status_text(info)


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=3))),
        datetime(9999, 12, 31, 23, tzinfo=UTC),
    ],
)
def test_times_at_the_edge_of_datetime_render(when: datetime) -> None:
    # A payload stored before parsing refused such years comes back with a plain +03:00.
    task = Task(id=1, name="x", status=TaskStatus.FAILED, created=when, created_raw="raw!")
    text = watcher_alerts.failure_text(task, datetime(2026, 1, 1, tzinfo=UTC))
    assert "created raw!" in text  # shown as SMSC sent it, not an OverflowError
    parse_html(text)
