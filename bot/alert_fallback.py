"""The last-resort form of an alert: plain text, our own words, the task id and its outcome.

Sent when Telegram refuses the real alert for its content (too long, entities it cannot parse, a
caption over the limit) or the stored alert cannot be rendered at all. Nothing external goes in
but a short cut of the task's name with every control, format (bidi, zero-width) and surrogate
character removed; it is sent without a parse mode, so no markup can break it. Which refusals
are about content is `bot.telegram_errors`' to say.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

NAME_CHARS = 40


def safe_cut(text: str, limit: int = NAME_CHARS) -> str:
    """`text` without control/format/surrogate/unassigned characters, spaces collapsed, cut."""
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )
    kept = " ".join(kept.split())
    return kept if len(kept) <= limit else kept[: limit - 1].rstrip() + "…"


def _task_name(payload: Mapping[str, Any]) -> str:
    task = payload.get("task")
    name = task.get("name") if isinstance(task, Mapping) else None
    return safe_cut(name) if isinstance(name, str) else ""


def minimal_text(kind: str, task_id: int | None, payload: Mapping[str, Any]) -> str:
    """The minimal alert for a delivery of `kind` (plain text, a few hundred bytes at most)."""
    name = _task_name(payload)
    label = f"Task #{task_id}" + (f" ({name})" if name else "")
    note = "The full alert could not be sent."
    if kind == "completed":
        return f"{label} completed. {note} Send /get {task_id} for its file."
    if kind == "failed":
        return f"{label} failed. {note}"
    if kind == "canceled":
        return f"{label} was canceled. {note}"
    if kind == "smsc_recovered":
        return f"SMSC answers again. {note} See /status."
    return f"SMSC problem: the bot cannot work with SMSC. {note} See /status."
