"""The Telegram rate limiter's schedule, on a fake clock."""

from __future__ import annotations

import itertools
from collections import deque

import pytest
from telegram.error import RetryAfter

from bot.clock import FakeClock
from bot.telegram_limits import DISPOSABLE, SendAbandoned, TelegramRateLimiter


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


def test_replies_are_not_queued_behind_a_fan_out() -> None:
    clock = FakeClock()
    limiter = TelegramRateLimiter(clock)
    fan_out = [limiter.reserve(10_000 + i, background=True) for i in range(1000)]
    assert fan_out[-1] - clock.monotonic() > 30  # half a minute of alerts booked ahead
    reply = limiter.reserve(42)
    assert reply - clock.monotonic() < 0.25
    assert max_in_window([*fan_out, reply], 1.0) <= 30  # and together within the limit
    more = [limiter.reserve(43 + i) for i in range(4)]
    assert max(more) - clock.monotonic() < 1.1  # about five replies a second stay free


async def test_a_disposable_send_is_abandoned_rather_than_kept_waiting() -> None:
    clock = FakeClock(autoadvance=True)
    limiter = TelegramRateLimiter(clock)
    for i in range(200):  # four seconds of background slots booked ahead
        limiter.reserve(10_000 + i, background=True)
    sent: list[str] = []

    async def send() -> bool:
        sent.append("sent")
        return True

    with pytest.raises(SendAbandoned):
        await limiter.process_request(send, (), {}, "sendMessage", {"chat_id": 7}, DISPOSABLE)
    assert sent == []
    # Without the bound the same send would wait its turn (here: a reply, unaffected).
    assert await limiter.process_request(send, (), {}, "sendMessage", {"chat_id": 8}, None)


async def test_a_disposable_send_does_not_sit_out_a_long_retry_after() -> None:
    clock = FakeClock()
    limiter = TelegramRateLimiter(clock)

    async def flooded() -> bool:
        raise RetryAfter(30)

    with pytest.raises(SendAbandoned):
        await limiter.process_request(flooded, (), {}, "sendMessage", {"chat_id": 7}, DISPOSABLE)
    assert clock.monotonic() < 1_001  # no 30 s sleep
