"""Forum topics that admins closed, reopened or deleted, and what posting into them answers.

Telegram refuses a post into a closed topic with "Bad Request: TOPIC_CLOSED" (one word, as other
bots and libraries match it) unless the poster may manage topics: an administrator with
can_manage_topics, which `set_bot_membership(..., can_manage_topics=True)` gives the bot. A
post into a deleted topic answers "Bad Request: message thread not found", and the topic's
messages are gone. A topic id the emulator was never told about is accepted, as before: tests
post into any thread id without creating it first.
"""

from __future__ import annotations

import copy

from .chats import DEFAULT_USER_ID, ChatsMixin, make_user
from .records import Chat, JSONDict
from .spec import ApiError

__all__ = ["TOPIC_CLOSED", "TOPIC_DELETED", "TopicsMixin"]

TOPIC_CLOSED = "Bad Request: TOPIC_CLOSED"
TOPIC_DELETED = "Bad Request: message thread not found"


class TopicsMixin(ChatsMixin):
    """`close_topic`, `reopen_topic`, `delete_topic`; `_check_thread` for each new message."""

    def close_topic(self, chat_id: int, thread_id: int, *, emit_update: bool = False) -> None:
        """An admin closed the forum topic: posts into it answer TOPIC_CLOSED until reopened.

        With `emit_update`, the bot also gets the service message (`forum_topic_closed`).
        """
        chat = self._forum(chat_id)
        chat.closed_topics.add(thread_id)
        if emit_update:
            self._topic_service_message(chat, thread_id, "forum_topic_closed")

    def reopen_topic(self, chat_id: int, thread_id: int, *, emit_update: bool = False) -> None:
        """Undo `close_topic` (with `emit_update`: the `forum_topic_reopened` service message)."""
        chat = self._forum(chat_id)
        chat.closed_topics.discard(thread_id)
        if emit_update:
            self._topic_service_message(chat, thread_id, "forum_topic_reopened")

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """An admin deleted the topic with its messages: posts into it find no thread.

        Telegram sends no update for it; edits of its messages find nothing to edit.
        """
        chat = self._forum(chat_id)
        chat.closed_topics.discard(thread_id)
        chat.deleted_topics.add(thread_id)
        for message_id, message in list(chat.messages.items()):
            if message.get("message_thread_id") == thread_id:
                del chat.messages[message_id]

    def _forum(self, chat_id: int) -> Chat:
        known = chat_id in self._chats  # a known chat keeps its type; a new one is a supergroup
        self.add_chat(chat_id, chat_type=None if known else "supergroup", is_forum=True)
        return self._chats[chat_id]

    def _check_thread(self, chat: Chat, params: JSONDict) -> None:
        """Refuse a new message into a deleted topic, or a closed one the bot may not post in.

        The topic is `message_thread_id`, else the one of the message replied to (Telegram puts
        a reply where its target is).
        """
        thread = params.get("message_thread_id")
        reply = params.get("reply_parameters")
        if thread is None and reply is not None and reply.get("chat_id") in (None, chat.id):
            thread = chat.messages.get(reply.get("message_id"), {}).get("message_thread_id")
        if thread is None:
            return
        if thread in chat.deleted_topics:
            raise ApiError(400, TOPIC_DELETED)
        if thread in chat.closed_topics and not chat.bot_manages_topics:
            raise ApiError(400, TOPIC_CLOSED)

    def _topic_service_message(self, chat: Chat, thread_id: int, kind: str) -> None:
        message: JSONDict = {
            "message_id": chat.take_message_id(),
            "from": make_user(DEFAULT_USER_ID, "alice"),
            "chat": chat.as_dict(),
            "date": self._now(),
            "message_thread_id": thread_id,
            "is_topic_message": True,
            kind: {},
        }
        chat.messages[message["message_id"]] = message
        self._queue_update({"message": copy.deepcopy(message)})
