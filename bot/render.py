"""Everything the bot says, rendered for Telegram's HTML parse mode.

Every string that comes from outside (task names, file names, SMSC's error texts) passes through
`esc()`. Lengths are budgeted twice, so a message always fits Telegram's limits whatever the
input: each external field is cut to its own limit (`shorten`, in UTF-16 units, before escaping),
and every public renderer passes its result through `fit()`, which measures the text as Telegram
will count it (after parsing the HTML: tags cost nothing, an entity one character) and, if it is
still too long, cuts it between tags and entities, closing any tag it cut into. Nothing here is
tuned to the English wording: budgets are measured on the text actually rendered.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.smsc.models import SMSC_TIME_FORMAT, SMSC_TZ, Task, TaskStatus

if TYPE_CHECKING:
    from bot.documents import FileFacts

MESSAGE_LIMIT = 4096  # UTF-16 units of a message's text after entity parsing
CAPTION_LIMIT = 1024  # the same, for a document's caption
# Per-field limits (UTF-16 units, before escaping): what is worth reading, far below the totals.
NAME_LIMIT = 80  # a task name
TIME_LIMIT = 40  # an SMSC time we could not parse, shown raw
ERROR_LIMIT = 300  # an error text (SMSC's, Telegram's, ours)
WORD_LIMIT = 30  # a filter word or the version
ELLIPSIS = "…"

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


# Characters that rearrange or hide text rather than show it: bidi embeddings, overrides,
# isolates and marks, and zero-width characters. A task name holding U+202E could otherwise make
# the status word after it read backwards.
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]
_ZERO_WIDTH = [*range(0x200B, 0x200E), *range(0x2060, 0x2065), 0xFEFF, 0x180E]
_INVISIBLE: dict[int, str | None] = dict.fromkeys([*_BIDI, *_ZERO_WIDTH])
# C0 and C1 control characters (and DEL) become a visible replacement character; newline stays
# where the text is laid out in lines, tab and carriage return read as a space, and U+2028/U+2029
# become plain line breaks.
_CONTROLS: dict[int, str | None] = {
    **dict.fromkeys([*range(0x20), 0x7F, *range(0x80, 0xA0)], "\ufffd"),
    0x09: " ",
    0x0A: "\n",
    0x0D: " ",
    0x2028: "\n",
    0x2029: "\n",
}
_NEUTRAL = str.maketrans({**_CONTROLS, **_INVISIBLE})


def neutralise(text: object) -> str:
    """Drop characters that reorder or hide text; make control characters visible."""
    return str(text).translate(_NEUTRAL)


def esc(text: object) -> str:
    """Escape any value for HTML parse mode, neutralising layout-changing characters."""
    return html.escape(neutralise(text), quote=False)


def shorten(text: str, limit: int = NAME_LIMIT) -> str:
    """Put `text` on one line and cut it to `limit` UTF-16 units with an ellipsis (before esc)."""
    text = " ".join(text.split())  # newlines in names would break the list layout
    if len(text) <= limit // 2 or utf16_len(text) <= limit:
        return text
    return _cut(text, limit - utf16_len(ELLIPSIS)) + ELLIPSIS


def _cut(text: str, units: int) -> str:
    """The longest prefix of `text` within `units` UTF-16 units (never half a surrogate pair)."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            return text[:index]
    return text


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# A tag, a character reference, or a run of plain text: the pieces `fit` never splits.
_HTML_TOKEN = re.compile(r"<[^<>]*>|&(?:[a-zA-Z]+|#[0-9]+|#x[0-9a-fA-F]+);|[^<&]+|[<&]")
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z][a-zA-Z0-9-]*)")


def visible_len(text: str) -> int:
    """UTF-16 length of HTML `text` as Telegram counts it: tags removed, entities decoded."""
    total = 0
    for match in _HTML_TOKEN.finditer(text):
        total += _shown(match.group())
    return total


_ENTITY_LEN = {"&lt;": 1, "&gt;": 1, "&amp;": 1, "&quot;": 1}  # what esc() writes


def _is_tag(token: str) -> bool:
    return len(token) > 1 and token[0] == "<" and token[-1] == ">"


def _shown(token: str) -> int:
    """UTF-16 units one token shows: none for a tag, its character for an entity."""
    if _is_tag(token):
        return 0
    if token[0] == "&" and len(token) > 1:
        return _ENTITY_LEN.get(token) or utf16_len(html.unescape(token))
    return utf16_len(token)


