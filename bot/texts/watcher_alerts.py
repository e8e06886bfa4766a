"""The watcher's alerts: a task completed, failed or was canceled; SMSC refuses us, or is back.

The plain-text last resort, sent when Telegram refuses one of these, is `bot.alerts.fallback`.
"""

from __future__ import annotations

from datetime import datetime

from bot.smsc.models import Task
from bot.texts.i18n import SOURCE, Translator
from bot.texts.markup import CAPTION_LIMIT, ERROR_LIMIT, esc, fit, shorten
from bot.texts.tasks import format_when


def _task_times(task: Task, t: Translator) -> str:
    _ = t.gettext
    parts = [_("created {when}").format(when=esc(format_when(task.created, task.created_raw)))]
    if task.time is not None or task.time_raw.strip():
        parts.append(_("started {when}").format(when=esc(format_when(task.time, task.time_raw))))
    return ", ".join(parts)


def _took(task: Task, detected_at: datetime, t: Translator) -> str | None:
    start = task.time or task.created
    return t.format_duration(detected_at - start) if start is not None else None


def _named(task: Task) -> str:
    return f"<b>#{task.id}</b> {esc(shorten(task.name))}"


def completion_caption(
    task: Task,
    detected_at: datetime,
    *,
    size: int,
    rows: int | None,
    compressed: bool,
    t: Translator = SOURCE,
) -> str:
    """The caption of a completed task's document (fits 1024 characters)."""
    _ = t.gettext
    lines = ["✅ " + _("Export completed: {task}").format(task=_named(task)), _task_times(task, t)]
    took = _took(task, detected_at, t)
    facts = [_("took ~{duration}").format(duration=took)] if took else []
    size_text = t.format_size(size)
    facts.append(_("{size} zipped").format(size=size_text) if compressed else size_text)
    if rows is not None:
        facts.append(t.ngettext("{n} row", "{n} rows", rows).format(n=t.number(rows)))
    lines.append(" · ".join(facts))
    return fit("\n".join(lines), CAPTION_LIMIT)


def completion_without_file_text(
    task: Task, detected_at: datetime, reason: str, t: Translator = SOURCE
) -> str:
    """A completion alert whose file could not be attached, and why."""
    _ = t.gettext
    took = _took(task, detected_at, t)
    times = _task_times(task, t)
    if took:
        times += " · " + _("took ~{duration}").format(duration=took)
    return fit(
        "✅ "
        + _("Export completed: {task}").format(task=_named(task))
        + "\n"
        + times
        + "\n"
        + _("The file is not attached: {reason}").format(reason=esc(shorten(reason, ERROR_LIMIT)))
        + "\n"
        + _("Try /get {id} later.").format(id=task.id)
    )


def failure_text(task: Task, detected_at: datetime, t: Translator = SOURCE) -> str:
    """The alert for a task that failed (status 4)."""
    _ = t.gettext
    return fit(
        "❌ "
        + _("Export failed: {task}").format(task=_named(task))
        + "\n"
        + _task_times(task, t)
        + "\n"
        + _("failure noticed {when}").format(when=t.format_when(detected_at))
    )


def canceled_text(task: Task, t: Translator = SOURCE) -> str:
    """The quiet notice for a canceled task (status 3)."""
    return fit(
        "🚫 "
        + t.gettext("Export canceled: {task} ({times})").format(
            task=_named(task), times=_task_times(task, t)
        )
    )


def problem_text(problem: str, t: Translator = SOURCE) -> str:
    """Reported once when SMSC keeps refusing us (bad credentials, blocked IP)."""
    _ = t.gettext
    return fit(
        "⚠️ "
        + _("SMSC problem: {problem}").format(problem=esc(shorten(problem, ERROR_LIMIT)))
        + "\n"
        + _("Alerts are paused until it is fixed; I will tell you when SMSC answers again.")
    )


def recovered_text(problem: str, t: Translator = SOURCE) -> str:
    """Sent once when a reported SMSC problem is over."""
    return fit(
        "✅ "
        + t.gettext("SMSC answers again (the problem was: {problem}). Alerts resume.").format(
            problem=esc(shorten(problem, ERROR_LIMIT))
        )
    )
