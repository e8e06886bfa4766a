"""Where Telegram refuses or fails: injected failures, blocked users, migrated groups, floods."""

from __future__ import annotations

import asyncio
import math
from collections import deque

from .failures import ApiFailure, FailureRule
from .records import JSONDict
from .spec import ApiError
from .state import EmulatorState

__all__ = ["FaultsMixin"]


class FaultsMixin(EmulatorState):
    """`fail`, `block`, `migrate_chat`'s effect and `enforce_flood_limits`, checked per request."""

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
        self._failures.append(FailureRule(method.lower(), failure, count, chat_id))

    def release_held(self) -> None:
        """Answer every request held by `ApiFailure.timeout()` now, with a 503."""
        self._release.set()
        self._release = asyncio.Event()

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
