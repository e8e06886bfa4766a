"""The update queue as getUpdates serves it: offsets, allowed_updates, long polls and their 409s."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from typing import Any

from .records import JSONDict
from .spec import ApiError, UploadedFile
from .state import EmulatorState

__all__ = ["UpdatesMixin"]

_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)
_WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)


class UpdatesMixin(EmulatorState):
    """Pending updates until confirmed by an offset; one long poll at a time, as on Telegram."""

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed (getUpdates offset) or delivered to the webhook."""
        return list(self._updates)

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
