"""How we stay polite to SMSC: request windows, backoffs, a short cache and request coalescing.

SMSC answers error 9 to a 4th identical request within a minute (or at 15 concurrent requests),
blocks the IP for 30 minutes after 5 failed logins in 30 minutes (error 4 afterwards), and a
blocked bot is useless for everyone. The rules here keep well inside those limits no matter how
many handlers and watchers call at once. Everything is plain logic over an injected `Clock` so it
is tested by moving time, not by sleeping.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Generic, Literal, NamedTuple, TypeVar

from bot.clock import Clock

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class RequestKey(NamedTuple):
    """What SMSC compares when it counts identical requests: the operation and its arguments."""

    op: Literal["get_list", "get_file"]
    first: str  # cnt for get_list, id for get_file ("" when absent)
    second: str  # after_id for get_list, name for get_file ("" when absent)

    @classmethod
    def for_list(cls, cnt: int | None, after_id: int | None) -> RequestKey:
        """Key a get_list request."""
        return cls("get_list", _opt(cnt), _opt(after_id))

    @classmethod
    def for_file(cls, task_id: int | None, name: str | None) -> RequestKey:
        """Key a get_file request."""
        return cls("get_file", _opt(task_id), name or "")

    def __str__(self) -> str:
        parts: list[str] = [self.op]
        if self.op == "get_list":
            parts += [f"cnt={self.first}"] if self.first else []
            parts += [f"after_id={self.second}"] if self.second else []
        else:
            parts += [f"id={self.first}"] if self.first else []
            # The name is untrusted text: quoted, so it cannot forge log lines.
            parts += [f"name={self.second!r}"] if self.second else []
        return " ".join(parts)


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)


# ip_blocked/auth/rate_limited: backing off after SMSC's errors 4, 2 and 9; window: our own
# identical-request budget; probe: another process is proving the login right now;
# unconfirmed: a login attempt's answer was lost in a crash, so it counts as a failed one.
ThrottleReason = Literal["ip_blocked", "auth", "rate_limited", "window", "probe", "unconfirmed"]


@dataclass(frozen=True, slots=True)
class Throttle:
    """Why a request may not go out now, and in how many seconds it may."""

    reason: ThrottleReason
    retry_after: float


class IdenticalWindow:
    """At most `limit` sends of one key in any rolling `window` seconds, as SMSC counts them.

    SMSC stamps a request when it arrives, which is some time after we send it (connecting,
    queueing) and before its answer ends. So a request counts from `start()` with no end while it
    is in flight, and its window is measured from `finish()`: an upper bound of its arrival.
    The window is also widened by `margin` for clock and network jitter.
    """

    def __init__(self, clock: Clock, *, limit: int, window: float, margin: float = 1.0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._clock = clock
        self._limit = limit
        self._span = window + margin
        self._sent: dict[Hashable, list[float]] = {}  # finish times; inf while in flight

    def wait_time(self, key: Hashable) -> float:
        """Seconds until `key` may be sent again (0 when it may be sent now)."""
        sent = sorted(self._prune(key))
        if len(sent) < self._limit:
            return 0.0
        frees_at = sent[len(sent) - self._limit] + self._span
        if math.isinf(frees_at):
            # Still in flight: at least a whole window once it ends.
            return self._span
        return max(0.0, frees_at - self._clock.monotonic())

    def start(self, key: Hashable) -> None:
        """Note that `key` is being sent now."""
        self._sent.setdefault(key, []).append(math.inf)

    def finish(self, key: Hashable) -> None:
        """Note that a send of `key` has ended (answered, failed or abandoned)."""
        sent = self._sent.get(key, [])
        if math.inf in sent:
            sent[sent.index(math.inf)] = self._clock.monotonic()

    def cancel(self, key: Hashable) -> None:
        """Forget a `start()` whose request was never sent."""
        sent = self._sent.get(key, [])
        if math.inf in sent:
            sent.remove(math.inf)
        if not sent:
            self._sent.pop(key, None)

    def record(self, key: Hashable) -> None:
        """Note a send of `key` that started and ended just now."""
        self.start(key)
        self.finish(key)

    def count(self, key: Hashable) -> int:
        """How many sends of `key` are in flight or still inside the window."""
        return len(self._prune(key))

    def _prune(self, key: Hashable) -> list[float]:
        sent = self._sent.get(key)
        if sent is None:
            return []
        horizon = self._clock.monotonic() - self._span
        sent[:] = [t for t in sent if t > horizon]
        if not sent:
            # Forget idle keys so a long-running bot does not collect one list per task id.
            del self._sent[key]
        return sent


class Etiquette:
    """Decide whether a request may go out now, and learn from SMSC's errors.

    Rules (numbers are the constructor's defaults, set from `SmscClientConfig`):

    * identical requests: at most `identical_limit` (2) per key in any rolling 61 s (SMSC's 3/60 s);
    * error 9 on a key: that key waits `rate_limit_backoff` (60 s) and everything pauses
      `rate_limit_pause` (5 s), since 9 also means "too many concurrent requests";
    * error 4: everything stops for `ip_block_backoff` (30 min);
    * error 2: no attempt for `auth_retry_interval` (10 min), and never more than
      `auth_max_failures` (3) failed logins in `auth_failure_window` (30 min) -- SMSC blocks the IP
      at 5 -- so a wrong password can never get the host blocked;
    * a success clears the global backoffs (4, 2, the pause) and this key's error-9 backoff; other
      keys keep theirs, because SMSC still counts those requests.

    `verified` is False until a request proves the login works and after errors 2 or 4; the client
    then sends one request at a time, so a wrong password costs one failed login, not four.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        identical_limit: int = 2,
        window: float = 60.0,
        window_margin: float = 1.0,
        rate_limit_backoff: float = 60.0,
        rate_limit_pause: float = 5.0,
        ip_block_backoff: float = 1800.0,
        auth_retry_interval: float = 600.0,
        auth_max_failures: int = 3,
        auth_failure_window: float = 1800.0,
    ) -> None:
        self._clock = clock
        self.window = IdenticalWindow(
            clock, limit=identical_limit, window=window, margin=window_margin
        )
        self._rate_limit_backoff = rate_limit_backoff
        self._rate_limit_pause = rate_limit_pause
        self._ip_block_backoff = ip_block_backoff
        self._auth_retry_interval = auth_retry_interval
        self._auth_max_failures = auth_max_failures
        self._auth_failure_span = auth_failure_window + window_margin
        self._ip_blocked_until = -math.inf
        self._auth_blocked_until = -math.inf
        self._paused_until = -math.inf
        self._key_blocked_until: dict[Hashable, float] = {}
        self._auth_failures: deque[float] = deque()
        self.verified = False

    def check(self, key: Hashable) -> Throttle | None:
        """Return why `key` may not be sent now, or None if it may."""
        now = self._clock.monotonic()
        if self._ip_blocked_until > now:
            return Throttle("ip_blocked", self._ip_blocked_until - now)
        if self._auth_blocked_until > now:
            return Throttle("auth", self._auth_blocked_until - now)
        blocked_until = max(self._paused_until, self._key_blocked_until.get(key, -math.inf))
        if blocked_until > now:
            return Throttle("rate_limited", blocked_until - now)
        wait = self.window.wait_time(key)
        if wait > 0:
            return Throttle("window", wait)
        return None

    def acquire(self, key: Hashable) -> Throttle | None:
        """Check `key` and, if it may go, count it as in flight (call right before sending)."""
        throttle = self.check(key)
        if throttle is None:
            self.window.start(key)
        return throttle

    def release(self, key: Hashable) -> None:
        """Note that an acquired request has ended, however it ended."""
        self.window.finish(key)

    def unacquire(self, key: Hashable) -> None:
        """Give back an acquired slot whose request was not sent after all."""
        self.window.cancel(key)

    def on_success(self, key: Hashable) -> None:
        """Clear the backoffs after SMSC answered normally."""
        self.verified = True
        self._ip_blocked_until = self._auth_blocked_until = self._paused_until = -math.inf
        self._key_blocked_until.pop(key, None)

    def on_answer(self, key: Hashable) -> None:
        """Note an error answer (1, 5, unknown) that still proves the login and IP are fine."""
        self.on_success(key)

    def on_rate_limited(self, key: Hashable) -> float:
        """Back off after error 9; return the seconds this key now waits."""
        now = self._clock.monotonic()
        self._key_blocked_until[key] = now + self._rate_limit_backoff
        self._paused_until = max(self._paused_until, now + self._rate_limit_pause)
        self._forget_expired_keys(now)
        return self._rate_limit_backoff

    def on_ip_blocked(self) -> float:
        """Stop everything after error 4; return the seconds before the next attempt."""
        self.verified = False
        self._ip_blocked_until = self._clock.monotonic() + self._ip_block_backoff
        return self._ip_block_backoff

    def on_auth_failed(self) -> float:
        """Hold off after error 2; return the seconds before the next login attempt."""
        self.verified = False
        now = self._clock.monotonic()
        failures = self._auth_failures
        failures.append(now)
        while failures and failures[0] <= now - self._auth_failure_span:
            failures.popleft()
        next_attempt = now + self._auth_retry_interval
        if len(failures) >= self._auth_max_failures:
            # Wait until the oldest counted failure leaves SMSC's 30-minute window.
            oldest = failures[len(failures) - self._auth_max_failures]
            next_attempt = max(next_attempt, oldest + self._auth_failure_span)
        self._auth_blocked_until = next_attempt
        return next_attempt - now

    def hold_logins(self, seconds: float) -> None:
        """Allow no login attempt for at least `seconds` (e.g. what earlier processes cost)."""
        self._auth_blocked_until = max(self._auth_blocked_until, self._clock.monotonic() + seconds)

    def _forget_expired_keys(self, now: float) -> None:
        expired = [k for k, until in self._key_blocked_until.items() if until <= now]
        for k in expired:
            del self._key_blocked_until[k]


class TtlCache(Generic[T]):
    """One value with an age: fresh for `ttl` seconds, kept afterwards as a stale fallback."""

    def __init__(self, clock: Clock, ttl: float) -> None:
        self._clock = clock
        self._ttl = ttl
        self._value: T | None = None
        self._stored_at = -math.inf

    def put(self, value: T) -> None:
        """Store a new value, fresh from now."""
        self._value = value
        self._stored_at = self._clock.monotonic()

    def fresh(self, max_age: float | None = None) -> T | None:
        """Return the value if it is younger than the TTL (or than `max_age`, when given)."""
        limit = self._ttl if max_age is None else min(self._ttl, max_age)
        if self._clock.monotonic() - self._stored_at < limit:
            return self._value
        return None

    def stale(self) -> T | None:
        """Return the value whatever its age (None if never stored)."""
        return self._value

    def expire(self) -> None:
        """Make the value stale now, keeping it as the fallback."""
        self._stored_at = -math.inf


class SingleFlight(Generic[K, T]):
    """Run one call per key at a time; concurrent callers of a key share its result.

    The shared call runs as its own task and callers await it through `asyncio.shield`, so a
    caller that gives up (a cancelled handler) neither cancels the others nor the request.
    """

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Future[T]] = {}
        self.joined = 0

    async def run(self, key: K, factory: Callable[[], Awaitable[T]]) -> T:
        """Return `factory()`'s result, sharing a call already running for `key`."""
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(factory())
            self._flights[key] = flight
            flight.add_done_callback(partial(self._landed, key))
        else:
            self.joined += 1
        return await asyncio.shield(flight)

    def in_flight(self, key: K) -> bool:
        """Tell whether a call for `key` is running."""
        return key in self._flights

    def _landed(self, key: K, flight: asyncio.Future[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        # Mark the exception as seen: if every caller was cancelled nobody else will read it.
        if not flight.cancelled():
            flight.exception()


def round_up_seconds(seconds: float) -> int:
    """Round a wait up to whole seconds (at least 1), as people read it."""
    return max(1, math.ceil(seconds - 1e-9))


def format_wait(seconds: float) -> str:
    """Say a wait the way people read it: "40 s", "10 min"."""
    whole = round_up_seconds(seconds)
    if whole < 120:
        return f"{whole} s"
    return f"{math.ceil(whole / 60)} min"
