"""The forms a stored alert takes in a chat: its full text, or a completion's text without the file.

Why a completion goes without its file is kept as a function of the chat's translator, so each
chat reads it in its own language. The minimal last-resort form is `bot.alerts.fallback`'s.
"""

from __future__ import annotations

from collections.abc import Callable

import storage
from bot.alerts.model import (
    Alert,
    AlertPayloadError,
    CanceledAlert,
    CompletedAlert,
    FailedAlert,
    SmscProblemAlert,
    SmscRecoveredAlert,
    from_outbox,
)
from bot.smsc.errors import SmscError, SmscNotFoundError
from bot.telegram.task_csv import FileTooLargeError
from bot.texts.error_words import translate_error
from bot.texts.i18n import Translator
from bot.texts.watcher_alerts import (
    canceled_text,
    completion_without_file_text,
    failure_text,
    problem_text,
    recovered_text,
)

NoFileReason = Callable[[Translator], str]


class UnrenderableError(Exception):
    """The stored alert cannot be made into its message (a payload the renderer refuses)."""


def rendered(
    d: storage.PendingDelivery, no_file: NoFileReason | None, t: Translator
) -> tuple[Alert, str | None]:
    """The stored alert and its text (None: a completion sent with its file, captioned)."""
    try:
        alert = from_outbox(d)
        return alert, _render(alert, no_file(t) if no_file else None, t)
    except (KeyError, TypeError, ValueError) as err:  # AlertPayloadError included
        cause = err.__cause__ if isinstance(err, AlertPayloadError) else err
        raise UnrenderableError(
            f"its stored data cannot be shown ({type(cause or err).__name__})"
        ) from err


def no_file_reason(err: SmscError) -> NoFileReason:
    """Why the completion goes without its file: SMSC would not give it."""
    if isinstance(err, SmscNotFoundError):
        return lambda t: t.gettext("SMSC still reports no file for this task")
    text = str(err)
    return lambda t: translate_error(text, t)


def too_large_reason(err: FileTooLargeError) -> NoFileReason:
    """Why the completion goes without its file: too large even zipped."""
    return lambda t: t.gettext(
        "it is {size}, too large for Telegram even zipped ({zipped})"
    ).format(size=t.format_size(err.size), zipped=t.format_size(err.compressed_size))


def _render(alert: Alert, no_file: str | None, t: Translator) -> str | None:
    """The alert's text, or None for a completion sent with its file (captioned)."""
    match alert:
        case SmscProblemAlert():
            return problem_text(translate_error(alert.problem, t), t)
        case SmscRecoveredAlert():
            return recovered_text(translate_error(alert.problem, t), t)
        case FailedAlert():
            return failure_text(alert.task, alert.detected_at, t)
        case CanceledAlert():
            return canceled_text(alert.task, t)
        case CompletedAlert() if no_file is not None:
            return completion_without_file_text(alert.task, alert.detected_at, no_file, t)
        case CompletedAlert():
            return None
