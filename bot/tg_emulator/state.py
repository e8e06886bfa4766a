"""The emulator's state and knobs, shared by the mixins that make up `TelegramEmulator`.

Each concern (chats, updates, webhook, messages, files, faults, HTTP) is a mixin over this base;
they meet only in these attributes and the few helpers here (`_notify`, `_now`, `_queue_update`).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.clock import Clock, SystemClock

from .failures import FailureRule
from .limits import MAX_UPLOAD_BYTES
from .records import Call, Chat, JSONDict, StoredFile, Webhook
from .spec import DEFAULT_SPEC_PATH, ApiSpec, UploadedFile, load_spec

__all__ = ["EmulatorState", "Handler"]

Handler = Callable[[JSONDict, dict[str, UploadedFile]], Awaitable[Any]]


class EmulatorState:
    """What every part of the emulator reads and writes; see server.TelegramEmulator."""

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

        self._chats: dict[int, Chat] = {}
        self._files: dict[str, StoredFile] = {}
        self._file_seq = itertools.count(1)
        self._commands_by_scope: dict[tuple[str, str], list[JSONDict]] = {}
        self._updates: list[JSONDict] = []
        self._next_update_id = 700_000_001
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._callback_queries: dict[str, bool] = {}  # id -> answered
        self._callback_seq = itertools.count(1)
        self._failures: list[FailureRule] = []
        self._blocked: set[int] = set()
        self._migrated: dict[int, int] = {}
        self._webhook: Webhook | None = None
        self._flood_global: deque[float] = deque()
        self._flood_chat: dict[int, deque[float]] = {}

        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._url: str | None = None
        self._handlers: dict[str, Handler] = self._method_handlers()

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

    def _method_handlers(self) -> dict[str, Handler]:
        """Which coroutine answers which Bot API method; TelegramEmulator names them."""
        return {}

    def _notify(self) -> None:
        """Wake everything waiting for a new call, update or state change."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _now(self) -> int:
        return int(self.clock.now().timestamp())

    def _queue_update(self, payload: JSONDict) -> JSONDict:
        update = {"update_id": self._next_update_id, **payload}
        self._next_update_id += 1
        self._updates.append(update)
        self._notify()
        return copy.deepcopy(update)
