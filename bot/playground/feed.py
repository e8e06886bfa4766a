"""What happens in the chats, as a numbered stream of events for the web page (SSE).

The emulator records every Bot API call the bot makes; the feed turns the successful ones that
change what a person sees (a message, an edit, a deletion, a chat action, a callback answer, the
command menu) into events, numbered so a reconnecting page asks only for what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from bot.tg_emulator import Call, TelegramEmulator, WaitTimeoutError

log = logging.getLogger(__name__)

JSON = dict[str, Any]

KEEP_EVENTS = 2000  # a page that was away longer reloads its chats instead
KEEP_CALLS = 2000  # the emulator keeps every call (with uploads): bound it on a long demo run


@dataclass(frozen=True)
class Event:
    """One numbered change."""

    id: int
    data: JSON


@dataclass(frozen=True)
class FileInfo:
    """A document the bot sent, for the download link."""

    file_name: str
    mime_type: str


class Feed:
    """Events from the emulator's calls, plus the ones the playground adds itself."""

    def __init__(self, emu: TelegramEmulator) -> None:
        self._emu = emu
        self._events: deque[Event] = deque(maxlen=KEEP_EVENTS)
        self._next_id = 1
        self._seen = 0  # emulator calls already turned into events
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._callback_chats: dict[str, int] = {}
        self.files: dict[str, FileInfo] = {}

    @property
    def last_id(self) -> int:
        """The id of the newest event (0: none yet)."""
        return self._next_id - 1

    def publish(self, data: JSON) -> Event:
        """Append an event and wake every listener."""
        event = Event(self._next_id, data)
        self._next_id += 1
        self._events.append(event)
        self._changed.set()
        self._changed = asyncio.Event()
        return event

    def since(self, after: int) -> list[Event] | None:
        """Events newer than `after`; None when some were already forgotten (reload)."""
        if self._events and after < self._events[0].id - 1:
            return None
        return [e for e in self._events if e.id > after]

    async def wait(self, after: int, timeout: float) -> None:  # noqa: ASYNC109 - a keep-alive tick
        """Return once there is an event newer than `after`, or after `timeout` seconds."""
        if self.last_id > after:
            return
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    def remember_callback(self, query_id: str, chat_id: int) -> None:
        """Note which chat a pressed button belongs to, to show the bot's answer there."""
        if len(self._callback_chats) >= KEEP_EVENTS:  # queries the bot never answered
            self._callback_chats.clear()
        self._callback_chats[query_id] = chat_id

    def start(self) -> None:
        """Follow the emulator's calls in the background."""
        self._task = asyncio.get_running_loop().create_task(self._pump(), name="playground-feed")

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _pump(self) -> None:
        emu = self._emu
        while True:
            with contextlib.suppress(WaitTimeoutError):
                await emu.wait_until(lambda: len(emu.calls) > self._seen, timeout=60.0)
            self.catch_up()

    def catch_up(self) -> None:
        """Turn the calls recorded since the last time into events."""
        calls = self._emu.calls
        for call in calls[self._seen :]:
            try:
                self._take(call)
            except (KeyError, TypeError, ValueError):  # a call we cannot show is not worth a crash
                log.warning("playground: could not show a %s call", call.method, exc_info=True)
        self._seen = len(calls)
        if len(calls) > KEEP_CALLS:
            del calls[: self._seen]
            self._seen = 0

    def _take(self, call: Call) -> None:
        if not call.ok:
            return
        method = call.method
        if method in ("sendMessage", "sendDocument"):
            message: JSON = call.result
            document = message.get("document")
            if document is not None:
                self.files[document["file_id"]] = FileInfo(
                    document.get("file_name", "document"),
                    document.get("mime_type", "application/octet-stream"),
                )
            self.publish({"type": "message", "message": message})
        elif method.startswith("editMessage") and isinstance(call.result, dict):
            self.publish({"type": "edit", "message": call.result})
        elif method == "deleteMessage":
            self.publish(
                {
                    "type": "delete",
                    "chat_id": int(call.params["chat_id"]),
                    "message_id": int(call.params["message_id"]),
                }
            )
        elif method == "sendChatAction":
            self.publish(
                {
                    "type": "action",
                    "chat_id": int(call.params["chat_id"]),
                    "thread_id": call.params.get("message_thread_id"),
                    "action": call.params["action"],
                }
            )
        elif method == "answerCallbackQuery":
            query_id = call.params["callback_query_id"]
            chat_id = self._callback_chats.pop(query_id, None)
            text = call.params.get("text") or ""
            if text and chat_id is not None:
                self.publish(
                    {
                        "type": "toast",
                        "chat_id": chat_id,
                        "text": text,
                        "show_alert": bool(call.params.get("show_alert")),
                    }
                )
        elif method in ("setMyCommands", "deleteMyCommands"):
            self.publish({"type": "commands", "commands": copy.deepcopy(self._emu.commands)})
