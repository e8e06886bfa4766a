"""Something done every N seconds of the monotonic clock (the watcher's poll, housekeeping).

Not the JobQueue: APScheduler schedules by wall time, so a wall-clock step back (an NTP
correction, a VM resumed from a snapshot) silently stopped the watcher. Here the schedule is
`clock.monotonic()`, which never goes back. One run at a time: a run asked for out of schedule
(`run_now`) waits for the one in progress and moves the next tick, so the two never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Generic, Self, TypeVar

from bot.clock import Clock
from bot.runtime.lifecycle import Lifecycle

log = logging.getLogger(__name__)

T = TypeVar("T")


class Periodic(Generic[T]):
    """Run `action` `first` seconds after entering, then every `interval` seconds."""

    def __init__(
        self,
        name: str,
        action: Callable[[], Awaitable[T]],
        *,
        clock: Clock,
        lifecycle: Lifecycle,
        interval: float,
        first: float,
    ) -> None:
        self.name = name
        self.interval = interval
        self._action = action
        self._clock = clock
        self._lifecycle = lifecycle
        self._first = first
        self._lock = asyncio.Lock()
        self._next = 0.0
        self._stopping = False
        self._acting = False  # the loop itself is running the action (not waiting)
        self._task: asyncio.Task[None] | None = None
        self.runs = 0

    @property
    def next_due(self) -> float:
        """The monotonic time of the next scheduled run."""
        return self._next

    async def __aenter__(self) -> Self:
        self._next = self._clock.monotonic() + self._first
        self._task = self._lifecycle.spawn(self._loop(), name=self.name)
        self._lifecycle.on_stop(self.stop_scheduling)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_scheduling()
        if self._task is not None:
            # A run in progress is tracked work: it finishes or is cut off by the lifecycle.
            await asyncio.wait({self._task})
            self._task = None

    def stop_scheduling(self) -> None:
        """Start no new run; a waiting loop ends now, a running one after its run."""
        self._stopping = True
        if self._task is not None and not self._acting:
            self._task.cancel()

    async def run_now(self) -> T:
        """Run once now, out of schedule (after a run in progress); the next tick moves on."""
        # Moved before waiting: a tick that fell due meanwhile is this run, not another one.
        self._next = self._clock.monotonic() + self.interval
        async with self._lock:
            return await self._run()

    async def _run(self) -> T:
        started = self._clock.monotonic()
        self._next = started + self.interval
        try:
            with self._lifecycle.inflight.tracking():
                return await self._action()
        finally:
            self.runs += 1
            now = self._clock.monotonic()
            while self._next <= now:  # a run longer than the interval: skip, don't catch up
                self._next += self.interval

    async def _loop(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            while not self._stopping:
                await self._clock.sleep_until(self._next)
                async with self._lock:
                    if self._stopping:
                        return
                    if self._clock.monotonic() < self._next:
                        continue  # a run_now() moved the schedule while we waited
                    self._acting = True
                    try:
                        await self._run()
                    except asyncio.CancelledError:
                        raise
                    except Exception:  # one failed run never ends the schedule
                        log.exception("%s failed", self.name, extra={"event": "periodic_failed"})
                    finally:
                        self._acting = False
