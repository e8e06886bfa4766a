"""The last-resort form of an alert: plain text, our own words, the task id and its outcome.

Sent when Telegram refuses the real alert for its content (too long, entities it cannot parse, a
caption over the limit) or the stored alert cannot be rendered at all. Nothing external goes in
but a short cut of the task's name with every control, format (bidi, zero-width) and surrogate
character removed; it is sent without a parse mode, so no markup can break it. Which refusals
are about content is `bot.telegram.errors`' to say.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.alerts.model import AlertKind, stored_task_name
from bot.texts.characters import without_controls
from bot.texts.i18n import SOURCE, Translator

NAME_CHARS = 40


def safe_cut(text: str, limit: int = NAME_CHARS) -> str:
    """`text` without control/format/surrogate/unassigned characters, spaces collapsed, cut.

    Stricter than `esc` (bot.texts.characters says why): with no parse mode and one short line,
    nothing invisible is kept, and controls vanish rather than show as U+FFFD.
    """
    kept = " ".join(without_controls(text).split())
    return kept if len(kept) <= limit else kept[: limit - 1].rstrip() + "…"


def minimal_text(
    kind: AlertKind, task_id: int | None, payload: Mapping[str, Any], t: Translator = SOURCE
) -> str:
    """The minimal alert for a delivery of `kind` (plain text, a few hundred bytes at most).

    It reads the raw payload, not the typed alert: it is also what a payload that no longer
    reads as its kind's alert is sent as.
    """
    _ = t.gettext
    stored = stored_task_name(payload)
    name = safe_cut(stored) if stored is not None else ""
    if name:
        label = _("Task #{id} ({name})").format(id=task_id, name=name)
    else:
        label = _("Task #{id}").format(id=task_id)
    note = _("The full alert could not be sent.")
    match kind:
        case AlertKind.COMPLETED:
            return _("{task} completed. {note} Send /get {id} for its file.").format(
                task=label, note=note, id=task_id
            )
        case AlertKind.FAILED:
            return _("{task} failed. {note}").format(task=label, note=note)
        case AlertKind.CANCELED:
            return _("{task} was canceled. {note}").format(task=label, note=note)
        case AlertKind.SMSC_RECOVERED:
            return _("SMSC answers again. {note} See /status.").format(note=note)
        case _:  # AlertKind.SMSC_PROBLEM
            return _("SMSC problem: the bot cannot work with SMSC. {note} See /status.").format(
                note=note
            )
