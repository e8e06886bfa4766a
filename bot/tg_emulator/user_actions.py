"""What users do, as updates for the bot: messages, button presses, migrations, raw traffic."""

from __future__ import annotations

import copy

from .chats import DEFAULT_USER_ID, ChatsMixin, make_user
from .entities import find_bot_commands
from .records import Chat, JSONDict

__all__ = ["UserActionsMixin"]


class UserActionsMixin(ChatsMixin):
    """Updates injected by tests: `send_message`, `press_button`, `migrate_chat`, raw payloads."""

    def send_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
        message_thread_id: int | None = None,
        username: str | None = "alice",
        title: str | None = None,
        language_code: str | None = "en",
    ) -> JSONDict:
        """A user's text message, delivered as an Update (bot_command entities added).

        `language_code` is the sender's Telegram app language (None: the field is absent).
        """
        if user_id is None:
            user_id = chat_id if chat_type == "private" else DEFAULT_USER_ID
        self.add_chat(
            chat_id,
            chat_type=chat_type,
            title=title,
            username=username if chat_type == "private" else None,
            is_forum=message_thread_id is not None,
        )
        chat = self._chats[chat_id]
        message: JSONDict = {
            "message_id": chat.take_message_id(),
            "from": make_user(user_id, username, language_code),
            "chat": chat.as_dict(),
            "date": self._now(),
            "text": text,
        }
        if message_thread_id is not None:
            message["message_thread_id"] = message_thread_id
            message["is_topic_message"] = True
        commands = find_bot_commands(text)
        if commands:
            message["entities"] = commands
        chat.messages[message["message_id"]] = message
        return self._queue_update({"message": copy.deepcopy(message)})

    def press_button(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        username: str | None = "alice",
        check_button: bool = False,
        language_code: str | None = "en",
    ) -> JSONDict:
        """A user pressing an inline button with callback `data` on a message in the chat.

        A message the emulator knows is included as it is now; an unknown one (say, sent before
        a redeploy) arrives as Telegram's InaccessibleMessage (`date` 0). With `check_button`,
        the message must exist and carry a button with that callback_data; without, `data` can
        be forged, as a modified client could.
        """
        chat = self._chats.get(chat_id)
        message = chat.messages.get(message_id) if chat else None
        if check_button and message is None:
            raise LookupError(f"no message {message_id} in chat {chat_id}")
        if check_button and data not in _callback_datas((message or {}).get("reply_markup")):
            raise LookupError(f"message {message_id} has no button with callback_data {data!r}")
        if chat is None:
            self.add_chat(chat_id)
            chat = self._chats[chat_id]
        shown: JSONDict = (
            copy.deepcopy(message)
            if message is not None
            else {"chat": chat.as_dict(), "message_id": message_id, "date": 0}
        )
        if user_id is None:
            user_id = chat_id if chat.type == "private" else DEFAULT_USER_ID
        query_id = f"{self.bot_id}{next(self._callback_seq):08d}"
        self._callback_queries[query_id] = False
        query: JSONDict = {
            "id": query_id,
            "from": make_user(user_id, username, language_code),
            "message": shown,
            "chat_instance": str(abs(hash((self.bot_id, chat_id))) % 10**18),
            "data": data,
        }
        return self._queue_update({"callback_query": query})

    def migrate_chat(
        self, old_chat_id: int, new_chat_id: int, *, emit_updates: bool = False
    ) -> None:
        """The group became a supergroup: sends to the old id fail with migrate_to_chat_id.

        With `emit_updates`, also deliver the two service messages Telegram sends.
        """
        old = self._chats.get(old_chat_id)
        self._migrated[old_chat_id] = new_chat_id
        title = old.title if old else None
        self.add_chat(new_chat_id, chat_type="supergroup", title=title)
        if emit_updates:
            old_chat = self._chats.get(old_chat_id) or Chat(old_chat_id, "group", title=title)
            self._chats.setdefault(old_chat_id, old_chat)
            new_chat = self._chats[new_chat_id]
            sender = make_user(DEFAULT_USER_ID, "alice")
            self._queue_update(
                {
                    "message": {
                        "message_id": old_chat.take_message_id(),
                        "from": sender,
                        "chat": old_chat.as_dict(),
                        "date": self._now(),
                        "migrate_to_chat_id": new_chat_id,
                    }
                }
            )
            self._queue_update(
                {
                    "message": {
                        "message_id": new_chat.take_message_id(),
                        "from": sender,
                        "chat": new_chat.as_dict(),
                        "date": self._now(),
                        "migrate_from_chat_id": old_chat_id,
                    }
                }
            )

    def queue_raw_update(self, payload: JSONDict) -> JSONDict:
        """Queue `payload` verbatim, valid or not (real traffic the library may not parse).

        Its `update_id`, if any, is replaced by the next one. A message in it becomes known to
        its chat, as on Telegram, so the bot can reply to it. Returns the update as delivered.
        """
        body = {k: v for k, v in copy.deepcopy(payload).items() if k != "update_id"}
        for value in body.values():
            self._remember_raw_message(value)
        return self._queue_update(body)

    def _remember_raw_message(self, message: object) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("message_id"), int):
            return
        chat = message.get("chat")
        if not isinstance(chat, dict) or not isinstance(chat.get("id"), int):
            return
        kind = chat.get("type")
        self.add_chat(chat["id"], chat_type=kind if isinstance(kind, str) else None)
        self._chats[chat["id"]].messages[message["message_id"]] = copy.deepcopy(message)


def _callback_datas(markup: JSONDict | None) -> set[str]:
    if not markup:
        return set()
    return {
        button["callback_data"]
        for row in markup.get("inline_keyboard", [])
        for button in row
        if "callback_data" in button
    }
