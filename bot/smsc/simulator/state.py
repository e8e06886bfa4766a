"""The simulator's world: tasks, their lifecycle, injected faults and SMSC's request rules.

Everything here runs on the injected `Clock`, so a test with `FakeClock` moves through the 60 s
identical-request window or the 30 min IP block by calling `clock.advance()`.
"""

from __future__ import annotations

import asyncio
import codecs
import heapq
import itertools
import json
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal, get_args

from bot.clock import Clock
from bot.smsc.models import SMSC_TIME_FORMAT, SMSC_TZ, TaskStatus
from bot.smsc.simulator.csvgen import iter_csv

FaultKind = Literal["http_500", "slow", "garbage", "error", "disconnect", "html"]
Order = Literal["newest", "oldest"]
StatusAs = Literal["number", "string"]

# The limits the SMSC API page states (and the IP block SMSC applies to password guessing).
IDENTICAL_LIMIT = 3  # identical requests allowed per window; the next one gets error 9
IDENTICAL_WINDOW = 60.0
CONCURRENT_LIMIT = 15  # a request arriving with this many already in flight gets error 9
FAILED_LOGIN_LIMIT = 5
FAILED_LOGIN_WINDOW = 30 * 60.0
IP_BLOCK_SECONDS = 30 * 60.0


def coerce_status(status: TaskStatus | int) -> TaskStatus | int:
    """Return `status` as a TaskStatus if SMSC defines it, else the bare int (to test unknowns)."""
    try:
        return TaskStatus(int(status))
    except ValueError:
        return int(status)


@dataclass
class SimTask:
    """One deferred task as the simulator stores it; the text fields are printed verbatim."""

    id: int
    name: str
    status: TaskStatus | int = TaskStatus.PENDING
    created: str = ""  # "" -> filled from the clock by SimulatorState.add_task
    time: str = ""  # start time; "" -> filled when the task enters RUNNING
    file: str = ""  # "" -> f"task_{id}.csv"
    rows: int = 100
    size_bytes: int | None = None  # generate rows until at least this many bytes; beats `rows`
    encoding: str = "utf-8"  # "utf-8" or "cp1251" (any Python codec works)
    content: bytes | None = None  # exact file bytes, overrides generation

    def __post_init__(self) -> None:
        self.status = coerce_status(self.status)
        codecs.lookup(self.encoding)  # a typo fails here, not halfway through a download
        if not self.file:
            self.file = f"task_{self.id}.csv"