def fit(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Guarantee HTML `text` shows at most `limit` UTF-16 units: cut it with an ellipsis if not.

    The cut falls between tags and character references, never inside one, and every tag left
    open is closed again, so the result parses as well as the input did.
    """
    if utf16_len(text) <= limit:
        return text  # markup only ever shows shorter than it is written
    budget = limit - utf16_len(ELLIPSIS)
    out: list[str] = []
    open_tags: list[str] = []
    used = 0
    cut: str | None = None  # the text cut at the budget, once the scan has passed it
    for match in _HTML_TOKEN.finditer(text):
        token = match.group()
        if _is_tag(token):
            if cut is None:
                name = _TAG_NAME.match(token)
                if token.startswith("</"):
                    if open_tags:
                        open_tags.pop()
                elif name is not None:
                    open_tags.append(name.group(1).lower())
                out.append(token)
            continue
        cost = _shown(token)
        if cut is None and used + cost > budget:
            partial = "" if token[0] == "&" and len(token) > 1 else _cut(token, budget - used)
            closing = "".join(f"</{tag}>" for tag in reversed(open_tags))
            cut = "".join(out) + partial + ELLIPSIS + closing
        elif cut is None:
            out.append(token)
        used += cost
        if used > limit and cut is not None:
            return cut  # too long indeed; no need to read the rest
    return text


def format_when(parsed: datetime | None, raw: str) -> str:
    """Show an SMSC time as SMSC's own text, or the raw text if it was not parseable."""
    if parsed is not None:
        try:
            return parsed.astimezone(SMSC_TZ).strftime(SMSC_TIME_FORMAT)
        except (OverflowError, ValueError):  # a time at the very edge of datetime's range
            pass
    return shorten(raw, TIME_LIMIT) or "—"


def format_duration(delta: timedelta) -> str:
    """Render a duration like '2 h 05 min', '3 min 20 s' or '40 s'."""
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def format_size(size: int) -> str:
    """Render a byte count for people."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def task_line(task: Task) -> str:
    """One task as two lines of a list."""
    status = task.status
    head = f"{status.icon} <b>#{task.id}</b> {esc(shorten(task.name))} — <i>{status.label}</i>"
    when = f"created {esc(format_when(task.created, task.created_raw))}"
    if task.time is not None or task.time_raw.strip():
        when += f" · started {esc(format_when(task.time, task.time_raw))}"
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
) -> TasksPage:
    """Render newest-first tasks (optionally filtered, older than `before_id`) within `limit`."""
    statuses = STATUS_FILTERS.get(status_filter) if status_filter else None
    matching = [
        t
        for t in sorted(tasks, key=lambda t: t.id, reverse=True)
        if (statuses is None or t.status in statuses) and (before_id is None or t.id < before_id)
    ]
    word = esc(shorten(status_filter, WORD_LIMIT)) if status_filter else ""
    title = "<b>Deferred tasks</b>"
    if status_filter:
        title += f" · {word}"
    if before_id is not None:
        title += f" · older than #{before_id}"
    if not matching:
        empty = "No tasks" + (f" with status “{word}”" if status_filter else "")
        return TasksPage(text=fit(f"{title}\n\n{empty}.", limit), shown=0, older_before_id=None)
    # Room for the footer at its longest (every task but one left over), measured, not guessed.
    footer_room = visible_len(_older_footer(len(matching)))
    lines: list[str] = []
    used = visible_len(title) + 2 + footer_room
    for task in matching[:per_page]:
        line = task_line(task)
        cost = visible_len(line) + 2
        if lines and used + cost > limit:
            break
        lines.append(line)
        used += cost
    shown = len(lines)
    rest = len(matching) - shown
    text = title + "\n\n" + "\n\n".join(lines)
    if rest:
        text += _older_footer(rest)
    older = matching[shown - 1].id if rest else None
    return TasksPage(text=fit(text, limit), shown=shown, older_before_id=older)


def _older_footer(rest: int) -> str:
    return f"\n\n<i>{rest} older not shown</i>"


def usage_text(bot_username: str | None = None) -> str:
    """The /help text: what the bot does and every command."""
    return fit(
        "<b>SMSC deferred tasks</b>\n"
        "I show your SMSC export tasks, send their CSV files, and alert subscribed chats when "
        "an export completes (with the file) or fails.\n\n"
        "/tasks — recent tasks, newest first\n"
        "/tasks <i>filter</i> — only pending, running, active, completed, canceled or failed\n"
        "/get <i>id</i> — the CSV of a completed task (also /get <i>file or task name</i>)\n"
        "/subscribe — send alerts to this chat (or forum topic)\n"
        "/unsubscribe — stop alerts here\n"
        "/status — SMSC connection, watcher and bot health\n"
        "/help — this message"
    )


COMMANDS: tuple[tuple[str, str], ...] = (
    ("tasks", "Recent deferred tasks (optionally: failed, running, ...)"),
    ("get", "Download a completed task's CSV: /get <id>"),
    ("subscribe", "Get alerts here when tasks complete or fail"),
    ("unsubscribe", "Stop alerts in this chat"),
    ("status", "SMSC connection and watcher status"),
    ("help", "What this bot does"),
)


def not_allowed_text(chat_id: int) -> str:
    """The only reply a chat outside the allowlist gets."""
    return fit(
        "This chat is not allowed to use this bot.\n"
        f"Chat id: <code>{chat_id}</code>\n"
        "Ask an administrator to add it to ALLOWED_CHAT_IDS."
    )


def document_caption(task: Task) -> Callable[[FileFacts], str]:
    """The caption of a /get document: which task, and that it was zipped if it was."""

    def caption(facts: FileFacts) -> str:
        zipped = (
            f" · zipped ({format_size(facts.original_size)} as CSV)" if facts.compressed else ""
        )
        return fit(
            f"{task.status.icon} <b>#{task.id}</b> {esc(shorten(task.name))}{zipped}", CAPTION_LIMIT
        )

    return caption


def task_status_text(task: Task) -> str:
    """Why a task's file cannot be sent yet (or ever)."""
    reason = {
        TaskStatus.PENDING: "is waiting in the queue; the file is available once it completes.",
        TaskStatus.RUNNING: "is still running; the file is available once it completes.",
        TaskStatus.CANCELED: "was canceled, so it has no file.",
        TaskStatus.FAILED: "failed, so it has no file.",
        TaskStatus.COMPLETED: "is completed.",
    }[task.status]
    return fit(f"{task.status.icon} Task <b>#{task.id}</b> {esc(shorten(task.name))} {reason}")


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """Everything /status reports."""

    version: str
    uptime: timedelta
    now: datetime
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    last_poll: datetime | None
    subscribers: int
    queued_alerts: int
    watching: bool
    skipped_items: int = 0  # unusable SMSC list items in the last poll (Watcher.last_skipped)


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    return f"{format_duration(now - when)} ago ({when.astimezone(SMSC_TZ):%d.%m.%Y %H:%M:%S} MSK)"


def status_text(info: StatusInfo) -> str:
    """Render /status."""
    lines = [
        "<b>Status</b>",
        f"SMSC last success: {_ago(info.last_success, info.now)}",
    ]
    if info.last_error:
        error = esc(shorten(info.last_error, ERROR_LIMIT))
        lines.append(f"SMSC last error: {error} ({_ago(info.last_error_at, info.now)})")
    else:
        lines.append("SMSC last error: none")
    watcher = f"last poll {_ago(info.last_poll, info.now)}" if info.watching else "not running"
    if info.skipped_items:
        watcher += f", {info.skipped_items} unusable SMSC list items skipped (see the log)"
    lines += [
        f"Watcher: {watcher}",
        f"Subscribed chats: {info.subscribers}",
        f"Queued alerts: {info.queued_alerts}",
        f"Version: {esc(shorten(info.version, WORD_LIMIT))}, up {format_duration(info.uptime)}",
    ]
    return fit("\n".join(lines))


# --- watcher alerts ---------------------------------------------------------------------------


def _task_times(task: Task) -> str:
    parts = [f"created {esc(format_when(task.created, task.created_raw))}"]
    if task.time is not None or task.time_raw.strip():
        parts.append(f"started {esc(format_when(task.time, task.time_raw))}")
    return ", ".join(parts)


def _took(task: Task, detected_at: datetime) -> str | None:
    start = task.time or task.created
    return format_duration(detected_at - start) if start is not None else None


def completion_caption(
    task: Task, detected_at: datetime, *, size: int, rows: int | None, compressed: bool
) -> str:
    """The caption of a completed task's document (fits 1024 characters)."""
    lines = [f"✅ Export completed: <b>#{task.id}</b> {esc(shorten(task.name))}", _task_times(task)]
    took = _took(task, detected_at)
    facts = [f"took ~{took}"] if took else []
    facts.append(format_size(size) + (" zipped" if compressed else ""))
    if rows is not None:
        facts.append(f"{rows:,} rows".replace(",", " "))
    lines.append(" · ".join(facts))
    return fit("\n".join(lines), CAPTION_LIMIT)


def completion_without_file_text(task: Task, detected_at: datetime, reason: str) -> str:
    """A completion alert whose file could not be attached, and why."""
    took = _took(task, detected_at)
    return fit(
        f"✅ Export completed: <b>#{task.id}</b> {esc(shorten(task.name))}\n"
        f"{_task_times(task)}" + (f" · took ~{took}" if took else "") + "\n"
        f"The file is not attached: {esc(shorten(reason, ERROR_LIMIT))}\n"
        f"Try /get {task.id} later."
    )


def failure_text(task: Task, detected_at: datetime) -> str:
    """The alert for a task that failed (status 4)."""
    return fit(
        f"❌ Export failed: <b>#{task.id}</b> {esc(shorten(task.name))}\n"
        f"{_task_times(task)}\n"
        f"failure noticed {detected_at.astimezone(SMSC_TZ):%d.%m.%Y %H:%M:%S} MSK"
    )


def canceled_text(task: Task) -> str:
    """The quiet notice for a canceled task (status 3)."""
    return fit(
        f"🚫 Export canceled: <b>#{task.id}</b> {esc(shorten(task.name))} ({_task_times(task)})"
    )


def problem_text(problem: str) -> str:
    """Reported once when SMSC keeps refusing us (bad credentials, blocked IP)."""
    return fit(
        f"⚠️ SMSC problem: {esc(shorten(problem, ERROR_LIMIT))}\n"
        "Alerts are paused until it is fixed; I will tell you when SMSC answers again."
    )


def recovered_text(problem: str) -> str:
    """Sent once when a reported SMSC problem is over."""
    return fit(
        f"✅ SMSC answers again (the problem was: {esc(shorten(problem, ERROR_LIMIT))})."
        " Alerts resume."
    )
