"""A local Telegram Bot API for end-to-end tests: real HTTP on loopback, validated like Telegram.

The bot under test talks to `TelegramEmulator.url` exactly as it would talk to
https://api.telegram.org (python-telegram-bot: `base_url=f"{emu.url}/bot{{token}}"`,
`base_file_url=f"{emu.url}/file/bot{{token}}"`). Tests inject what users do (`send_message`,
`press_button`), inspect what the bot did (`calls`, `wait_for`, `messages`, `documents`) and inject
what Telegram does wrong (`fail`, `block`, `migrate_chat`, `enforce_flood_limits`).

Deliberate differences from Telegram: webhooks may use plain http on loopback; unknown chat ids are
created on first use (set `strict_chats` to answer "chat not found" instead); only bot_command
entities are detected in user messages; file URLs are not fetched; HTML parsing refuses unknown
`&entities;` and bare `&` unless `strict_html_entities` is False.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import http
import itertools
import json
import logging
import math
import mimetypes
import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from bot.clock import Clock, SystemClock

from .entities import (
    EntityParseError,
    ParsedText,
    UnsupportedParseModeError,
    find_bot_commands,
    parse_formatted,
    strip_formatted,
    utf16_len,
)
from .spec import DEFAULT_SPEC_PATH, ApiError, ApiSpec, MethodSpec, UploadedFile, load_spec

__all__ = ["ApiFailure", "Call", "TelegramEmulator", "UploadedFile", "WaitTimeoutError"]

_LOGGER = logging.getLogger(__name__)
JSONDict = dict[str, Any]
Handler = Callable[[JSONDict, dict[str, UploadedFile]], Awaitable[Any]]

MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
DEFAULT_USER_ID = 424_242_001  # the sender of group messages unless a test says otherwise

_TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]+")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_WEBHOOK_PORTS = frozenset({80, 88, 443, 8443})
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
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# ChatMemberRestricted / ChatMemberAdministrator's required booleans, as recent Bot API versions
# send them (python-telegram-bot refuses the whole update when one is missing).
_RESTRICTED_RIGHTS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
    "can_edit_tag",
    "can_react_to_messages",
)
_ADMIN_RIGHTS = (
    "is_anonymous",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)
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
_QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)


class WaitTimeoutError(AssertionError):
    """`wait_for` gave up: the awaited calls did not happen in time."""


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


@dataclass(frozen=True)
class ApiFailure:
    """An error answer to inject with `TelegramEmulator.fail`; `hang` never answers."""

    status: int
    description: str
    parameters: Mapping[str, Any] | None = None
    hang: bool = False

    @classmethod
    def server_error(cls, status: int = 502) -> ApiFailure:
        """A 5xx: {"ok": false, "error_code": 502, "description": "Bad Gateway"}."""
        return cls(status, http.HTTPStatus(status).phrase)

    @classmethod
    def retry_after(cls, seconds: int) -> ApiFailure:
        """429 Too Many Requests with parameters.retry_after."""
        return cls(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})

    @classmethod
    def blocked(cls) -> ApiFailure:
        """403: the user blocked the bot."""
        return cls(403, "Forbidden: bot was blocked by the user")

    @classmethod
    def chat_not_found(cls) -> ApiFailure:
        """400: chat not found."""
        return cls(400, "Bad Request: chat not found")

    @classmethod
    def bad_request(cls, description: str) -> ApiFailure:
        """Any other 400 ("Bad Request: " is prefixed unless present)."""
        if not description.startswith("Bad Request:"):
            description = f"Bad Request: {description}"
        return cls(400, description)

    @classmethod
    def timeout(cls) -> ApiFailure:
        """No answer until the client gives up (disconnects) or the emulator stops."""
        return cls(0, "no answer", hang=True)

    def error(self) -> ApiError:
        """As an ApiError."""
        return ApiError(self.status, self.description, self.parameters)


@dataclass
class _FailureRule:
    method: str  # lower case, or "*"
    failure: ApiFailure
    remaining: int
    chat_id: int | str | None


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_name: str
    mime_type: str
    content: bytes
    file_path: str


@dataclass
class _Chat:
    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    is_forum: bool = False
    messages: dict[int, JSONDict] = field(default_factory=dict)
    next_message_id: int = 1

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
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


def _is_send(method: str) -> bool:
    """Whether `method` posts a message (what Telegram's flood limits count)."""
    return (method.startswith("send") and method != "sendChatAction") or method in (
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
    )


def _touches_chat(method: str) -> bool:
    """Whether a blocked user / migrated group makes `method` fail."""
    return method.startswith(("send", "copy", "forward", "edit"))


class TelegramEmulator:
    """The Bot API on 127.0.0.1 for one bot token; see the module docstring."""

    def __init__(
        self,
        token: str = "123456:TEST-token",  # noqa: S107 - a test token
        bot_username: str = "smsc_tasks_bot",
        *,
        bot_first_name: str = "SMSC Tasks",
        spec_path: Path | str = DEFAULT_SPEC_PATH,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.bot_id = int(token.split(":", 1)[0])
        self.spec: ApiSpec = load_spec(spec_path)
        self.clock: Clock = clock or SystemClock()
        self.host = host
        self.port = port

        # knobs
        self.enforce_flood_limits = False
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self.long_poll_cap = 10.0  # seconds a getUpdates may wait, whatever its timeout
        self.strict_html_entities = True
        self.strict_chats = False
        self.webhook_retry_delay = 0.1
        self.webhook_max_attempts = 3
        self.ignore_allowed_updates = False  # deliver every type (corpus replay)

        # what happened
        self.calls: list[Call] = []
        self.documents: dict[str, bytes] = {}
        self.commands: list[JSONDict] = []
        self.webhook_deliveries: list[tuple[JSONDict, int]] = []
        self.callback_answers: dict[str, JSONDict] = {}
        self.flood_429s = 0
        self.active_polls = 0  # getUpdates requests waiting right now

        self._chats: dict[int, _Chat] = {}
        self._files: dict[str, _StoredFile] = {}
        self._file_seq = itertools.count(1)
        self._commands_by_scope: dict[tuple[str, str], list[JSONDict]] = {}
        self._updates: list[JSONDict] = []
        self._next_update_id = 700_000_001
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._callback_queries: dict[str, bool] = {}  # id -> answered
        self._callback_seq = itertools.count(1)
        self._failures: list[_FailureRule] = []
        self._blocked: set[int] = set()
        self._migrated: dict[int, int] = {}
        self._webhook: _Webhook | None = None
        self._flood_global: deque[float] = deque()
        self._flood_chat: dict[int, deque[float]] = {}

        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._url: str | None = None

        self._handlers: dict[str, Handler] = {
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

    # ---- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT once started."""
        if self._url is None:
            raise RuntimeError("the emulator is not started")
        return self._url

    @property
    def bot_user(self) -> JSONDict:
        """The bot as a User object."""
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    async def start(self) -> None:
        """Serve on host:port (port 0: a free one)."""
        if self._runner is not None:
            raise RuntimeError("already started")
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        addresses = runner.addresses
        self.port = addresses[0][1] if addresses else self.port  # a restart keeps the port
        self._url = f"http://{self.host}:{self.port}"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._webhook_task = asyncio.create_task(self._webhook_worker(), name="tg-emu-webhook")

    def release_held(self) -> None:
        """Answer every request held by `ApiFailure.timeout()` now, with a 503."""
        self._release.set()
        self._release = asyncio.Event()

    async def stop(self) -> None:
        """Release long polls and held requests at once, then shut the server down."""
        self._stopping.set()
        self._notify()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _notify(self) -> None:
        """Wake everything waiting for a new call, update or state change."""
        self._changed.set()
        self._changed = asyncio.Event()

    # ---- what users do ------------------------------------------------------------------

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
            kind = chat_type or _default_chat_type(chat_id)
            chat = _Chat(chat_id, kind)
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
            "from": _user(user_id, username, language_code),
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
            "from": _user(user_id, username, language_code),
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
            old_chat = self._chats.get(old_chat_id) or _Chat(old_chat_id, "group", title=title)
            self._chats.setdefault(old_chat_id, old_chat)
            new_chat = self._chats[new_chat_id]
            sender = _user(DEFAULT_USER_ID, "alice")
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

    def delete_message_by_user(self, chat_id: int, message_id: int) -> None:
        """Someone deleted the message: edits find nothing, a button press shows it inaccessible."""
        chat = self._chats.get(chat_id)
        if chat is not None:
            chat.messages.pop(message_id, None)

    def set_bot_membership(
        self,
        chat_id: int,
        status: str,
        *,
        old_status: str = "member",
        user_id: int | None = None,
    ) -> JSONDict:
        """The bot's own membership in a chat changed: a `my_chat_member` update.

        `status` "left" or "kicked" (in a private chat: the user blocked the bot) also makes
        later sends to the chat fail with 403, as Telegram's would; "member" or
        "administrator" undoes that.
        """
        if chat_id not in self._chats:
            self.add_chat(chat_id)
        chat = self._chats[chat_id]
        if user_id is None:
            user_id = chat_id if chat.type == "private" else DEFAULT_USER_ID
        if status in ("left", "kicked"):
            self._blocked.add(chat_id)
        else:
            self._blocked.discard(chat_id)
        change: JSONDict = {
            "chat": chat.as_dict(),
            "from": _user(user_id, "alice"),
            "date": self._now(),
            "old_chat_member": self._bot_member(old_status),
            "new_chat_member": self._bot_member(status),
        }
        return self._queue_update({"my_chat_member": change})

    def _bot_member(self, status: str) -> JSONDict:
        member: JSONDict = {"status": status, "user": self.bot_user}
        if status == "kicked":
            member["until_date"] = 0  # for ever
        elif status == "restricted":
            member.update(
                {
                    "is_member": False,
                    "until_date": 0,
                    **dict.fromkeys(_RESTRICTED_RIGHTS, False),
                }
            )
        elif status == "administrator":
            member.update(dict.fromkeys(_ADMIN_RIGHTS, False))
            member["can_be_edited"] = False
        return member

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: sends to `chat_id` answer 403 until `unblock`."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        """Undo `block`."""
        self._blocked.discard(chat_id)

    def fail(
        self,
        method: str,
        failure: ApiFailure,
        *,
        count: int = 1,
        chat_id: int | str | None = None,
    ) -> None:
        """Answer the next `count` calls of `method` ("*": any) [to chat_id] with `failure`."""
        self._failures.append(_FailureRule(method.lower(), failure, count, chat_id))

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed (getUpdates offset) or delivered to the webhook."""
        return list(self._updates)

    # ---- what the bot did ---------------------------------------------------------------

    def calls_to(
        self, method: str, chat_id: int | str | None = None, *, ok: bool | None = None
    ) -> list[Call]:
        """Calls of `method` (case-insensitive), optionally to one chat and/or by outcome."""
        return [c for c in self.calls if _matches(c, method.lower(), chat_id, ok, None)]

    async def wait_for(
        self,
        method: str,
        *,
        predicate: Callable[[Call], bool] | None = None,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - a safety net, part of the agreed API
        ok: bool | None = None,
        chat_id: int | str | None = None,
    ) -> list[Call]:
        """Wait until at least `count` matching calls were made; return all matching calls.

        `timeout` (real seconds) is a safety net only; raises WaitTimeoutError.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        wanted = method.lower()
        while True:
            matching = [c for c in self.calls if _matches(c, wanted, chat_id, ok, predicate)]
            if len(matching) >= count:
                return matching
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = ", ".join(f"{c.method}:{c.status}" for c in self.calls[-10:])
                raise WaitTimeoutError(
                    f"waited {timeout}s for {count} call(s) to {method}, saw {len(matching)}; "
                    f"last calls: [{recent}]"
                )
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def wait_for_deliveries(
        self,
        count: int = 1,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a safety net, like wait_for
    ) -> None:
        """Wait until `count` webhook POSTs were attempted."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.webhook_deliveries) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WaitTimeoutError(
                    f"waited {timeout}s for {count} webhook deliveries, "
                    f"saw {len(self.webhook_deliveries)}"
                )
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def wait_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a safety net, like wait_for
    ) -> None:
        """Wait until `condition()` holds, re-checked whenever the emulator's state changes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WaitTimeoutError(f"condition still false after {timeout}s")
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

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

    def commands_for(
        self, scope: JSONDict | None = None, language_code: str = ""
    ) -> list[JSONDict]:
        """The commands set for a scope (default scope if None) and language."""
        return list(self._commands_by_scope.get(_scope_key(scope, language_code), []))

    # ---- HTTP ---------------------------------------------------------------------------

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        path = request.match_info["path"]
        for stored in self._files.values():
            if stored.file_path == path:
                return web.Response(body=stored.content, content_type=stored.mime_type)
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        started = self.clock.monotonic()
        token = request.match_info["token"]
        method_spec = self.spec.method(request.match_info["method"])
        method = method_spec.name if method_spec else request.match_info["method"]
        params: JSONDict = {}
        files: dict[str, UploadedFile] = {}
        ignored: JSONDict = {}
        try:
            method_spec = self._route(token, method_spec)
            raw, files = await self._read_params(request)
            params, files, ignored = self.spec.decode_params(method_spec, raw, files)
            failure = self._take_failure(method, params)
            if failure is not None and failure.hang:
                self._record(Call(method, params, files, 0, {}, started, ignored))
                waiters = [
                    asyncio.ensure_future(self._stopping.wait()),
                    asyncio.ensure_future(self._release.wait()),
                ]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                return web.json_response(ApiFailure.server_error(503).error().body(), status=503)
            self._check_chat_state(method, params, failure)
            self._check_flood(method, params)
            handler = self._handlers.get(method, self._true)
            result = await handler(params, files)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as exc:
            status, body = exc.status, exc.body()
        except Exception:  # an emulator bug: answer 500 and keep a trace, like a real outage
            _LOGGER.exception("the Bot API emulator failed on %s", method)
            status, body = 500, ApiFailure.server_error(500).error().body()
        self._record(Call(method, params, files, status, body, started, ignored))
        return web.json_response(body, status=status)

    def _route(self, token: str, method_spec: MethodSpec | None) -> MethodSpec:
        """401 for a well-formed wrong token, 404 for a malformed one or an unknown method."""
        if token != self.token:
            if _TOKEN_RE.fullmatch(token):
                raise ApiError(401, "Unauthorized")
            raise ApiError(404, "Not Found")
        if method_spec is None:
            raise ApiError(404, "Not Found")
        return method_spec

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._notify()

    async def _read_params(self, request: web.Request) -> tuple[JSONDict, dict[str, UploadedFile]]:
        raw: JSONDict = dict(request.query)
        files: dict[str, UploadedFile] = {}
        if not request.body_exists:
            return raw, files
        ctype = request.content_type
        try:
            if ctype == "application/json":
                body = await request.read()
                if body.strip():
                    try:
                        data = json.loads(body)
                    except ValueError:
                        raise ApiError(400, "Bad Request: can't parse JSON object") from None
                    if not isinstance(data, dict):
                        raise ApiError(400, "Bad Request: JSON object expected")
                    raw.update(data)
            elif ctype == "application/x-www-form-urlencoded":
                raw.update((await request.post()).items())
            elif ctype.startswith("multipart/"):
                files = await self._read_multipart(request, raw)
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, "Request Entity Too Large") from None
        return raw, files

    async def _read_multipart(self, request: web.Request, raw: JSONDict) -> dict[str, UploadedFile]:
        """Stream the parts; a file over max_upload_bytes is drained, then answered with 413."""
        files: dict[str, UploadedFile] = {}
        too_large = False
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                continue
            if part.filename is None:
                raw[part.name] = await part.text()
                continue
            chunks: list[bytes] = []
            size = 0
            while chunk := await part.read_chunk(256 * 1024):
                size += len(chunk)
                if size > self.max_upload_bytes:
                    too_large = True
                    chunks.clear()
                elif not too_large:
                    chunks.append(chunk)
            content_type = part.headers.get(aiohttp.hdrs.CONTENT_TYPE, "application/octet-stream")
            files[part.name] = UploadedFile(part.filename, b"".join(chunks), content_type)
        if too_large:
            raise ApiError(413, "Request Entity Too Large")
        return files

    # ---- faults and limits --------------------------------------------------------------

    def _take_failure(self, method: str, params: JSONDict) -> ApiFailure | None:
        for rule in self._failures:
            if rule.method not in ("*", method.lower()):
                continue
            if rule.chat_id is not None and params.get("chat_id") != rule.chat_id:
                continue
            rule.remaining -= 1
            if rule.remaining <= 0:
                self._failures.remove(rule)
            return rule.failure
        return None

    def _check_chat_state(
        self, method: str, params: JSONDict, failure: ApiFailure | None = None
    ) -> None:
        """Raise the injected failure, else what a migrated group or a blocked user answers."""
        if failure is not None:
            raise failure.error()
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            return
        if chat_id in self._migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_id]},
            )
        if chat_id in self._blocked and _touches_chat(method):
            raise ApiError(403, "Forbidden: bot was blocked by the user")

    def _check_flood(self, method: str, params: JSONDict) -> None:
        chat_id = params.get("chat_id")
        if not self.enforce_flood_limits or not _is_send(method) or not isinstance(chat_id, int):
            return
        now = self.clock.monotonic()
        overall = self._flood_global
        while overall and now - overall[0] >= 1.0:
            overall.popleft()
        per_chat = self._flood_chat.setdefault(chat_id, deque())
        while per_chat and now - per_chat[0] >= 60.0:
            per_chat.popleft()
        waits: list[float] = []
        if len(overall) >= 30:
            waits.append(overall[0] + 1.0 - now)
        last_second = [t for t in per_chat if now - t < 1.0]
        if last_second:
            waits.append(last_second[-1] + 1.0 - now)
        if chat_id < 0 and len(per_chat) >= 20:
            waits.append(per_chat[0] + 60.0 - now)
        if waits:
            self.flood_429s += 1
            retry = max(1, math.ceil(max(waits)))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        overall.append(now)
        per_chat.append(now)

    # ---- updates ------------------------------------------------------------------------

    def _queue_update(self, payload: JSONDict) -> JSONDict:
        update = {"update_id": self._next_update_id, **payload}
        self._next_update_id += 1
        self._updates.append(update)
        self._notify()
        return copy.deepcopy(update)

    def _allowed(self, update: JSONDict) -> bool:
        kind = next((k for k in update if k != "update_id"), "")
        if self.ignore_allowed_updates:
            return True
        if self._allowed_updates:
            return kind in self._allowed_updates
        return kind not in _DEFAULT_EXCLUDED_UPDATES

    def _deliverable(self, limit: int) -> list[JSONDict]:
        self._updates = [u for u in self._updates if self._allowed(u)]
        return [copy.deepcopy(u) for u in self._updates[:limit]]

    async def _get_updates(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        if self._webhook is not None:
            raise ApiError(409, _WEBHOOK_CONFLICT)
        offset = params.get("offset")
        limit = min(100, max(1, params.get("limit", 100)))
        timeout = min(max(0, params.get("timeout", 0)), self.long_poll_cap)
        if "allowed_updates" in params:
            self._allowed_updates = list(params["allowed_updates"]) or None
        if offset is not None:
            if offset < 0:
                self._updates = self._updates[offset:]
            else:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
        self._poll_generation += 1
        generation = self._poll_generation
        self.active_polls += 1
        self._notify()  # an older long poll gets 409; wait_until(active_polls) wakes
        try:
            return await self._long_poll(generation, limit, wait_seconds=timeout)
        finally:
            self.active_polls -= 1

    async def _long_poll(
        self, generation: int, limit: int, *, wait_seconds: float
    ) -> list[JSONDict]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            changed = self._changed
            if generation != self._poll_generation:
                raise ApiError(409, _POLL_CONFLICT)
            if self._webhook is not None:
                raise ApiError(409, _WEBHOOK_CONFLICT)
            batch = self._deliverable(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._stopping.is_set():
                return batch
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def _webhook_worker(self) -> None:
        attempts = 0
        while True:
            changed = self._changed
            hook = self._webhook
            self._updates = [u for u in self._updates if self._allowed(u)]
            if hook is None or not self._updates or self._session is None:
                await changed.wait()
                continue
            update = self._updates[0]
            headers = {}
            if hook.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
            error: str | None = None
            try:
                async with self._session.post(hook.url, json=update, headers=headers) as resp:
                    status = resp.status
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = 0
                error = f"Connection error: {exc.__class__.__name__}"
            self.webhook_deliveries.append((copy.deepcopy(update), status))
            delivered = 200 <= status < 300
            if not delivered:
                hook.last_error_date = self._now()
                hook.last_error_message = error or f"Wrong response from the webhook: {status}"
                attempts += 1
            if delivered or attempts >= self.webhook_max_attempts:
                attempts = 0
                if self._updates and self._updates[0] is update:
                    self._updates.pop(0)
                self._notify()
            else:
                self._notify()
                await asyncio.sleep(self.webhook_retry_delay)

    async def _set_webhook(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        url = params.get("url", "")
        if not url:
            self._webhook = None
            self._notify()
            return True
        parts = urlsplit(url)
        loopback = parts.hostname in _LOOPBACK_HOSTS
        # Real Telegram demands https on ports 80/88/443/8443; tests serve http on loopback.
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        if not loopback and (parts.port or 443) not in _WEBHOOK_PORTS:
            raise ApiError(
                400,
                "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
            )
        secret = params.get("secret_token")
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        max_connections = params.get("max_connections", 40)
        if not 1 <= max_connections <= 100:
            raise ApiError(
                400, "Bad Request: bad webhook: max_connections must be between 1 and 100"
            )
        if params.get("drop_pending_updates"):
            self._updates.clear()
        if "allowed_updates" in params:
            self._allowed_updates = list(params["allowed_updates"]) or None
        self._webhook = _Webhook(url, secret, max_connections)
        self._notify()
        return True

    async def _delete_webhook(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._webhook = None
        self._notify()
        return True

    async def _get_webhook_info(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        hook = self._webhook
        info: JSONDict = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            info["ip_address"] = "127.0.0.1"
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
            if self._allowed_updates:
                info["allowed_updates"] = list(self._allowed_updates)
        return info

    # ---- simple methods -----------------------------------------------------------------

    async def _true(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        return True

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

    # ---- messages -----------------------------------------------------------------------

    def _now(self) -> int:
        return int(self.clock.now().timestamp())

    def _resolve_chat(self, chat_id: int | str) -> _Chat:
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

    def _new_message(self, chat: _Chat, params: JSONDict) -> JSONDict:
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

    def _store(self, chat: _Chat, message: JSONDict) -> JSONDict:
        message["message_id"] = chat.take_message_id()
        chat.messages[message["message_id"]] = message
        return copy.deepcopy(message)

    async def _send_message_api(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        chat = self._resolve_chat(params["chat_id"])
        parsed = self._format(params["text"], params, "entities")
        if not parsed.text:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(parsed.text) > MAX_MESSAGE_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        markup = self._check_markup(params.get("reply_markup"))
        message = self._new_message(chat, params)
        message["text"] = parsed.text
        if parsed.entities:
            message["entities"] = parsed.entities
        if markup is not None:
            message["reply_markup"] = markup
        return self._store(chat, message)

    def _new_file(self, upload: UploadedFile) -> _StoredFile:
        seq = next(self._file_seq)
        digest = hashlib.sha256(upload.content + seq.to_bytes(8, "big")).hexdigest()
        file_name = Path(upload.filename).name or "document"
        mime = upload.content_type
        if not mime or mime == "application/octet-stream":
            mime = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        stored = _StoredFile(
            file_id=f"BQACAgIAAxkBAAI{seq:05d}{digest[:40]}",
            file_unique_id=f"AgAD{digest[40:52]}",
            file_name=file_name,
            mime_type=mime,
            content=upload.content,
            file_path=f"documents/file_{seq}{Path(file_name).suffix}",
        )
        self._files[stored.file_id] = stored
        self.documents[stored.file_id] = upload.content
        return stored

    async def _send_document(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        chat = self._resolve_chat(params["chat_id"])
        caption = self._format(params.get("caption", ""), params, "caption_entities")
        if utf16_len(caption.text) > MAX_CAPTION_LENGTH:
            raise ApiError(400, "Bad Request: message caption is too long")
        upload = files.get("document")
        if upload is not None:
            if not upload.content:
                raise ApiError(400, "Bad Request: file must be non-empty")
            stored = self._new_file(upload)
        else:
            found = self._files.get(params["document"])
            if found is None:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            stored = found
        markup = self._check_markup(params.get("reply_markup"))
        message = self._new_message(chat, params)
        message["document"] = _document(stored)
        if caption.text:
            message["caption"] = caption.text
            if caption.entities:
                message["caption_entities"] = caption.entities
        if markup is not None:
            message["reply_markup"] = markup
        return self._store(chat, message)

    async def _get_file(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        stored = self._files.get(params["file_id"])
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.content) > MAX_DOWNLOAD_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    def _target_message(self, params: JSONDict, not_found: str) -> tuple[_Chat, JSONDict]:
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

    def _editable(self, params: JSONDict) -> tuple[_Chat, JSONDict]:
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
        parsed = self._format(params["text"], params, "entities")
        if not parsed.text:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(parsed.text) > MAX_MESSAGE_LENGTH:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        markup = self._check_markup(params.get("reply_markup"))
        return self._apply_edit(
            message, {"text": parsed.text, "entities": parsed.entities, "reply_markup": markup}
        )

    async def _edit_message_caption(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        _, message = self._editable(params)
        if "text" in message:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption = self._format(params.get("caption", ""), params, "caption_entities")
        if utf16_len(caption.text) > MAX_CAPTION_LENGTH:
            raise ApiError(400, "Bad Request: message caption is too long")
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


def _default_chat_type(chat_id: int) -> str:
    if chat_id > 0:
        return "private"
    return "supergroup" if chat_id < -1_000_000_000_000 else "group"


def _user(user_id: int, username: str | None, language_code: str | None = "en") -> JSONDict:
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


def _document(stored: _StoredFile) -> JSONDict:
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_name": stored.file_name,
        "mime_type": stored.mime_type,
        "file_size": len(stored.content),
    }


def _callback_datas(markup: JSONDict | None) -> set[str]:
    if not markup:
        return set()
    return {
        button["callback_data"]
        for row in markup.get("inline_keyboard", [])
        for button in row
        if "callback_data" in button
    }


def _scope_key(scope: JSONDict | None, language_code: str) -> tuple[str, str]:
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""


def _matches(
    call: Call,
    method: str,
    chat_id: int | str | None,
    ok: bool | None,
    predicate: Callable[[Call], bool] | None,
) -> bool:
    if call.method.lower() != method:
        return False
    if chat_id is not None and call.params.get("chat_id") != chat_id:
        return False
    if ok is not None and call.ok != ok:
        return False
    return predicate is None or predicate(call)