@dataclass(frozen=True)
class Fault:
    """A misbehaviour for the next request(s), queued with `SimulatorState.inject`.

    - ``http_500``: HTTP 500 with an HTML error page.
    - ``slow``: await ``clock.sleep(seconds)``, then answer normally. With `FakeClock` the request
      parks until the test calls ``clock.advance(seconds)`` (``clock.sleepers`` tells when it has
      arrived), so a client-side timeout can fire first; if the client gives up and disconnects,
      the simulator notices within ~20 ms and drops the request, and app shutdown releases any
      still parked. With `SystemClock` it is a plain real delay. In a test::

          state.inject(Fault("slow", seconds=30))
          call = asyncio.create_task(client.list_tasks())
          while clock.sleepers == 0:  # wait until the request has arrived and parked
              await asyncio.sleep(0.01)
          clock.advance(30)  # it answers now; or let the client's own timeout fire first
          await call
    - ``garbage``: HTTP 200 with a body that is none of the four formats.
    - ``error``: SMSC error ``code``, in the request's ``fmt`` or in ``fmt`` when given (0..3).
    - ``disconnect``: close the connection without answering. Note that aiohttp's client retries
      an idempotent request (GET) once after a server disconnect, so a GET needs ``count=2`` for
      the caller to see it; POST is not retried.
    - ``html``: HTTP 200 ``text/html`` login page, like SMSC's site when a proxy or the web UI
      answers instead of the API.
    """

    kind: FaultKind
    seconds: float = 0.0
    code: int = 0
    fmt: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(FaultKind):
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.fmt is not None and self.fmt not in (0, 1, 2, 3):
            raise ValueError("fmt must be 0..3")


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator received and what SMSC error, if any, it answered."""

    method: str
    query: dict[str, str]
    form: dict[str, str]
    params: dict[str, str]
    at: float  # clock.monotonic() on arrival
    response_error: int | None


@dataclass(frozen=True)
class FailedLogin:
    """A request whose credentials did not match."""

    ip: str
    login: str
    at: float


Identity = tuple[tuple[str, str], ...]


@dataclass
class _Repeater:
    every: float
    next_at: float
    action: Callable[[SimulatorState, float], None]


class SimulatorState:
    """Tasks, scripted transitions, queued faults and the bookkeeping behind errors 2, 4 and 9."""

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
        self.clock = clock
        self.login = login
        self.password = password
        self.apikey = apikey
        self.order: Order = order
        self.status_as: StatusAs = status_as
        self.tasks: dict[int, SimTask] = {}
        self.requests: list[RequestRecord] = []
        # None keeps every record (tests read them all); the long-running CLI demo sets a cap.
        self.keep_requests: int | None = None
        self._forgotten = 0  # records dropped from the front of `requests`
        self.failed_logins: list[FailedLogin] = []
        self.blocked_until: dict[str, float] = {}  # ip -> monotonic time the block ends
        self.max_concurrent_seen = 0
        self._seq = itertools.count()
        self._scheduled: list[tuple[float, int, int, TaskStatus | int]] = []
        self._repeaters: list[_Repeater] = []
        self._faults: deque[Fault] = deque()
        self._identical: dict[Identity, deque[float]] = {}
        self._in_flight: Counter[str] = Counter()
        self._in_flight_total = 0
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

    def enter_flight(self, account: str) -> int:
        """Count a request as in flight for `account`; return how many were already in flight."""
        already = self._in_flight[account]
        self._in_flight[account] += 1
        self._in_flight_total += 1
        self.max_concurrent_seen = max(self.max_concurrent_seen, self._in_flight_total)
        return already

    def leave_flight(self, account: str) -> None:
        """Stop counting a finished request."""
        self._in_flight[account] -= 1
        if self._in_flight[account] <= 0:
            del self._in_flight[account]
        self._in_flight_total -= 1

    @property
    def in_flight(self) -> int:
        """How many requests are being handled right now."""
        return self._in_flight_total

    # --- SMSC rules ----------------------------------------------------------------------------

    def is_blocked(self, ip: str) -> bool:
        """Return True while `ip` is inside its 30-minute block (error 4)."""
        until = self.blocked_until.get(ip)
        if until is None:
            return False
        if self.clock.monotonic() < until:
            return True
        del self.blocked_until[ip]
        return False

    def authenticate(self, params: Mapping[str, str], ip: str) -> bool:
        """Check login+psw or apikey; a mismatch is a strike, and 5 in 30 min block the IP.

        A request with no credentials at all fails without a strike: it is not a login attempt.
        """
        apikey = params.get("apikey", "")
        login = params.get("login", "")
        if apikey:
            ok = self.apikey is not None and apikey == self.apikey
        elif login or params.get("psw"):
            ok = login == self.login and params.get("psw", "") == self.password
        else:
            return False
        if not ok:
            now = self.clock.monotonic()
            # Only the last 30 minutes matter for the rule; older failures are forgotten.
            self.failed_logins = [f for f in self.failed_logins if now - f.at < FAILED_LOGIN_WINDOW]
            self.failed_logins.append(FailedLogin(ip, login, now))
            recent = sum(
                1 for f in self.failed_logins if f.ip == ip and now - f.at < FAILED_LOGIN_WINDOW
            )
            # A block lasts as long as the strike window, so strikes that caused one have aged
            # out by the time it ends and never count twice.
            if recent >= FAILED_LOGIN_LIMIT:
                self.blocked_until[ip] = now + IP_BLOCK_SECONDS
        return ok

    @staticmethod
    def identity(params: Mapping[str, str]) -> Identity:
        """Return the key of SMSC's "identical request" rule: all params, sorted by name.

        Every parameter counts (login, psw/apikey, get_list/get_file, cnt, after_id, id, name,
        fmt, charset, ...), whether it came in the query string or the body, and whatever the
        HTTP method: change any value and it is a different request.
        """
        return tuple(sorted(params.items()))

    def admit_identical(self, params: Mapping[str, str]) -> bool:
        """Admit a request unless 3 identical ones were admitted in the last 60 s (error 9).

        Only admitted requests fill the window, so a client that keeps retrying is let in again
        60 s after its earlier requests, not 60 s after its last rejected one.
        """
        now = self.clock.monotonic()
        key = self.identity(params)
        times = self._identical.setdefault(key, deque())
        while times and now - times[0] >= IDENTICAL_WINDOW:
            times.popleft()
        if len(times) >= IDENTICAL_LIMIT:
            return False
        times.append(now)
        if len(self._identical) > 4096:
            self._forget_old_identities(now)
        return True

    def _forget_old_identities(self, now: float) -> None:
        # Keep memory flat under benchmarks that send many distinct requests.
        for key in [k for k, t in self._identical.items() if not t or now - t[-1] >= 60.0]:
            del self._identical[key]

    # --- slow requests -------------------------------------------------------------------------

    def park(self, fut: asyncio.Future[None]) -> None:
        """Track a "slow" request's sleep so shutdown can release it."""
        self._parked.add(fut)
        fut.add_done_callback(self._parked.discard)

    def release_parked(self) -> None:
        """Wake every request parked by a "slow" fault (it then answers normally)."""
        for fut in list(self._parked):
            fut.cancel()
