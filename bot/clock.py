"""Time as a dependency: the real clock in production, a controllable one in tests.

Everything that waits for a window (SMSC's 60 s identical-request rule, backoffs, cache TTLs,
retry schedules) asks a `Clock`, so tests move time forward instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the code needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware (UTC)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Wait until `monotonic()` reaches `deadline`: a background timer's wait."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """Return `time.monotonic()`."""
        return time.monotonic()

    def now(self) -> datetime:
        """Return the current UTC time."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until `time.monotonic()` reaches `deadline`."""
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))


class FakeClock:
    """A clock that moves only when told to, for tests.

    `sleep()` parks the caller until `advance()` moves time past its deadline; with
    `autoadvance=True` a sleep instead jumps time forward by itself, which suits tests that only
    want "after the backoff" without choreographing it. `sleep_until()` always parks, even with
    `autoadvance`: a background timer (the watcher's schedule) waits for the test to move time,
    it never drives time itself. `step_wall()` moves only the wall clock, like an NTP correction.
    """

    def __init__(
        self,
        start: datetime | None = None,
        *,
        autoadvance: bool = False,
    ) -> None:
        self._mono = 1_000.0
        self._wall = start or datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
        self.autoadvance = autoadvance
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._timers: set[asyncio.Future[None]] = set()  # parked by sleep_until
        self._seq = itertools.count()

    def monotonic(self) -> float:
        """Return the fake monotonic time."""
        return self._mono

    def now(self) -> datetime:
        """Return the fake wall time."""
        return self._wall

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock is advanced past now + seconds (or jump there on autoadvance)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        if self.autoadvance:
            self.advance(seconds)
            await asyncio.sleep(0)
            return
        await self._park(self._mono + seconds)

    async def sleep_until(self, deadline: float) -> None:
        """Wait until `advance()` moves the monotonic time to `deadline` (never auto-advances)."""
        if deadline <= self._mono:
            await asyncio.sleep(0)
            return
        fut = self._park(deadline)
        self._timers.add(fut)
        try:
            await fut
        finally:
            self._timers.discard(fut)

    def _park(self, deadline: float) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        return fut

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)
        while self._sleepers and self._sleepers[0][0] <= self._mono:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock alone, back (negative) or forward: monotonic time does not move."""
        self._wall += timedelta(seconds=seconds)

    @property
    def sleepers(self) -> int:
        """How many callers are parked in `sleep()` (a request a test made wait, say)."""
        return sum(1 for _, _, f in self._sleepers if not f.done() and f not in self._timers)

    @property
    def timers(self) -> int:
        """How many background timers are parked in `sleep_until()` (not in `sleepers`)."""
        return sum(1 for f in self._timers if not f.done())
