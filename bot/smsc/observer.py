"""The one channel the SMSC client's figures leave through: an observer of its events.

The gate reports every upstream request (`on_request`) and every local decision (`on_event`),
each exactly once, to every observer: `SmscStats` (for /status and /readyz) and the Prometheus
metrics are both plain observers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from bot.smsc.errors import (
    SmscApiError,
    SmscBadResponseError,
    SmscError,
    SmscHttpError,
    SmscTimeoutError,
)

log = logging.getLogger(__name__)

Kind = Literal["list", "file"]
# sent: a request went upstream; cache_hit: a list answered from the short cache; stale_hit: an
# expired list answered because SMSC said wait; coalesced: a call joined an identical one in
# flight; wait: a call waited on the clock for a slot; throttled: refused locally, nothing sent;
# budget_unavailable: sent on the in-process limits alone (the durable budget's store was down).
SmscEvent = Literal[
    "sent", "cache_hit", "stale_hit", "coalesced", "wait", "throttled", "budget_unavailable"
]


@dataclass(frozen=True, slots=True)
class SmscRequest:
    """How one upstream request ended.

    `outcome` is "ok", "api_error", "http_error", "timeout", "connection_error" or
    "bad_response"; `code` the SMSC error number or HTTP status.
    """

    kind: Kind
    outcome: str
    code: int | None
    seconds: float
    at: datetime
    error: SmscError | None = None


class SmscObserver(Protocol):
    """Hears each of the client's events once, e.g. to count them or feed Prometheus."""

    def on_request(self, request: SmscRequest) -> None:
        """Record one finished upstream request."""

    def on_event(self, event: SmscEvent) -> None:
        """Record one local decision (a cache hit, a coalesced call, a wait, ...)."""


@dataclass
class SmscStats:
    """Counters for /status and /readyz, kept as an observer of the client.

    `errors_by_code` keys are SMSC's error numbers as text ("2", "9"), or "http_<status>",
    "timeout", "connection", "bad_response" for transport failures.
    """

    upstream_requests: int = 0
    cache_hits: int = 0
    stale_hits: int = 0
    coalesced: int = 0
    waits: int = 0
    throttled: int = 0
    budget_unavailable: int = 0
    errors_by_code: dict[str, int] = field(default_factory=dict)
    last_success_at: datetime | None = None
    last_error: SmscError | None = None
    last_error_at: datetime | None = None

    def on_request(self, request: SmscRequest) -> None:
        """Remember the last success or error, and count errors by code."""
        if request.error is None:
            self.last_success_at = request.at
            return
        label = error_label(request.error)
        self.errors_by_code[label] = self.errors_by_code.get(label, 0) + 1
        self.last_error = request.error
        self.last_error_at = request.at

    def on_event(self, event: SmscEvent) -> None:
        """Count one event."""
        name = _STATS_FIELD[event]
        setattr(self, name, getattr(self, name) + 1)


# The SmscStats counter of each event.
_STATS_FIELD: dict[SmscEvent, str] = {
    "sent": "upstream_requests",
    "cache_hit": "cache_hits",
    "stale_hit": "stale_hits",
    "coalesced": "coalesced",
    "wait": "waits",
    "throttled": "throttled",
    "budget_unavailable": "budget_unavailable",
}


class Observers:
    """Every observer of one client; one failing observer never breaks a request."""

    def __init__(self, *observers: SmscObserver) -> None:
        self._observers = list(observers)

    def add(self, observer: SmscObserver) -> None:
        """Tell `observer` about every later event too."""
        self._observers.append(observer)

    def on_request(self, request: SmscRequest) -> None:
        """Pass one finished request on to every observer."""
        self._tell(lambda observer: observer.on_request(request))

    def on_event(self, event: SmscEvent) -> None:
        """Pass one event on to every observer."""
        self._tell(lambda observer: observer.on_event(event))

    def _tell(self, call: Callable[[SmscObserver], None]) -> None:
        for observer in self._observers:
            try:
                call(observer)
            except Exception:
                log.exception("SMSC observer failed")


def classify(err: SmscError) -> tuple[str, int | None]:
    """Return (outcome, code) of a failed request."""
    if isinstance(err, SmscApiError):
        return "api_error", err.code
    if isinstance(err, SmscHttpError):
        return "http_error", err.status
    if isinstance(err, SmscTimeoutError):
        return "timeout", None
    if isinstance(err, SmscBadResponseError):
        return "bad_response", None
    return "connection_error", None


def error_label(err: SmscError) -> str:
    """The stats key of a failed request's error."""
    outcome, code = classify(err)
    if outcome == "api_error":
        return str(code)
    if outcome == "http_error":
        return f"http_{code}"
    return "connection" if outcome == "connection_error" else outcome
