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

from bot.i18n import SOURCE, Translator

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


def minimal_text(
    kind: str, task_id: int | None, payload: Mapping[str, Any], t: Translator = SOURCE
) -> str:
    """The minimal alert for a delivery of `kind` (plain text, a few hundred bytes at most)."""
    _ = t.gettext
    name = _task_name(payload)
    if name:
        label = _("Task #{id} ({name})").format(id=task_id, name=name)
    else:
        label = _("Task #{id}").format(id=task_id)
    note = _("The full alert could not be sent.")
    if kind == "completed":
        return _("{task} completed. {note} Send /get {id} for its file.").format(
            task=label, note=note, id=task_id
        )
    if kind == "failed":
        return _("{task} failed. {note}").format(task=label, note=note)
    if kind == "canceled":
        return _("{task} was canceled. {note}").format(task=label, note=note)
    if kind == "smsc_recovered":
        return _("SMSC answers again. {note} See /status.").format(note=note)
    return _("SMSC problem: the bot cannot work with SMSC. {note} See /status.").format(note=note)
