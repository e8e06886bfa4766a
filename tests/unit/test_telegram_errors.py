"""bot.telegram.errors over Telegram's real answers, raised by PTB's own request code.

A fake at the network edge hands PTB the Bot API's JSON answer; PTB turns it into the exception
it raises in production (its class, its stripped and capitalised message), which is classified.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from telegram.error import BadRequest, NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.telegram.errors import (
    TelegramFailure,
    classify,
    error_kind,
    is_content_refusal,
    is_not_modified,
    is_stale_file,
    is_uneditable,
)

F = TelegramFailure


class CannedAnswer(BaseRequest):
    """The Bot API's answer to every request: one HTTP status and JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self._status = status
        self._body = json.dumps(body).encode()

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self, url: str, method: str, request_data: RequestData | None = None, **_: Any
    ) -> tuple[int, bytes]:
        return self._status, self._body


async def raised(status: int, description: str, **parameters: int) -> TelegramError:
    """The exception PTB raises for this Bot API answer."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    with pytest.raises(TelegramError) as info:
        await CannedAnswer(status, body).post("https://api.telegram.org/botT/sendMessage")
    return info.value


@pytest.mark.parametrize(
    ("status", "description", "in_topic", "expected"),
    [
        (403, "Forbidden: bot was blocked by the user", False, F.GONE),
        (403, "Forbidden: bot was kicked from the group chat", False, F.GONE),
        (403, "Forbidden: bot was kicked from the supergroup chat", False, F.GONE),
        (403, "Forbidden: bot is not a member of the channel chat", False, F.GONE),
        (403, "Forbidden: user is deactivated", False, F.GONE),
        (403, "Forbidden: the group chat was deleted", False, F.GONE),
        (400, "Bad Request: chat not found", False, F.GONE),
        (400, "Bad Request: group chat was deactivated", False, F.GONE),
        (400, "Bad Request: chat not found", True, F.GONE),
        (400, "Bad Request: message thread not found", True, F.TOPIC_GONE),
        (400, "Bad Request: TOPIC_DELETED", True, F.TOPIC_GONE),
        (400, "Bad Request: TOPIC_CLOSED", True, F.TOPIC_CLOSED),
        # Without a topic these are not about a topic of ours: an ordinary refusal.
        (400, "Bad Request: message thread not found", False, F.REFUSED),
        (400, "Bad Request: TOPIC_DELETED", False, F.REFUSED),
        (400, "Bad Request: TOPIC_CLOSED", False, F.TOPIC_CLOSED),  # the General topic
        (400, "Bad Request: message is too long", False, F.CONTENT_REFUSED),
        (400, "Bad Request: message is too long", True, F.CONTENT_REFUSED),
        (400, "Bad Request: message caption is too long", False, F.CONTENT_REFUSED),
        (
            400,
            'Bad Request: can\'t parse entities: Unsupported start tag "x" at byte offset 0',
            False,
            F.CONTENT_REFUSED,
        ),
        (400, "Bad Request: message text is empty", False, F.CONTENT_REFUSED),
        (400, "Bad Request: file must be non-empty", False, F.CONTENT_REFUSED),
        (400, "Bad Request: wrong file identifier/HTTP URL specified", False, F.CONTENT_REFUSED),
        (400, "Bad Request: failed to get HTTP URL content", False, F.CONTENT_REFUSED),
        (400, "Bad Request: wrong type of the web page content", False, F.CONTENT_REFUSED),
        (400, "Bad Request: DOCUMENT_INVALID", False, F.CONTENT_REFUSED),
        (400, "Bad Request: not enough rights to send text messages to the chat", False, F.REFUSED),
        (400, "Bad Request: have no rights to send a message", False, F.REFUSED),
        (500, "Internal Server Error", False, F.UNREACHABLE),
        (502, "Bad Gateway", False, F.UNREACHABLE),
        (401, "Unauthorized", False, F.OTHER),
        (409, "Conflict: terminated by other getUpdates request", False, F.OTHER),
    ],
)
async def test_telegrams_answers_are_classified(
    status: int, description: str, in_topic: bool, expected: TelegramFailure
) -> None:
    err = await raised(status, description)

    assert classify(err, in_topic=in_topic) is expected


async def test_a_migrated_group_and_flood_control_come_from_the_parameters() -> None:
    migrated = await raised(
        400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=-1001
    )
    flood = await raised(429, "Too Many Requests: retry after 7", retry_after=7)

    assert classify(migrated) is F.MIGRATED
    assert classify(flood) is F.RETRY
    assert classify(flood, in_topic=True) is F.RETRY


async def test_a_refused_file_id_and_an_edit_that_changed_nothing() -> None:
    stale = await raised(400, "Bad Request: wrong file identifier/HTTP URL specified")
    same = await raised(
        400,
        "Bad Request: message is not modified: specified new message content and reply markup "
        "are exactly the same as a current content and reply markup of the message",
    )
    other = await raised(400, "Bad Request: chat not found")
    blocked = await raised(403, "Forbidden: bot was blocked by the user")

    assert isinstance(stale, BadRequest)
    assert (is_stale_file(stale), is_stale_file(same), is_stale_file(other)) == (
        True,
        False,
        False,
    )
    assert (is_not_modified(same), is_not_modified(stale), is_not_modified(blocked)) == (
        True,
        False,
        False,
    )


def test_content_refusal_reads_the_words_in_any_case() -> None:
    assert is_content_refusal("Message is too long")
    assert is_content_refusal("CAN'T PARSE ENTITIES")
    assert not is_content_refusal("Chat not found")


@pytest.mark.parametrize(
    ("description", "uneditable"),
    [
        ("Bad Request: message to edit not found", True),
        ("Bad Request: message can't be edited", True),
        ("Bad Request: MESSAGE_ID_INVALID", True),
        ("Bad Request: message is not modified", False),
        ("Bad Request: chat not found", False),
    ],
)
async def test_a_message_that_cannot_be_edited(description: str, uneditable: bool) -> None:
    assert is_uneditable(await raised(400, description)) is uneditable


async def test_the_metric_kinds_of_telegrams_answers() -> None:
    """The `telegram_api_errors` label values: bounded, and the same as they always were."""
    answers = [
        await raised(429, "Too Many Requests: retry after 7", retry_after=7),
        await raised(
            400, "Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=-1
        ),
        await raised(403, "Forbidden: bot was blocked by the user"),
        await raised(400, "Bad Request: chat not found"),
        await raised(502, "Bad Gateway"),
        await raised(401, "Unauthorized"),
    ]
    local = [TimedOut(), NetworkError("connection reset")]

    assert [error_kind(err) for err in answers + local] == [
        "retry_after",
        "chat_migrated",
        "forbidden",
        "bad_request",
        "network",
        "other",
        "timeout",
        "network",
    ]
