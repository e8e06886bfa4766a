"""The chats the emulator knows, their messages, and the User dicts of the people in them."""

from __future__ import annotations

import copy

from .records import Chat, JSONDict
from .spec import ApiError
from .state import EmulatorState

__all__ = ["DEFAULT_USER_ID", "ChatsMixin", "default_chat_type", "make_user"]

DEFAULT_USER_ID = 424_242_001  # the sender of group messages unless a test says otherwise


class ChatsMixin(EmulatorState):
    """Chats by id: made known on first use (unless `strict_chats`), found by id or @username."""

    def add_chat(
        self,
        chat_id: int,
        *,
        chat_type: str | None = None,
        title: str | None = None,
        username: str | None = None,
        first_name: str | None = None,
        is_forum: bool = False,
    ) -> JSONDict:
        """Make a chat known (or update it); returns its Chat dict."""
        chat = self._chats.get(chat_id)
        if chat is None:
            kind = chat_type or default_chat_type(chat_id)
            chat = Chat(chat_id, kind)
            if kind == "private":
                chat.first_name = first_name or (username or f"user{chat_id}").capitalize()
            else:
                chat.title = title or f"Chat {chat_id}"
            self._chats[chat_id] = chat
        elif chat_type is not None:
            chat.type = chat_type
        if title is not None and chat.type != "private":
            chat.title = title
        if username is not None:
            chat.username = username
        if first_name is not None and chat.type == "private":
            chat.first_name = first_name
        chat.is_forum = chat.is_forum or is_forum
        return chat.as_dict()

    def _resolve_chat(self, chat_id: int | str) -> Chat:
        if isinstance(chat_id, str):
            wanted = chat_id[1:].lower() if chat_id.startswith("@") else None
            for known in self._chats.values():
                if wanted and known.username and known.username.lower() == wanted:
                    return known
            raise ApiError(400, "Bad Request: chat not found")
        chat = self._chats.get(chat_id)
        if chat is not None:
            return chat
        if self.strict_chats:
            raise ApiError(400, "Bad Request: chat not found")
        self.add_chat(chat_id)
        return self._chats[chat_id]

    def delete_message_by_user(self, chat_id: int, message_id: int) -> None:
        """Someone deleted the message: edits find nothing, a button press shows it inaccessible."""
        chat = self._chats.get(chat_id)
        if chat is not None:
            chat.messages.pop(message_id, None)

    def messages(self, chat_id: int, *, include_users: bool = False) -> list[JSONDict]:
        """The bot's messages in the chat as they are now (edits applied, deletions gone)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [
            copy.deepcopy(m)
            for _, m in sorted(chat.messages.items())
            if include_users or m.get("from", {}).get("id") == self.bot_id
        ]


def default_chat_type(chat_id: int) -> str:
    if chat_id > 0:
        return "private"
    return "supergroup" if chat_id < -1_000_000_000_000 else "group"


def make_user(user_id: int, username: str | None, language_code: str | None = "en") -> JSONDict:
    user: JSONDict = {
        "id": user_id,
        "is_bot": False,
        "first_name": (username or f"user{user_id}").capitalize(),
    }
    if language_code is not None:
        user["language_code"] = language_code
    if username:
        user["username"] = username
    return user
