"""The bot's text messages: sendMessage, the edits, deleteMessage, and what they share.

Formatting (parse_mode / entities), inline keyboards and replies are checked as Telegram checks
them; a message is stored on its chat as Telegram would return it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .entities import (
    EntityParseError,
    ParsedText,
    UnsupportedParseModeError,
    parse_formatted,
    strip_formatted,
    utf16_len,
)
from .limits import MAX_CAPTION_LENGTH, MAX_MESSAGE_LENGTH
from .records import Chat, JSONDict
from .spec import ApiError, UploadedFile
from .topics import TopicsMixin

__all__ = ["MessagesMixin"]

_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)


class MessagesMixin(TopicsMixin):
    """Sending, editing and deleting the bot's messages."""

    def _format(self, text: str, params: JSONDict, entities_key: str) -> ParsedText:
        try:
            parsed = parse_formatted(
                text,
                params.get("parse_mode"),
                params.get(entities_key),
                strict_html_entities=self.strict_html_entities,
            )
        except UnsupportedParseModeError:
            raise ApiError(400, "Bad Request: unsupported parse_mode") from None
        except EntityParseError as exc:
            raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        return strip_formatted(parsed)

    def _text(self, params: JSONDict, *, too_long: str) -> ParsedText:
        """The formatted `text` parameter, refused when empty or too long (sends and edits word
        the latter differently)."""
        parsed = self._format(params["text"], params, "entities")
        if not parsed.text:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(parsed.text) > MAX_MESSAGE_LENGTH:
            raise ApiError(400, too_long)
        return parsed

    def _caption(self, params: JSONDict) -> ParsedText:
        """The formatted `caption` parameter ("" when absent), refused when too long."""
        caption = self._format(params.get("caption", ""), params, "caption_entities")
        if utf16_len(caption.text) > MAX_CAPTION_LENGTH:
            raise ApiError(400, "Bad Request: message caption is too long")
        return caption

    def _check_markup(self, markup: JSONDict | None) -> JSONDict | None:
        """Validate reply_markup; return it if it is an inline keyboard (kept on the message)."""
        if markup is None or not markup.get("inline_keyboard"):
            return None  # reply keyboards are not part of the Message; [] means no keyboard
        for row in markup["inline_keyboard"]:
            for button in row:
                if not any(k in button for k in _BUTTON_ACTIONS):
                    raise ApiError(
                        400,
                        "Bad Request: can't parse inline keyboard button: Text buttons are "
                        "unallowed in the inline keyboard",
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= 64:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                url = button.get("url")
                if url is not None and not re.match(r"(https?|tg)://\S", url):
                    raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")
        return copy.deepcopy(markup)

    def _new_message(self, chat: Chat, params: JSONDict) -> JSONDict:
        self._check_thread(chat, params)
        message: JSONDict = {
            "message_id": 0,
            "from": self.bot_user,
            "chat": chat.as_dict(),
            "date": self._now(),
        }
        thread = params.get("message_thread_id")
        if thread is not None:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        reply = params.get("reply_parameters")
        if reply is not None:
            target_chat = chat
            if reply.get("chat_id") not in (None, chat.id):
                target_chat = self._resolve_chat(reply["chat_id"])
            target = target_chat.messages.get(reply["message_id"])
            if target is not None:
                quoted = copy.deepcopy(target)
                quoted.pop("reply_to_message", None)
                message["reply_to_message"] = quoted
            elif not reply.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not found")
        return message

    def _store(self, chat: Chat, message: JSONDict, markup: JSONDict | None) -> JSONDict:
        """Keep the new message (with its inline keyboard, if any) on the chat; return a copy."""
        if markup is not None:
            message["reply_markup"] = markup
        message["message_id"] = chat.take_message_id()
        chat.messages[message["message_id"]] = message
        return copy.deepcopy(message)

    async def _send_message_api(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        chat = self._resolve_chat(params["chat_id"])
        parsed = self._text(params, too_long="Bad Request: message is too long")
        markup = self._check_markup(params.get("reply_markup"))
        message = self._new_message(chat, params)
        message["text"] = parsed.text
        if parsed.entities:
            message["entities"] = parsed.entities
        return self._store(chat, message, markup)

    def _target_message(self, params: JSONDict, not_found: str) -> tuple[Chat, JSONDict]:
        if params.get("inline_message_id") is not None:
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        if params.get("chat_id") is None:
            raise ApiError(400, "Bad Request: chat_id is empty")
        if params.get("message_id") is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        chat = self._resolve_chat(params["chat_id"])
        message = chat.messages.get(params["message_id"])
        if message is None:
            raise ApiError(400, not_found)
        return chat, message

    def _editable(self, params: JSONDict) -> tuple[Chat, JSONDict]:
        chat, message = self._target_message(params, "Bad Request: message to edit not found")
        if message.get("from", {}).get("id") != self.bot_id:
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat, message

    def _apply_edit(self, message: JSONDict, changes: JSONDict) -> JSONDict:
        current = {k: message.get(k) for k in changes}
        wanted = {k: v or None for k, v in changes.items()}
        if {k: v or None for k, v in current.items()} == wanted:
            raise ApiError(400, _NOT_MODIFIED)
        for key, value in wanted.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = self._now()
        return copy.deepcopy(message)

    async def _edit_message_text(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        _, message = self._editable(params)
        if "text" not in message:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        parsed = self._text(params, too_long="Bad Request: MESSAGE_TOO_LONG")
        markup = self._check_markup(params.get("reply_markup"))
        return self._apply_edit(
            message, {"text": parsed.text, "entities": parsed.entities, "reply_markup": markup}
        )

    async def _edit_message_caption(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        _, message = self._editable(params)
        if "text" in message:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption = self._caption(params)
        markup = self._check_markup(params.get("reply_markup"))
        return self._apply_edit(
            message,
            {
                "caption": caption.text,
                "caption_entities": caption.entities,
                "reply_markup": markup,
            },
        )

    async def _edit_message_reply_markup(
        self, params: JSONDict, files: dict[str, UploadedFile]
    ) -> Any:
        _, message = self._editable(params)
        markup = self._check_markup(params.get("reply_markup"))
        return self._apply_edit(message, {"reply_markup": markup})

    async def _delete_message(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        chat, message = self._target_message(params, "Bad Request: message to delete not found")
        del chat.messages[message["message_id"]]
        return True
