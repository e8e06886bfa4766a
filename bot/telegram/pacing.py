"""Pacing of outgoing Telegram messages under all three of Telegram's flood limits.

Telegram asks bots to stay under about 30 messages a second overall, 20 a minute per group and
one a second per chat. PTB's `AIORateLimiter` covers only the first two and does not retry by
default; this one covers all three and retries `RetryAfter`.

Time is cut into global slots `1/overall` seconds apart and every send takes a free slot of
its own, no earlier than its chat's and group's limits allow: so no second holds more than the
overall limit, and a chat that must wait (its own limit, or a 429 for it) takes a later slot
without delaying anyone else. Slots are booked before any await, so concurrent senders can
never overbook a window.

Alert fan-out is *background* traffic: it books a slot only once that slot is the next one,
one sender at a time in arrival order, while a reply to a person books any free slot at once.
So a fan-out alone uses the whole rate, and a reply arriving in the middle of one waits at most
the single slot already handed to an alert (plus what is in flight), never the whole fan-out.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter, TelegramError
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

from bot.clock import Clock

log = logging.getLogger(__name__)

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]

# Methods that post into a chat and count against the flood limits.
LIMITED_PREFIXES = ("send", "copy", "forward", "edit")
UNLIMITED = frozenset({"sendChatAction"})


@dataclass(frozen=True, slots=True)
class SendOptions:
    """Per-call `rate_limit_args`: background traffic yields to replies; extra retries.

    `max_wait` makes a send disposable: when its slot (or a RetryAfter) is further away than
    that many seconds, it is abandoned with `SendAbandoned` instead of waiting in line.
    """

    background: bool = False
    extra_retries: int = 0
    max_wait: float | None = None


BACKGROUND = SendOptions(background=True)
# Refusals to chats outside the allowlist: behind replies and alerts, and never worth a wait
# (nor holding up a stop): dropped when no slot is free within a couple of seconds.
DISPOSABLE = SendOptions(background=True, max_wait=2.0)


class SendAbandoned(TelegramError):
    """A disposable send given up because Telegram's limits would make it wait too long."""


