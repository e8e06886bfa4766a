"""What the bot did, for assertions: the recorded calls and the waits for more of them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from .records import Call
from .state import EmulatorState

__all__ = ["CallsMixin", "WaitTimeoutError"]


class WaitTimeoutError(AssertionError):
    """`wait_for` gave up: the awaited calls did not happen in time."""


class CallsMixin(EmulatorState):
    """`calls_to` and the `wait_*` helpers, woken by `_notify` rather than polling."""

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._notify()

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
        wanted = method.lower()
        matching: list[Call] = []

        def enough() -> bool:
            nonlocal matching
            matching = [c for c in self.calls if _matches(c, wanted, chat_id, ok, predicate)]
            return len(matching) >= count

        def failure() -> str:
            recent = ", ".join(f"{c.method}:{c.status}" for c in self.calls[-10:])
            return (
                f"waited {timeout}s for {count} call(s) to {method}, saw {len(matching)}; "
                f"last calls: [{recent}]"
            )

        await self._wait(enough, timeout, failure)
        return matching

    async def wait_for_deliveries(
        self,
        count: int = 1,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a safety net, like wait_for
    ) -> None:
        """Wait until `count` webhook POSTs were attempted."""
        await self._wait(
            lambda: len(self.webhook_deliveries) >= count,
            timeout,
            lambda: (
                f"waited {timeout}s for {count} webhook deliveries, "
                f"saw {len(self.webhook_deliveries)}"
            ),
        )

    async def wait_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - a safety net, like wait_for
    ) -> None:
        """Wait until `condition()` holds, re-checked whenever the emulator's state changes."""
        await self._wait(condition, timeout, lambda: f"condition still false after {timeout}s")

    async def _wait(
        self, condition: Callable[[], bool], seconds: float, failure: Callable[[], str]
    ) -> None:
        """Re-check `condition` on every state change; WaitTimeoutError(failure()) when late."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise WaitTimeoutError(failure())
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)


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
