"""The simulator's world: tasks, their lifecycle, injected faults and the requests received.

SMSC's request rules (errors 2, 4 and 9) live in `rules`, the plain records in `records`; both
are re-exported here. Everything runs on the injected `Clock`, so a test with `FakeClock` moves
through the 60 s identical-request window or the 30 min IP block by calling `clock.advance()`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import get_args

from bot.clock import Clock
from bot.smsc.models import SMSC_TIME_FORMAT, SMSC_TZ, TaskStatus
from bot.smsc.simulator.csvgen import iter_csv
from bot.smsc.simulator.records import (
    FailedLogin,
    Fault,
    FaultKind,
    Order,
    RequestRecord,
    SimTask,
    StatusAs,
    coerce_status,
)
from bot.smsc.simulator.rules import (
    CONCURRENT_LIMIT,
    FAILED_LOGIN_LIMIT,
    FAILED_LOGIN_WINDOW,
    IDENTICAL_LIMIT,
    IDENTICAL_WINDOW,
    IP_BLOCK_SECONDS,
    Identity,
    RequestRules,
)

__all__ = [
    "CONCURRENT_LIMIT",
    "FAILED_LOGIN_LIMIT",
    "FAILED_LOGIN_WINDOW",
    "IDENTICAL_LIMIT",
    "IDENTICAL_WINDOW",
    "IP_BLOCK_SECONDS",
    "FailedLogin",
    "Fault",
    "FaultKind",
    "Identity",
    "Order",
    "RequestRecord",
    "RequestRules",
    "SimTask",
    "SimulatorState",
    "StatusAs",
    "coerce_status",
]


@dataclass
class _Repeater:
    every: float
    next_at: float
    action: Callable[[SimulatorState, float], None]


class SimulatorState(RequestRules):
    """Tasks, scripted transitions, queued faults and request records, on top of SMSC's rules."""

    def __init__(
        self,
        clock: Clock,
        *,
        login: str = "demo",
        password: str = "demo",  # noqa: S107 - the simulator's documented demo account
        apikey: str | None = None,
        order: Order = "newest",
        status_as: StatusAs = "number",
    ) -> None:
        if order not in get_args(Order):
            raise ValueError(f"order must be one of {get_args(Order)}")
        if status_as not in get_args(StatusAs):
            raise ValueError(f"status_as must be one of {get_args(StatusAs)}")
        super().__init__(clock, login=login, password=password, apikey=apikey)
        self.order: Order = order
        self.status_as: StatusAs = status_as
        self.tasks: dict[int, SimTask] = {}
        self.requests: list[RequestRecord] = []
        # None keeps every record (tests read them all); the long-running CLI demo sets a cap.
        self.keep_requests: int | None = None
        self._forgotten = 0  # records dropped from the front of `requests`
        self._seq = itertools.count()
        self._scheduled: list[tuple[float, int, int, TaskStatus | int]] = []
        self._repeaters: list[_Repeater] = []
        self._faults: deque[Fault] = deque()
        self._parked: set[asyncio.Future[None]] = set()
        # Hostile list items (JSON text), served as they are: see add_raw_item.
        self.raw_items: list[str] = []

    # --- tasks and their lifecycle -------------------------------------------------------------

    def add_task(self, task: SimTask) -> SimTask:
        """Store `task`, filling `created` (and `time` if it starts RUNNING) from the clock."""
        if task.id in self.tasks:
            raise ValueError(f"task {task.id} already exists")
        if not task.created:
            task.created = self.wall_text()
        if task.status == TaskStatus.RUNNING and not task.time:
            task.time = self.wall_text()
        self.tasks[task.id] = task
        return task

    def add_raw_item(self, item: object) -> None:
        """Serve `item` verbatim in fmt=3 lists (a huge id, a lone surrogate, a null status...).

        Raw items go on the first page (no after_id), in front of the tasks and outside `cnt`:
        a hook to test how the bot copes with data SMSC should never send, not a model of
        SMSC's paging. JSON-encoded with ASCII escapes, so a lone surrogate arrives as the
        valid JSON ``"\\ud800"``.
        """
        self.raw_items.append(json.dumps(item, ensure_ascii=True))

    def add_raw_json(self, text: str) -> None:
        """Like add_raw_item, for JSON that Python will not write (e.g. a 5,000-digit id)."""
        self.raw_items.append(text)

    def set_status(self, task_id: int, status: TaskStatus | int) -> None:
        """Move a task to `status` now."""
        self._enter(self.tasks[task_id], status, self.clock.monotonic())

    def schedule(self, after_seconds: float, task_id: int, status: TaskStatus | int) -> None:
        """Move a task to `status` once `clock.monotonic()` has advanced `after_seconds`.

        Due transitions apply at the start of every request and on `tick()`; a negative delay
        is allowed and means "already due" (used for lazily created demo tasks).
        """
        if task_id not in self.tasks:
            raise KeyError(task_id)
        due = self.clock.monotonic() + after_seconds
        heapq.heappush(self._scheduled, (due, next(self._seq), task_id, status))

    def repeat(
        self,
        every_seconds: float,
        action: Callable[[SimulatorState, float], None],
        *,
        first_after: float | None = None,
    ) -> None:
        """Call `action(state, due)` once per `every_seconds` of clock time, caught up on tick()."""
        if every_seconds <= 0:
            raise ValueError("every_seconds must be positive")
        start = self.clock.monotonic() + (every_seconds if first_after is None else first_after)
        self._repeaters.append(_Repeater(every_seconds, start, action))

    def tick(self) -> None:
        """Apply every repeater and scheduled transition that is due by now."""
        now = self.clock.monotonic()
        for rep in self._repeaters:
            while rep.next_at <= now:
                due = rep.next_at
                rep.next_at += rep.every
                rep.action(self, due)
        while self._scheduled and self._scheduled[0][0] <= now:
            due, _, task_id, status = heapq.heappop(self._scheduled)
            task = self.tasks.get(task_id)
            if task is not None:
                self._enter(task, status, due)

    def next_id(self) -> int:
        """Return an id above every existing task's."""
        return max(self.tasks, default=0) + 1

    def wall_text(self, at: float | None = None) -> str:
        """Return SMSC's text for the wall time at monotonic instant `at` (default: now)."""
        wall = self.clock.now()
        if at is not None:
            # Transitions applied late (on the next request) still get the time they were due.
            wall -= timedelta(seconds=self.clock.monotonic() - at)
        return wall.astimezone(SMSC_TZ).strftime(SMSC_TIME_FORMAT)

    def _enter(self, task: SimTask, status: TaskStatus | int, at: float) -> None:
        task.status = coerce_status(status)
        if task.status == TaskStatus.RUNNING and not task.time:
            task.time = self.wall_text(at)

    def file_bytes(self, task_id: int) -> bytes:
        """Return the exact bytes get_file serves for the task (build in memory: small files)."""
        return b"".join(iter_csv(self.tasks[task_id]))

    # --- faults --------------------------------------------------------------------------------

    def inject(self, fault: Fault, *, count: int = 1) -> None:
        """Give the next `count` requests this fault (after any already queued)."""
        self._faults.extend([fault] * count)

    def clear_faults(self) -> None:
        """Drop every injected fault not used yet (SMSC behaves again)."""
        self._faults.clear()

    def take_fault(self) -> Fault | None:
        """Pop the fault for the request being handled, if one is queued."""
        return self._faults.popleft() if self._faults else None

    @property
    def pending_faults(self) -> int:
        """How many injected faults have not been used yet."""
        return len(self._faults)

    # --- request bookkeeping -------------------------------------------------------------------

    def record_arrival(
        self, method: str, query: dict[str, str], form: dict[str, str], params: dict[str, str]
    ) -> int:
        """Append a record for a request just received and return its index."""
        rec = RequestRecord(method, query, form, params, self.clock.monotonic(), None)
        if self.keep_requests is not None and len(self.requests) >= self.keep_requests:
            drop = max(1, len(self.requests) // 2)
            del self.requests[:drop]
            self._forgotten += drop
        self.requests.append(rec)
        return self._forgotten + len(self.requests) - 1

    def record_answer(self, index: int, error: int | None) -> None:
        """Note which SMSC error code the request at `index` was answered with."""
        position = index - self._forgotten
        if position >= 0:  # else the record was already dropped under `keep_requests`
            self.requests[position] = replace(self.requests[position], response_error=error)

    def upstream_count(self, **params: str | int) -> int:
        """Count recorded requests whose params include all these items (values compared as str)."""
        want = {k: str(v) for k, v in params.items()}
        return sum(
            1 for rec in self.requests if all(rec.params.get(k) == v for k, v in want.items())
        )

    # --- slow requests -------------------------------------------------------------------------

    def park(self, fut: asyncio.Future[None]) -> None:
        """Track a "slow" request's sleep so shutdown can release it."""
        self._parked.add(fut)
        fut.add_done_callback(self._parked.discard)

    def release_parked(self) -> None:
        """Wake every request parked by a "slow" fault (it then answers normally)."""
        for fut in list(self._parked):
            fut.cancel()
