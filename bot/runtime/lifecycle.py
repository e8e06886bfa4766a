"""One owner for stopping: the stop signals, the work in flight and a single deadline.

The operator's contract is an exit 0 within 10 s of SIGTERM (or SIGINT), whatever the bot is
doing. From the stop request on, no new work starts (no poll, no delivery pass); work already
in flight (a handler such as a `/get` upload, a poll, a delivery pass) may finish until the
deadline minus what closing needs, then it is cancelled (an alert cut off that way was never
marked delivered, so it goes out after the restart); the resources close in the time left.
A signal during start-up cancels the start-up at once: nothing there is worth finishing.

Real time on purpose, never the injected clock: this bounds what the operator waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from telegram.ext import SimpleUpdateProcessor

from bot.aio import wait_first

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class StopTimes:
    """The one stop deadline and how it is shared out (seconds from the stop request)."""

    deadline: float = 10.0  # the process is gone by then, whatever happens
    closing: float = 2.5  # kept for closing resources: work in flight stops at deadline - this
    overrun: float = 1.0  # a stop still running this long before the deadline ends the process

    @property
    def work(self) -> float:
        """How long work in flight may run after the stop request."""
        return max(0.0, self.deadline - self.closing)


class Inflight:
    """The tasks doing work that a stop may have to cut short."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    @contextlib.contextmanager
    def tracking(self) -> Iterator[None]:
        """Track the current task for the duration of the block (cancelled once cut off)."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        if self._closed:
            task.cancel()  # work that starts after the cut-off (e.g. a queued update) ends now
        self._tasks.add(task)
        try:
            yield
        finally:
            self._tasks.discard(task)

    def cancel_all(self) -> int:
        """Cancel every tracked task, and any that starts later; return how many there were."""
        self._closed = True
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


class Lifecycle:
    """Signals, work in flight, background tasks and the stop deadline of one application."""

    def __init__(self, times: StopTimes | None = None) -> None:
        self.times = times or StopTimes()
        self.inflight = Inflight()
        self._stop_at: float | None = None  # loop time of the deadline, once a stop was asked
        self._stop_requested: asyncio.Event | None = None
        self._on_stop: list[Callable[[], None]] = []
        self._cut_off: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- asking for a stop ------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Whether a stop was asked for."""
        return self._stop_at is not None

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call `callback` (once, synchronously) when a stop is asked for: stop taking work."""
        if self.stopping:
            callback()
        else:
            self._on_stop.append(callback)

    def request_stop(self, reason: str = "stop requested") -> None:
        """Start the stop: the deadline runs from now; no new work; cut-off at the work limit."""
        if self._stop_at is not None:
            return
        loop = asyncio.get_running_loop()
        self._stop_at = loop.time() + self.times.deadline
        log.info(
            "stopping (%s): finishing work in flight for at most %.1f s",
            reason,
            self.times.work,
            extra={"event": "stopping"},
        )
        self._cut_off = loop.call_at(self._stop_at - self.times.closing, self._cut_off_work)
        self._event().set()
        callbacks, self._on_stop = self._on_stop, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one component failing to stop must not keep the others going
                log.exception("a stop callback failed")

    def remaining(self) -> float:
        """Seconds until the deadline (the whole budget while no stop was asked for)."""
        if self._stop_at is None:
            return self.times.deadline
        return max(0.0, self._stop_at - asyncio.get_running_loop().time())

    def work_remaining(self) -> float:
        """Seconds work in flight may still run before it is cut off."""
        return max(0.0, self.remaining() - self.times.closing)

    async def wait_for_stop(self, also: asyncio.Event | None = None) -> None:
        """Return once a stop is asked for (or `also` is set, which then asks for one)."""
        requested = self._event()
        if also is None:
            await requested.wait()
            return
        await wait_first(requested.wait(), also.wait())
        self.request_stop("stop event")

    def stopped(self) -> None:
        """The stop completed: forget the pending cut-off."""
        if self._cut_off is not None:
            self._cut_off.cancel()
            self._cut_off = None

    def _event(self) -> asyncio.Event:
        if self._stop_requested is None:
            self._stop_requested = asyncio.Event()
        return self._stop_requested

    def _cut_off_work(self) -> None:
        self._cut_off = None
        cancelled = self.inflight.cancel_all()
        if cancelled:
            log.warning(
                "stop: cancelled %d tasks still running after %.1f s",
                cancelled,
                self.times.work,
                extra={"event": "stop_cut_off"},
            )

    # ---- running things under the deadline ---------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run a background activity for the application's life (kept referenced here).

        Not `Application.create_task`: these start before PTB's application does and end in
        our own stop sequence, after PTB's.
        """
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start_up(self, starting: Coroutine[Any, Any, None]) -> bool:
        """Run the start-up; a stop asked for meanwhile cancels it. Return whether it finished."""
        task = asyncio.ensure_future(starting)
        requested = asyncio.ensure_future(self._event().wait())
        try:
            await asyncio.wait({task, requested}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            requested.cancel()
            if not task.done():
                # Unwinding a cancelled start-up closes what it opened, within the deadline.
                task.cancel()
                await asyncio.wait({task}, timeout=self.remaining())
        if not task.done() or task.cancelled():
            return False
        error = task.exception()
        if error is not None and self.stopping:
            # Failing while being cut short is still a stop: exit 0, as the signal asked.
            log.warning("the start-up failed while stopping (%s)", type(error).__name__)
            return False
        task.result()  # a start-up error (bad token, Telegram unreachable) propagates
        return not self.stopping

    async def bounded(self, aw: Awaitable[Any], *, within: float, what: str) -> bool:
        """Wait for `aw` at most `within` s (never past the deadline), then cancel it.

        Return whether it finished in time; errors are logged, not raised.
        """
        task = asyncio.ensure_future(aw)
        limit = min(within, self.remaining())
        done, _ = await asyncio.wait({task}, timeout=limit)
        if done:
            if not task.cancelled() and task.exception() is not None:
                log.error("stop: %s failed", what, exc_info=task.exception())
            return True
        task.cancel()
        log.warning(
            "stop: %s took longer than %.1f s and was cancelled",
            what,
            limit,
            extra={"event": "stop_step_cancelled"},
        )
        await asyncio.wait({task}, timeout=self.remaining())
        return False

    # ---- signals ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def handling_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT ask for a stop while the block runs; the process ends by the deadline.

        A stop that a signal started and that overruns ends the process at the deadline. The
        previous handlers come back afterwards.
        """
        loop = asyncio.get_running_loop()
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, signal.Signals(sig).name)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                loop.remove_signal_handler(sig)
                signal.signal(sig, handler)

    def _on_signal(self, name: str) -> None:
        if self.stopping:
            log.info(
                "%s: already stopping, %.1f s left",
                name,
                self.remaining(),
                extra={"event": "stopping"},
            )
            return
        self.request_stop(name)
        # A signal means the process is to end: if the stop overruns (a hung thread, a DNS
        # lookup that never returns), end it rather than break the contract.
        _arm_watchdog(self.times.deadline - self.times.overrun)


def _arm_watchdog(after: float) -> None:
    """End the process `after` seconds from now if it is still running (exit code 0)."""

    def overrun() -> None:
        log.error("stop overran its deadline; exiting now", extra={"event": "stop_overrun"})
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(after, overrun)
    timer.daemon = True  # never what keeps the process alive
    timer.start()
