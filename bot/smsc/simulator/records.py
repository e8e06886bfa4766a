"""The simulator's records: a stored task, an injected fault, a received request, a failed login.

Plain data with no clock or state of their own; `SimulatorState` keeps them.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Literal, get_args

from bot.smsc.models import TaskStatus

FaultKind = Literal["http_500", "slow", "garbage", "error", "disconnect", "html"]
Order = Literal["newest", "oldest"]
StatusAs = Literal["number", "string"]


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
