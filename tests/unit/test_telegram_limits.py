"""The Telegram rate limiter's schedule, on a fake clock."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import deque
from collections.abc import Callable

import pytest
from telegram.error import RetryAfter

from bot.clock import FakeClock
from bot.telegram.pacing import DISPOSABLE, SendAbandoned, TelegramRateLimiter


def max_in_window(times: list[float], window: float) -> int:
    best, q = 0, deque[float]()
    for t in sorted(times):
        q.append(t)
        while q[0] <= t - window:
            q.popleft()
        best = max(best, len(q))
    return best


def test_overall_rate_stays_under_30_per_second() -> None:
    clock = FakeClock()
    limiter = TelegramRateLimiter(clock)
    slots = [limiter.reserve(10_000 + i) for i in range(300)]
    assert max_in_window(slots, 1.0) <= 30
    assert slots[-1] - clock.monotonic() < 11  # and it does not crawl: ~29/s


def test_one_per_second_per_chat() -> None:
    limiter = TelegramRateLimiter(FakeClock())
    slots = [limiter.reserve(42) for _ in range(5)]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(slots))


def test_twenty_per_minute_per_group() -> None:
    limiter = TelegramRateLimiter(FakeClock())
    slots = [limiter.reserve(-100) for _ in range(45)]
    assert max_in_window(slots, 60.0) <= 20


def test_mixed_load_keeps_every_limit() -> None:
    limiter = TelegramRateLimiter(FakeClock())
    chats = [(-1 - i % 3) if i % 4 == 0 else 1 + i % 50 for i in range(400)]
    slots = [(c, limiter.reserve(c)) for c in chats]
    assert max_in_window([t for _, t in slots], 1.0) <= 30
    for chat in set(chats):
        times = [t for c, t in slots if c == chat]
        assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
        if chat < 0:
            assert max_in_window(times, 60.0) <= 20


def test_a_held_chat_does_not_hold_up_the_others() -> None:
    clock = FakeClock()
    limiter = TelegramRateLimiter(clock)
    limiter.hold(1, 30)
    assert limiter.reserve(1) >= clock.monotonic() + 30
    others = [limiter.reserve(100 + i) for i in range(29)]
    assert max(others) < clock.monotonic() + 1.1


def test_hold_pauses_a_chat_or_everything() -> None:
    clock = FakeClock()
    limiter = TelegramRateLimiter(clock)
    limiter.hold(7, 30)
    assert limiter.reserve(7) >= clock.monotonic() + 30
    assert limiter.reserve(8) < clock.monotonic() + 1
    limiter.hold(None, 100)
    assert limiter.reserve(9) >= clock.monotonic() + 100


@pytest.mark.parametrize(
    ("method", "limited"),
    [
        ("sendMessage", True),
        ("sendDocument", True),
        ("editMessageText", True),
        ("sendChatAction", False),
        ("getUpdates", False),
        ("answerCallbackQuery", False),
    ],
)
def test_which_methods_are_limited(method: str, limited: bool) -> None:
    assert TelegramRateLimiter.is_limited(method) is limited


SPACING = 1 / 29  # the limiter's default overall rate


async def drive(clock: FakeClock, done: Callable[[], bool], *, limit: float = 120.0) -> None:
    """Step fake time a quarter slot at a time, letting the senders run, until `done()`."""
    deadline = clock.monotonic() + limit
    while not done():
        assert clock.monotonic() < deadline, "the senders never got there"
        clock.advance(SPACING / 4)
        for _ in range(5):
            await asyncio.sleep(0)


def fan_out(limiter: TelegramRateLimiter, chats: int) -> list[asyncio.Task[float]]:
    return [asyncio.create_task(limiter.reserve_background(10_000 + i)) for i in range(chats)]


def slot_numbers(times: list[float]) -> list[int]:
    return sorted(round(t / SPACING) for t in times)


async def test_a_fan_out_alone_takes_every_slot() -> None:
    clock = FakeClock()
    limiter = TelegramRateLimiter(clock)
    alerts = fan_out(limiter, 90)
    await drive(clock, lambda: all(t.done() for t in alerts))
    slots = slot_numbers([t.result() for t in alerts])
    # One slot after another, none kept free: the whole overall rate (29/s), and no more.
    assert slots == list(range(slots[0], slots[0] + 90))
    assert max_in_window([t.result() for t in alerts], 1.0) <= 29


async def test_a_background_send_books_only_the_next_slot() -> None:
    clock = FakeClock()
    limiter = TelegramRateLimiter(clock)
    alerts = fan_out(limiter, 90)
    await drive(clock, lambda: sum(t.done() for t in alerts) >= 30)
    booked = [t.result() for t in alerts if t.done()]
    # Nothing booked further ahead than the next slot: the rest of the fan-out waits in line.
    assert max(booked) - clock.monotonic() <= SPACING + 1e-9
    for task in alerts:
        task.cancel()
    await asyncio.gather(*alerts, return_exceptions=True)


async def test_a_reply_during_a_fan_out_waits_at_most_one_slot() -> None:
    clock = FakeClock()
    limiter = TelegramRateLimiter(clock)
    alerts = fan_out(limiter, 90)
    await drive(clock, lambda: sum(t.done() for t in alerts) >= 30)
    now = clock.monotonic()
    next_slot = math.ceil(now / SPACING) * SPACING  # what the reply would get alone
    reply = limiter.reserve(42)
    assert reply - next_slot <= SPACING + 1e-9  # at most the one slot an alert already holds
    replies = [limiter.reserve(43 + i) for i in range(4)]
    assert max(replies) - next_slot <= 5 * SPACING + 1e-9  # a burst of replies, back to back
    await drive(clock, lambda: all(t.done() for t in alerts))
    everything = [t.result() for t in alerts] + [reply, *replies]
    slots = slot_numbers(everything)
    # The alerts gave up exactly the replies' slots and went on at the whole rate around them.
    assert slots == list(range(slots[0], slots[0] + 95))
    assert max_in_window(everything, 1.0) <= 29


async def test_a_held_chat_does_not_hold_up_the_background_line() -> None:
    clock = FakeClock()
    limiter = TelegramRateLimiter(clock)
    start = clock.monotonic()
    limiter.hold(1, 30)
    held = asyncio.create_task(limiter.reserve_background(1))
    others = fan_out(limiter, 29)
    await drive(clock, lambda: all(t.done() for t in others))
    assert max(t.result() for t in others) - start < 1.1
    assert not held.done()
    await drive(clock, held.done)
    assert held.result() >= start + 30


async def test_a_disposable_send_is_abandoned_rather_than_kept_waiting() -> None:
    clock = FakeClock()
    limiter = TelegramRateLimiter(clock)
    alerts = fan_out(limiter, 200)  # about seven seconds of alerts waiting in line
    await asyncio.sleep(0)
    sent: list[str] = []

    async def send() -> bool:
        sent.append("sent")
        return True

    with pytest.raises(SendAbandoned):
        await limiter.process_request(send, (), {}, "sendMessage", {"chat_id": 7}, DISPOSABLE)
    assert sent == []
    # Without the bound the same send would wait its turn (here: a reply, barely delayed).
    assert limiter.reserve(8) - clock.monotonic() <= 2 * SPACING + 1e-9
    for task in alerts:
        task.cancel()
    await asyncio.gather(*alerts, return_exceptions=True)


async def test_a_disposable_send_goes_out_when_the_line_is_short() -> None:
    clock = FakeClock(autoadvance=True)
    limiter = TelegramRateLimiter(clock)

    async def send() -> bool:
        return True

    assert await limiter.process_request(send, (), {}, "sendMessage", {"chat_id": 7}, DISPOSABLE)


async def test_a_disposable_send_does_not_sit_out_a_long_retry_after() -> None:
    clock = FakeClock()
    limiter = TelegramRateLimiter(clock)

    async def flooded() -> bool:
        raise RetryAfter(30)

    with pytest.raises(SendAbandoned):
        await limiter.process_request(flooded, (), {}, "sendMessage", {"chat_id": 7}, DISPOSABLE)
    assert clock.monotonic() < 1_001  # no 30 s sleep
