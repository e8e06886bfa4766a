"""What Telegram's errors mean for us: one taxonomy instead of substring checks at each call site.

PTB maps the HTTP status to a class (`Forbidden`, `BadRequest`, ...) and a few parameters to
their own (`ChatMigrated`, `RetryAfter`); what is left is in the description's words, e.g. "Bad
Request: chat not found" (which PTB hands out as "Chat not found"). The words matched here are
Telegram's own, lower-cased.
"""

from __future__ import annotations

from enum import StrEnum

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)


class TelegramFailure(StrEnum):
    """What a failed Bot API call says about the chat, the message or Telegram."""

    MIGRATED = "migrated"  # the group became a supergroup: the chat has a new id
    GONE = "gone"  # the chat blocked us, was deleted or deactivated, or we were removed
    TOPIC_GONE = "topic_gone"  # the forum topic we post to was deleted
    TOPIC_CLOSED = "topic_closed"  # admins closed it: only they may post there until it reopens
    RETRY = "retry"  # flood control: try again after `retry_after`
    CONTENT_REFUSED = "content_refused"  # what we sent: the same message would fail again
    REFUSED = "refused"  # another refusal (e.g. rights in the chat): later may work
    UNREACHABLE = "unreachable"  # network, timeouts, Telegram's 5xx: an outage
    OTHER = "other"  # the bot itself is refused (bad token, another getUpdates running, ...)


# Telegram says these about the chat; a 403 Forbidden always means the same.
_GONE = ("chat not found", "group chat was deactivated", "bot was kicked", "user is deactivated")
# ... these about the forum topic (only meaningful when we sent into one).
_TOPIC_GONE = ("message thread not found", "topic_deleted")
# Telegram's words for a closed topic are "Bad Request: TOPIC_CLOSED", one word.
_TOPIC_CLOSED = ("topic_closed",)
# ... and these about what we sent, not about the chat.
_CONTENT_REFUSALS = (
    "too long",
    "can't parse",
    "entities",
    "caption",
    "text must be non-empty",
    "message text is empty",
    "wrong file",
    "file must be non-empty",
    "failed to get http url",
    "wrong type of the web page",
    "document_invalid",
    "unsupported",
)

# ... and these about a message we tried to edit.
_UNEDITABLE = ("message to edit not found", "message can't be edited", "message_id_invalid")


def classify(err: TelegramError, *, in_topic: bool = False) -> TelegramFailure:
    """Say what `err` means; `in_topic` when the call went to a forum topic (message_thread_id)."""
    if isinstance(err, ChatMigrated):
        return TelegramFailure.MIGRATED
    if isinstance(err, Forbidden):
        return TelegramFailure.GONE
    if isinstance(err, RetryAfter):
        return TelegramFailure.RETRY
    if not isinstance(err, BadRequest):
        # BadRequest is a NetworkError too in PTB: only what is left is a real outage.
        outage = isinstance(err, NetworkError)
        return TelegramFailure.UNREACHABLE if outage else TelegramFailure.OTHER
    text = err.message.lower()
    if _says(text, _GONE):
        return TelegramFailure.GONE
    if in_topic and _says(text, _TOPIC_GONE):
        return TelegramFailure.TOPIC_GONE
    if _says(text, _TOPIC_CLOSED):  # a closed General topic says it too, with no thread id
        return TelegramFailure.TOPIC_CLOSED
    if is_content_refusal(text):
        return TelegramFailure.CONTENT_REFUSED
    return TelegramFailure.REFUSED


# The `telegram_api_errors` metric's kinds: PTB's class, the most specific first (a bounded set).
_KINDS: tuple[tuple[type[TelegramError], str], ...] = (
    (RetryAfter, "retry_after"),
    (ChatMigrated, "chat_migrated"),
    (Forbidden, "forbidden"),
    (BadRequest, "bad_request"),
    (TimedOut, "timeout"),
    (NetworkError, "network"),
)


def error_kind(err: TelegramError) -> str:
    """The kind `err` is counted under in the `telegram_api_errors` metric (its PTB class)."""
    return next((kind for cls, kind in _KINDS if isinstance(err, cls)), "other")


def is_content_refusal(description: str) -> bool:
    """True when Telegram's BadRequest is about what we sent (retrying it as is cannot help)."""
    return _says(description.lower(), _CONTENT_REFUSALS)


def is_stale_file(err: TelegramError) -> bool:
    """True when Telegram refused a stored file_id (e.g. "wrong file identifier"): upload again."""
    return isinstance(err, BadRequest) and "file" in err.message.lower()


def is_not_modified(err: TelegramError) -> bool:
    """True when an edit changed nothing ("message is not modified"): nothing went wrong."""
    return isinstance(err, BadRequest) and "not modified" in err.message.lower()


def is_uneditable(err: TelegramError) -> bool:
    """True when the message to edit is gone or too old to edit: send the text anew instead."""
    return isinstance(err, BadRequest) and _says(err.message.lower(), _UNEDITABLE)


def _says(text: str, markers: tuple[str, ...]) -> bool:
    return any(marker in text for marker in markers)
