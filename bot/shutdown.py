"""A bounded graceful stop: SIGTERM finishes the work in flight, but never for long.

PTB's `Application.stop()` waits for every running handler and job, and a `/get` in the middle
of a 50 MB upload, or a poll waiting on SMSC, could hold that for minutes. The operator's
contract is an exit within 10 s: work still running `grace` seconds after the signal is
cancelled. An alert cut off that way was never marked delivered, so it goes out after restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from telegram.ext import SimpleUpdateProcessor

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Inflight:
    """The tasks doing work that a stop may have to cut short."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    @contextlib.contextmanager
    def tracking(self) -> Iterator[None]:
        """Track the current task for the duration of the block."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)

    def cancel_all(self) -> int:
        """Cancel every tracked task; return how many there were."""
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        return len(tasks)


class TrackedUpdateProcessor(SimpleUpdateProcessor):
    """Concurrent update handling, with every handler run tracked for a bounded stop."""

    def __init__(self, max_concurrent_updates: int, inflight: Inflight) -> None:
        super().__init__(max_concurrent_updates)
        self._inflight = inflight

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the handlers for one update as tracked work."""
        with self._inflight.tracking():
            await coroutine


class GracefulStop:
    """On the first stop signal: stop taking work, let it finish, cut it off after `grace`."""

    def __init__(
        self,
        inflight: Inflight,
        grace: float,
        on_cancel: Callable[[], None] = lambda: None,
    ) -> None:
        self._inflight = inflight
        self._grace = grace
        self._on_cancel = on_cancel
        self._timer: asyncio.Task[None] | None = None

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return self._timer is not None

    def request(self, then: Callable[[], None]) -> None:
        """Start the grace period and call `then` (which makes the app stop)."""
        if self._timer is None:
            log.info(
                "stopping: finishing work in flight for at most %.0f s",
                self._grace,
                extra={"event": "stopping"},
            )
            self._timer = asyncio.get_running_loop().create_task(self._cut_off())
        then()

    async def _cut_off(self) -> None:
        # Real time on purpose: this bounds what the operator waits for.
        await asyncio.sleep(self._grace)
        cancelled = self._inflight.cancel_all()
        self._on_cancel()
        if cancelled:
            log.warning(
                "stop: cancelled %d tasks still running after %.0f s",
                cancelled,
                self._grace,
                extra={"event": "stop_cut_off"},
            )

    async def close(self) -> None:
        """Forget the timer (the stop completed)."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer

    def install(self, then: Callable[[], None]) -> None:
        """Handle SIGTERM and SIGINT on the running loop."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self.request, then)

    @staticmethod
    def uninstall() -> None:
        """Stop handling the signals (back to the defaults)."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
