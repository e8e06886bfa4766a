"""The gate every SMSC request goes through: etiquette, the login probe, slots, the durable budget.

The in-process rules (`bot.smsc.etiquette`) and their durable copy (`bot.smsc.budget`, shared by
restarts and other processes on one database) are both checked before anything is sent; what an
answer teaches (backoffs after errors 2, 4 and 9) is learnt here, and every request and local
decision is reported once to the observers (`bot.smsc.observer`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypeVar

from bot.clock import Clock
from bot.smsc.budget import BudgetStore, Outcome, SharedBudget, Ticket
from bot.smsc.config import SmscClientConfig
from bot.smsc.errors import (
    SmscApiError,
    SmscAuthError,
    SmscBudgetError,
    SmscError,
    SmscIpBlockedError,
    SmscRateLimitedError,
)
from bot.smsc.etiquette import Etiquette, RequestKey, Throttle, format_wait
from bot.smsc.observer import Kind, Observers, SmscRequest, classify
from storage.smsc_budget import BudgetUnavailableError

log = logging.getLogger(__name__)

R = TypeVar("R")
_WAITABLE = ("rate_limited", "window", "probe")


class LoginProbe:
    """Whether the login is proven, and the one request proving it while it is not.

    Until a request proves the login, requests go one at a time: a wrong password then costs
    one failed login, not one per concurrent caller. `Etiquette.verified` is the fact (set by
    answers, cleared by errors 2 and 4); the event is the request in flight deciding it.
    """

    def __init__(self, etiquette: Etiquette) -> None:
        self._etiquette = etiquette
        self._running: asyncio.Event | None = None

    def pending(self) -> asyncio.Event | None:
        """The running request whose answer decides whether the login works, if any."""
        return None if self._etiquette.verified else self._running

    def begin(self) -> asyncio.Event | None:
        """Make this request the probe when the login is unproven (before any await)."""
        if self._etiquette.verified:
            return None
        self._running = asyncio.Event()
        return self._running

    def end(self, probe: asyncio.Event | None) -> None:
        """Release the callers waiting on `probe` (idempotent)."""
        if probe is None:
            return
        if self._running is probe:
            self._running = None
        probe.set()


class SmscGate:
    """Lets a request out when every limit allows it; waits briefly or raises otherwise."""

    def __init__(
        self,
        config: SmscClientConfig,
        clock: Clock,
        budget: BudgetStore,
        observers: Observers,
    ) -> None:
        self._config = config
        self._clock = clock
        self._observers = observers
        self.etiquette = Etiquette(
            clock,
            identical_limit=config.identical_limit,
            window=config.window_seconds,
            window_margin=config.window_margin,
            rate_limit_backoff=config.rate_limit_backoff,
            rate_limit_pause=config.rate_limit_pause,
            ip_block_backoff=config.ip_block_backoff,
            auth_retry_interval=config.auth_retry_interval,
            auth_max_failures=config.auth_max_failures,
            auth_failure_window=config.auth_failure_window,
        )
        self._probe = LoginProbe(self.etiquette)
        self._budget = SharedBudget(budget, clock, config.budget_rules())
        self._budget_down = False  # logged once per outage, not once per request
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._download_slots = asyncio.Semaphore(config.max_concurrent_downloads)

    def throttle(self, key: RequestKey) -> Throttle | None:
        """What would hold `key` back right now, without sending or counting anything."""
        return self.etiquette.check(key)

    async def send(
        self,
        key: RequestKey,
        kind: Kind,
        perform: Callable[[Callable[[], None]], Awaitable[R]],
        *,
        can_wait: bool,
    ) -> R:
        """Run `perform(answered)` as one upstream request when the limits allow it."""
        waited = 0.0
        while True:
            throttle = self.etiquette.check(key)  # fail fast before queueing for a slot
            probe = self._probe.pending()
            if throttle is None and probe is None:
                async with self._slot(kind):
                    # Time passed while queueing: decide again, and count the send atomically.
                    probe = self._probe.pending()
                    throttle = None if probe else self.etiquette.acquire(key)
                    if throttle is None and probe is None:
                        try:
                            return await self._perform(key, kind, perform)
                        except _Refused as refused:  # the durable budget said no
                            throttle = refused.throttle
            if probe is not None:
                await probe.wait()
                continue
            if throttle is None:  # cannot happen: the branches above leave a probe or a throttle
                continue
            if (
                can_wait
                and throttle.reason in _WAITABLE
                and waited + throttle.retry_after <= self._config.max_wait
            ):
                self._observers.on_event("wait")
                log.debug(
                    "Waiting %.1f s for SMSC slot (%s): %s",
                    throttle.retry_after,
                    throttle.reason,
                    key,
                )
                await self._clock.sleep(throttle.retry_after)
                waited += throttle.retry_after
                continue
            self._observers.on_event("throttled")
            raise _throttle_error(throttle)

    @asynccontextmanager
    async def _slot(self, kind: Kind) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if kind == "file":
                await stack.enter_async_context(self._download_slots)
            await stack.enter_async_context(self._slots)
            yield

    async def _perform(
        self,
        key: RequestKey,
        kind: Kind,
        perform: Callable[[Callable[[], None]], Awaitable[R]],
    ) -> R:
        """Run one upstream request, learning backoffs from its outcome.

        Raises `_Refused` (nothing sent) when the durable budget says wait.
        """
        # Set before any await, so that callers arriving meanwhile wait for it.
        probe = self._probe.begin()
        try:
            reserved = await self._reserve(key, probe=probe is not None)
        except BaseException:
            self.etiquette.unacquire(key)
            self._probe.end(probe)
            raise
        if not isinstance(reserved, Ticket | None):
            self.etiquette.unacquire(key)
            self._probe.end(probe)
            raise _Refused(reserved)
        self._observers.on_event("sent")
        started = self._clock.monotonic()
        answered = False
        outcome: Outcome = "no_answer"
        settled = False

        def on_answer() -> None:
            nonlocal answered
            if not answered:
                answered = True
                self.etiquette.on_success(key)
                self._probe.end(probe)

        try:
            result = await perform(on_answer)
            outcome = "ok"
        except SmscError as err:
            outcome = _outcome(err)
            settled = True
            stored_wait = await self._settle(reserved, outcome)
            error = self._learn(key, err, stored_wait)
            self._probe.end(probe)
            self._report(key, kind, started, error)
            if error is err:
                raise
            raise error from err
        finally:
            self.etiquette.release(key)
            self._probe.end(probe)
            if not settled:
                # "answer" e.g. when the disk filled while a file streamed: the login worked.
                final: Outcome = "answer" if answered and outcome != "ok" else outcome
                # Shielded: a cancelled caller still records how its request ended.
                await asyncio.shield(self._settle(reserved, final))
        on_answer()
        self._report(key, kind, started, None)
        return result

    async def _reserve(self, key: RequestKey, *, probe: bool) -> Ticket | Throttle | None:
        """Take a slot in the durable budget; None when the store is down (in-process rules)."""
        try:
            reserved = await self._budget.reserve(key, probe=probe)
        except BudgetUnavailableError as err:
            self._observers.on_event("budget_unavailable")
            if not self._budget_down:
                self._budget_down = True
                log.warning("Sending on the in-process SMSC limits alone: %s", err)
            return None
        if self._budget_down:
            self._budget_down = False
            log.info("The durable SMSC budget is back")
        return reserved

    async def _settle(self, ticket: Ticket | None, outcome: Outcome) -> float | None:
        if ticket is None:
            return None
        try:
            return await self._budget.settle(ticket, outcome)
        except BudgetUnavailableError as err:
            log.warning("Could not record how an SMSC request ended: %s", err)
            return None

    def _learn(self, key: RequestKey, err: SmscError, stored_wait: float | None) -> SmscError:
        """Update the backoffs from an error; return the error to raise, with retry_after.

        `stored_wait` is what the durable budget imposes (it also counts earlier processes'
        failed logins), the longer of the two wins.
        """
        if not isinstance(err, SmscApiError):
            return err
        if isinstance(err, SmscRateLimitedError):
            wait = self.etiquette.on_rate_limited(key)
            return _backoff_error(Throttle("rate_limited", wait), err.description, answered=True)
        if isinstance(err, SmscIpBlockedError):
            wait = self.etiquette.on_ip_blocked()
            return _backoff_error(Throttle("ip_blocked", wait), err.description, answered=True)
        if isinstance(err, SmscAuthError):
            wait = max(self.etiquette.on_auth_failed(), stored_wait or 0.0)
            self.etiquette.hold_logins(wait)
            return _backoff_error(Throttle("auth", wait), err.description, answered=True)
        # Errors 1, 5 and unknown ones are answers from a logged-in session.
        self.etiquette.on_answer(key)
        return err

    def _report(self, key: RequestKey, kind: Kind, started: float, err: SmscError | None) -> None:
        seconds = self._clock.monotonic() - started
        if err is None:
            log.debug("SMSC %s: ok in %.2f s", key, seconds)
            outcome, code = "ok", None
        else:
            log.warning("SMSC %s failed after %.2f s: %s", key, seconds, err)
            outcome, code = classify(err)
        self._observers.on_request(
            SmscRequest(kind, outcome, code, seconds, self._clock.now(), err)
        )


class _Refused(Exception):
    """The durable budget refused a request the in-process etiquette allowed."""

    def __init__(self, throttle: Throttle) -> None:
        self.throttle = throttle
        super().__init__(throttle.reason)


def _outcome(err: SmscError) -> Outcome:
    """What the durable budget learns from a failed request."""
    if isinstance(err, SmscRateLimitedError):
        return "rate_limited"
    if isinstance(err, SmscIpBlockedError):
        return "ip_blocked"
    if isinstance(err, SmscAuthError):
        return "auth_failed"
    if isinstance(err, SmscApiError):
        return "answer"  # errors 1, 5, unknown: the login works
    return "no_answer"


def _throttle_error(throttle: Throttle) -> SmscError:
    """The exception for a request we did not send, saying when to try again."""
    err = _backoff_error(throttle, "", answered=False)
    err.sent = False
    return err


# What made us wait, in words: SMSC's errors are SMSC's, our own budget is ours.
_BUDGET_CAUSES = {
    "probe": "another of our processes is logging in to SMSC right now",
    "unconfirmed": (
        "an earlier login attempt got no answer before the bot restarted "
        "(counted as a failed login)"
    ),
}


def _backoff_error(throttle: Throttle, description: str, *, answered: bool) -> SmscError:
    """The error for a backoff: `answered` when SMSC's answer just caused it."""
    wait = format_wait(throttle.retry_after)
    after = throttle.retry_after
    if throttle.reason == "ip_blocked":
        cause = "SMSC has blocked this server's IP address (error 4)"
        return SmscIpBlockedError(
            f"{cause}; next attempt in {wait}",
            retry_after=after,
            description=description,
            cause=cause,
        )
    if throttle.reason == "auth":
        cause = "SMSC rejected the login or password, or this IP (error 2)"
        return SmscAuthError(
            f"{cause}; next login attempt in {wait}",
            retry_after=after,
            description=description,
            cause=cause,
        )
    if throttle.reason == "rate_limited":
        cause = (
            "SMSC answered error 9 (too many requests)"
            if answered
            else "we are waiting out SMSC's error 9 (too many requests)"
        )
        return SmscRateLimitedError(
            f"{cause}; next try in {wait}", retry_after=after, description=description, cause=cause
        )
    cause = _BUDGET_CAUSES.get(
        throttle.reason,
        "our own limit of identical SMSC requests a minute is used up (SMSC refused nothing)",
    )
    return SmscBudgetError(f"{cause}; next try in {wait}", retry_after=after, cause=cause)
