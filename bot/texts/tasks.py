"""Tasks as /tasks and /get show them: the list, a task's line, times and sizes, a caption."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.smsc.models import SMSC_TIME_FORMAT, SMSC_TZ, Task, TaskStatus
from bot.texts.i18n import N_, SOURCE, Translator
from bot.texts.markup import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    TIME_LIMIT,
    WORD_LIMIT,
    esc,
    fit,
    shorten,
    visible_len,
)

if TYPE_CHECKING:
    from bot.telegram.task_csv import FileFacts

# `/tasks <filter>` words, mapped to the statuses they show.
STATUS_FILTERS: dict[str, frozenset[TaskStatus]] = {
    "pending": frozenset({TaskStatus.PENDING}),
    "queued": frozenset({TaskStatus.PENDING}),
    "running": frozenset({TaskStatus.RUNNING}),
    "active": frozenset({TaskStatus.PENDING, TaskStatus.RUNNING}),
    "completed": frozenset({TaskStatus.COMPLETED}),
    "done": frozenset({TaskStatus.COMPLETED}),
    "canceled": frozenset({TaskStatus.CANCELED}),
    "cancelled": frozenset({TaskStatus.CANCELED}),
    "failed": frozenset({TaskStatus.FAILED}),
    "error": frozenset({TaskStatus.FAILED}),
}


def format_when(parsed: datetime | None, raw: str) -> str:
    """Show an SMSC time as SMSC's own text, or the raw text if it was not parseable."""
    if parsed is not None:
        try:
            return parsed.astimezone(SMSC_TZ).strftime(SMSC_TIME_FORMAT)
        except (OverflowError, ValueError):  # a time at the very edge of datetime's range
            pass
    return shorten(raw, TIME_LIMIT) or "—"


def format_duration(delta: timedelta, t: Translator = SOURCE) -> str:
    """Render a duration like '2 h 05 min', '3 min 20 s' or '40 s' (in `t`'s language)."""
    return t.format_duration(delta)


def format_size(size: int, t: Translator = SOURCE) -> str:
    """Render a byte count for people (in `t`'s language)."""
    return t.format_size(size)


def task_line(task: Task, t: Translator = SOURCE) -> str:
    """One task as two lines of a list."""
    _ = t.gettext
    status = task.status
    head = f"{status.icon} <b>#{task.id}</b> {esc(shorten(task.name))} — <i>{t.status(status)}</i>"
    when = _("created {when}").format(when=esc(format_when(task.created, task.created_raw)))
    if task.time is not None or task.time_raw.strip():
        when += " · " + _("started {when}").format(when=esc(format_when(task.time, task.time_raw)))
    return f"{head}\n    {when}"


@dataclass(frozen=True, slots=True)
class TasksPage:
    """One screen of `/tasks`: the text and where the next (older) page starts."""

    text: str
    shown: int
    older_before_id: int | None  # id to pass for the next page, None when this is the last


def tasks_page(
    tasks: Sequence[Task],
    *,
    status_filter: str | None = None,
    before_id: int | None = None,
    per_page: int = 10,
    limit: int = MESSAGE_LIMIT,
    t: Translator = SOURCE,
) -> TasksPage:
    """Render newest-first tasks (optionally filtered, older than `before_id`) within `limit`."""
    _ = t.gettext
    statuses = STATUS_FILTERS.get(status_filter) if status_filter else None
    matching = [
        task
        for task in sorted(tasks, key=lambda task: task.id, reverse=True)
        if (statuses is None or task.status in statuses)
        and (before_id is None or task.id < before_id)
    ]
    word = esc(shorten(status_filter, WORD_LIMIT)) if status_filter else ""
    title = "<b>" + _("Deferred tasks") + "</b>"
    if status_filter:
        title += f" · {word}"
    if before_id is not None:
        title += " · " + _("older than #{id}").format(id=before_id)
    if not matching:
        if status_filter:
            empty = _("No tasks with status “{word}”.").format(word=word)
        else:
            empty = _("No tasks.")
        return TasksPage(text=fit(f"{title}\n\n{empty}", limit), shown=0, older_before_id=None)
    # Room for the footer at its longest (every task but one left over), measured, not guessed.
    footer_room = max(visible_len(_older_footer(n, t)) for n in {len(matching), 2, 5})
    lines: list[str] = []
    used = visible_len(title) + 2 + footer_room
    for task in matching[:per_page]:
        line = task_line(task, t)
        cost = visible_len(line) + 2
        if lines and used + cost > limit:
            break
        lines.append(line)
        used += cost
    shown = len(lines)
    rest = len(matching) - shown
    text = title + "\n\n" + "\n\n".join(lines)
    if rest:
        text += _older_footer(rest, t)
    older = matching[shown - 1].id if rest else None
    return TasksPage(text=fit(text, limit), shown=shown, older_before_id=older)


def _older_footer(rest: int, t: Translator) -> str:
    words = t.ngettext("{n} older not shown", "{n} older not shown", rest)
    return "\n\n<i>" + words.format(n=rest) + "</i>"


def document_caption(task: Task, t: Translator = SOURCE) -> Callable[[FileFacts], str]:
    """The caption of a /get document: which task, and that it was zipped if it was."""

    def caption(facts: FileFacts) -> str:
        zipped = (
            " · "
            + t.gettext("zipped ({size} as CSV)").format(size=t.format_size(facts.original_size))
            if facts.compressed
            else ""
        )
        return fit(
            f"{task.status.icon} <b>#{task.id}</b> {esc(shorten(task.name))}{zipped}", CAPTION_LIMIT
        )

    return caption


_STATUS_REASONS = {
    TaskStatus.PENDING: N_(
        "Task {task} is waiting in the queue; the file is available once it completes."
    ),
    TaskStatus.RUNNING: N_(
        "Task {task} is still running; the file is available once it completes."
    ),
    TaskStatus.CANCELED: N_("Task {task} was canceled, so it has no file."),
    TaskStatus.FAILED: N_("Task {task} failed, so it has no file."),
    TaskStatus.COMPLETED: N_("Task {task} is completed."),
}


def task_status_text(task: Task, t: Translator = SOURCE) -> str:
    """Why a task's file cannot be sent yet (or ever)."""
    name = f"<b>#{task.id}</b> {esc(shorten(task.name))}"
    return fit(f"{task.status.icon} " + t.gettext(_STATUS_REASONS[task.status]).format(task=name))
