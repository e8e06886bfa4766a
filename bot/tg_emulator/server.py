"""A local Telegram Bot API for end-to-end tests: real HTTP on loopback, validated like Telegram.

The bot under test talks to `TelegramEmulator.url` exactly as it would talk to
https://api.telegram.org (python-telegram-bot: `base_url=f"{emu.url}/bot{{token}}"`,
`base_file_url=f"{emu.url}/file/bot{{token}}"`). Tests inject what users do (`send_message`,
`press_button`), inspect what the bot did (`calls`, `wait_for`, `messages`, `documents`) and inject
what Telegram does wrong (`fail`, `block`, `migrate_chat`, `enforce_flood_limits`) and what admins
do to forum topics (`close_topic`, `reopen_topic`, `delete_topic`).

Deliberate differences from Telegram: webhooks may use plain http on loopback; unknown chat ids are
created on first use (set `strict_chats` to answer "chat not found" instead); only bot_command
entities are detected in user messages; file URLs are not fetched; HTML parsing refuses unknown
`&entities;` and bare `&` unless `strict_html_entities` is False.
"""

from __future__ import annotations

from .bot_methods import BotMethodsMixin
from .calls import WaitTimeoutError
from .failures import ApiFailure
from .files import FilesMixin
from .http_app import HttpMixin
from .membership import MembershipMixin
from .records import Call
from .spec import UploadedFile
from .state import Handler
from .user_actions import UserActionsMixin

__all__ = ["ApiFailure", "Call", "TelegramEmulator", "UploadedFile", "WaitTimeoutError"]


class TelegramEmulator(HttpMixin, UserActionsMixin, MembershipMixin, FilesMixin, BotMethodsMixin):
    """The Bot API on 127.0.0.1 for one bot token; see the module docstring.

    Each concern is a mixin in its own module; state.EmulatorState holds the constructor and the
    shared attributes. This class only joins them and says which handler answers which method.
    """

    def _method_handlers(self) -> dict[str, Handler]:
        return {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message_api,
            "sendDocument": self._send_document,
            "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback_query,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "getFile": self._get_file,
        }