class TelegramRateLimiter(BaseRateLimiter[SendOptions]):
    """All-limits pacing plus RetryAfter retries."""

    def __init__(
        self,
        clock: Clock,
        *,
        overall_per_second: float = 29.0,
        group_per_minute: int = 20,
        chat_interval: float = 1.0,
        max_retries: int = 3,
    ) -> None:
        self._clock = clock
        self._spacing = 1.0 / overall_per_second
        self._group_limit = group_per_minute
        self._chat_interval = chat_interval
        self._max_retries = max_retries
        self._taken: set[int] = set()  # global slot numbers booked
        self._frontier = 0  # every slot below this (from now on) is booked
        # Background senders book one at a time, in arrival order, and only the next slot.
        self._background_turn = asyncio.Lock()
        self._background_waiting = 0
        self._paused_until = 0.0  # a RetryAfter not tied to a chat pauses everything
        self._chat_next: dict[int | str, float] = {}
        self._group_sends: dict[int | str, collections.deque[float]] = {}
        self.retries = 0  # RetryAfter answers seen, for metrics and benchmarks

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def in_line(self) -> int:
        """Background sends waiting for their turn to book (the one booking sleeps in the clock)."""
        return self._background_waiting - self._background_turn.locked()

    @staticmethod
    def is_limited(endpoint: str) -> bool:
        """Whether a Bot API method counts against the flood limits."""
        return endpoint.startswith(LIMITED_PREFIXES) and endpoint not in UNLIMITED

    def reserve(self, chat_id: int | str | None) -> float:
        """Book the earliest slot allowed for a message to `chat_id`; return its time."""
        now = self._clock.monotonic()
        earliest, sends = self._earliest(chat_id, now)
        return self._commit(chat_id, self._free_slot(earliest, now), sends, now)

    async def reserve_background(
        self, chat_id: int | str | None, *, max_wait: float | None = None
    ) -> float:
        """Book a slot for background traffic once it is the next free one; return its time.

        With `max_wait`, raise `SendAbandoned` rather than book a slot further away than that.
        """
        started = self._clock.monotonic()
        while True:
            now = self._clock.monotonic()
            earliest, _ = self._earliest(chat_id, now)
            if self._beyond_next_slot(earliest, now):
                # Its own chat must wait (1/s, 20/min, a 429): wait outside the line, so the
                # other background sends go on meanwhile.
                _give_up_after(earliest - started, max_wait)
                await self._clock.sleep(earliest - self._spacing - now)
                continue
            _give_up_after(self._background_waiting * self._spacing + now - started, max_wait)
            self._background_waiting += 1
            try:
                async with self._background_turn:
                    at = await self._take_next_slot(chat_id, started, max_wait)
            finally:
                self._background_waiting -= 1
            if at is not None:
                return at

    async def _take_next_slot(
        self, chat_id: int | str | None, started: float, max_wait: float | None
    ) -> float | None:
        # Holding the background turn: wait until the first free slot is the next one, book
        # it, and let the next background sender have its turn. None: the chat itself must
        # wait after all (a 429 arrived meanwhile).
        while True:
            now = self._clock.monotonic()
            earliest, sends = self._earliest(chat_id, now)
            if self._beyond_next_slot(earliest, now):
                return None
            slot = self._free_slot(earliest, now)
            at = slot * self._spacing
            _give_up_after(at - started, max_wait)
            if not self._beyond_next_slot(at, now):
                return self._commit(chat_id, slot, sends, now)
            await self._clock.sleep(at - self._spacing - now)

    def _beyond_next_slot(self, at: float, now: float) -> bool:
        # With a tolerance: after sleeping until `at - spacing`, float rounding must not leave
        # `at` a hair beyond and the sender spinning on zero-length sleeps.
        return at - now > self._spacing + 1e-9

    def _earliest(
        self, chat_id: int | str | None, now: float
    ) -> tuple[float, collections.deque[float] | None]:
        """When `chat_id`'s own limits (and a global pause) next allow a send; its group log."""
        earliest = max(now, self._paused_until)
        sends: collections.deque[float] | None = None
        if chat_id is not None:
            earliest = max(earliest, self._chat_next.get(chat_id, 0.0))
            if _is_group(chat_id):
                sends = self._group_sends.setdefault(chat_id, collections.deque())
                while sends and sends[0] <= now - 60.0:
                    sends.popleft()
                if len(sends) >= self._group_limit:
                    earliest = max(earliest, sends[-self._group_limit] + 60.0)
        return earliest, sends

    def _free_slot(self, earliest: float, now: float) -> int:
        """The first global slot at or after `earliest` nobody has booked."""
        self._frontier = max(self._frontier, math.ceil(now / self._spacing))
        while self._frontier in self._taken:
            self._frontier += 1
        slot = max(math.ceil(earliest / self._spacing - 1e-9), self._frontier)
        while slot in self._taken:
            slot += 1
        return slot

    def _commit(
        self,
        chat_id: int | str | None,
        slot: int,
        sends: collections.deque[float] | None,
        now: float,
    ) -> float:
        """Book `slot` for a message to `chat_id`; return its time."""
        self._taken.add(slot)
        at = slot * self._spacing
        if chat_id is not None:
            self._chat_next[chat_id] = at + self._chat_interval
            if sends is not None:
                sends.append(at)
        self._forget_old(now)
        return at

    def _forget_old(self, now: float) -> None:
        # Keep the bookkeeping from growing over a months-long run.
        if len(self._taken) > 4096:
            now_slot = math.ceil(now / self._spacing)
            self._taken = {s for s in self._taken if s >= now_slot}
        if len(self._chat_next) > 4096:
            self._chat_next = {c: t for c, t in self._chat_next.items() if t > now}
            self._group_sends = {
                c: q for c, q in self._group_sends.items() if q and q[-1] > now - 60
            }

    def hold(self, chat_id: int | str | None, seconds: float) -> None:
        """After a RetryAfter: pause this chat (or, without a chat, everything) for a while."""
        until = self._clock.monotonic() + seconds
        if chat_id is None:
            self._paused_until = max(self._paused_until, until)
        else:
            self._chat_next[chat_id] = max(self._chat_next.get(chat_id, 0.0), until)

    async def process_request(  # noqa: PLR0917 - PTB's signature
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: SendOptions | None,
    ) -> JSONResult:
        """Wait for a slot, send, and retry when Telegram says RetryAfter."""
        chat_id = data.get("chat_id")
        limited = self.is_limited(endpoint)
        options = rate_limit_args or SendOptions()
        retries = self._max_retries + options.extra_retries
        attempt = 0
        while True:
            if limited:
                if options.background:
                    at = await self.reserve_background(chat_id, max_wait=options.max_wait)
                else:
                    at = self.reserve(chat_id)
                wait = at - self._clock.monotonic()
                _give_up_after(wait, options.max_wait)
                if wait > 0:
                    await self._clock.sleep(wait)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as err:
                self.retries += 1
                seconds = retry_after_seconds(err)
                log.warning(
                    "Telegram flood control: retry after %.0f s",
                    seconds,
                    extra={"event": "telegram_retry_after", "method": endpoint, "chat_id": chat_id},
                )
                # A 429 on a chat's message is about that chat; otherwise everything pauses.
                self.hold(chat_id if limited else None, seconds)
                if attempt >= retries:
                    raise
                if options.max_wait is not None and seconds > options.max_wait:
                    raise SendAbandoned(f"Telegram asked to wait {seconds:.0f} s") from err
                attempt += 1
                if not limited:
                    await self._clock.sleep(seconds)


def retry_after_seconds(err: RetryAfter) -> float:
    """RetryAfter's delay in seconds, whichever type PTB hands out (int or timedelta)."""
    with warnings.catch_warnings():
        # PTB 22 warns that the int form is deprecated; we accept both forms here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = err.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _give_up_after(wait: float, max_wait: float | None) -> None:
    """Abandon a disposable send whose slot would be further away than it may wait."""
    if max_wait is not None and wait > max_wait:
        raise SendAbandoned(f"no send slot within {max_wait:g} s")


def _is_group(chat_id: int | str) -> bool:
    return isinstance(chat_id, str) or chat_id < 0
