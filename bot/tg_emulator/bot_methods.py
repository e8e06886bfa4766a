"""Bot API methods that store no message: getMe, command menus, chat actions, callback answers."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from .chats import ChatsMixin
from .entities import utf16_len
from .records import JSONDict
from .spec import ApiError, UploadedFile

__all__ = ["BotMethodsMixin"]

_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"


class BotMethodsMixin(ChatsMixin):
    """The bot's identity and command menus; typing indicators; answers to button presses."""

    def commands_for(
        self, scope: JSONDict | None = None, language_code: str = ""
    ) -> list[JSONDict]:
        """The commands set for a scope (default scope if None) and language."""
        return list(self._commands_by_scope.get(_scope_key(scope, language_code), []))

    async def _get_me(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _set_my_commands(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        commands: list[JSONDict] = params["commands"]
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: too many commands specified")
        for command in commands:
            if not _COMMAND_RE.fullmatch(command["command"]):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command["description"].strip()) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        cleaned = [{"command": c["command"], "description": c["description"]} for c in commands]
        key = _scope_key(params.get("scope"), params.get("language_code", ""))
        self._commands_by_scope[key] = cleaned
        self.commands = copy.deepcopy(cleaned)
        return True

    async def _get_my_commands(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        return self.commands_for(params.get("scope"), params.get("language_code", ""))

    async def _delete_my_commands(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        key = _scope_key(params.get("scope"), params.get("language_code", ""))
        self._commands_by_scope.pop(key, None)
        if key == _scope_key(None, ""):
            self.commands = []
        return True

    async def _send_chat_action(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        self._resolve_chat(params["chat_id"])
        if params["action"] not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _answer_callback_query(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        query_id = params["callback_query_id"]
        if self._callback_queries.get(query_id, True):
            raise ApiError(400, _QUERY_INVALID)
        if utf16_len(params.get("text", "")) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._callback_queries[query_id] = True
        self.callback_answers[query_id] = dict(params)
        return True


def _scope_key(scope: JSONDict | None, language_code: str) -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""
