"""What the emulator keeps: the calls the bot made, and the chats, files and webhook it knows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .spec import UploadedFile

__all__ = ["Call", "Chat", "JSONDict", "StoredFile", "Webhook"]

JSONDict = dict[str, Any]


@dataclass
class Call:
    """One Bot API request the bot made, with what the emulator answered."""

    method: str
    params: JSONDict
    files: dict[str, UploadedFile]
    status: int
    response: JSONDict
    at: float
    ignored: JSONDict = field(default_factory=dict)  # unknown parameters Telegram would ignore

    @property
    def ok(self) -> bool:
        """Whether the answer was {"ok": true, ...}."""
        return bool(self.response.get("ok"))

    @property
    def result(self) -> Any:
        """The "result" of a successful answer."""
        return self.response.get("result")

    @property
    def chat_id(self) -> int | str | None:
        """The call's chat_id parameter, if any."""
        value: int | str | None = self.params.get("chat_id")
        return value


@dataclass
class StoredFile:
    """A file the bot uploaded, as getFile and the download route serve it."""

    file_id: str
    file_unique_id: str
    file_name: str
    mime_type: str
    content: bytes
    file_path: str


@dataclass
class Chat:
    """A chat and the messages in it (the bot's and the users'), by message_id."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    is_forum: bool = False
    messages: dict[int, JSONDict] = field(default_factory=dict)
    next_message_id: int = 1
    closed_topics: set[int] = field(default_factory=set)  # forum topics admins closed
    deleted_topics: set[int] = field(default_factory=set)
    bot_manages_topics: bool = False  # an admin with can_manage_topics: posts in closed topics

    def as_dict(self) -> JSONDict:
        chat: JSONDict = {"id": self.id, "type": self.type}
        if self.title is not None:
            chat["title"] = self.title
        if self.username is not None:
            chat["username"] = self.username
        if self.first_name is not None:
            chat["first_name"] = self.first_name
        if self.is_forum:
            chat["is_forum"] = True
        return chat

    def take_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


@dataclass
class Webhook:
    """The webhook setWebhook set, with the last delivery error getWebhookInfo reports."""

    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None
