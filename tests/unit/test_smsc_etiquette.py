"""The etiquette rules as pure logic over a FakeClock: windows, backoffs, cache, coalescing."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from bot.clock import FakeClock
from bot.smsc.etiquette import (
    Etiquette,
    IdenticalWindow,
    RequestKey,
    SingleFlight,
    TtlCache,
    format_wait,
)

LIST = RequestKey.for_list(200, None)
PAGE2 = RequestKey.for_list(200, 17)
FILE = RequestKey.for_file(17, None)


def test_request_keys_describe_themselves() -> None:
    assert str(LIST) == "get_list cnt=200"
    assert str(PAGE2) == "get_list cnt=200 after_id=17"
    assert str(RequestKey.for_list(None, None)) == "get_list"
    assert str(RequestKey.for_file(3, None)) == "get_file id=3"
    assert str(RequestKey.for_file(None, "a.csv")) == "get_file name='a.csv'"
    assert str(RequestKey.for_file(None, "x\nFAKE LOG")) == "get_file name='x\\nFAKE LOG'"
    assert RequestKey.for_list(None, None) != RequestKey.for_list(100, None)
    assert RequestKey.for_file(1, None) != RequestKey.for_list(1, None)


def test_window_allows_limit_then_says_how_long_to_wait() -> None:
    clock = FakeClock()
    window = IdenticalWindow(clock, limit=2, window=60.0, margin=1.0)

    window.record(LIST)
    clock.advance(10)
    window.record(LIST)

    assert window.wait_time(LIST) == pytest.approx(51.0)
    assert window.wait_time(PAGE2) == 0.0
    clock.advance(50.5)
    assert window.wait_time(LIST) == pytest.approx(0.5)
    clock.advance(0.5)
    assert window.wait_time(LIST) == 0.0
    assert window.count(LIST) == 1


def test_window_counts_a_request_in_flight_until_it_ends() -> None:
    clock = FakeClock()
    window = IdenticalWindow(clock, limit=2, window=60.0, margin=1.0)

    window.record(LIST)
    window.start(LIST)  # a slow answer: SMSC may stamp it any time until it ends
    clock.advance(100)

    assert window.count(LIST) == 1
    assert window.wait_time(LIST) == 0.0
    window.start(LIST)
    assert window.wait_time(LIST) == pytest.approx(61.0)  # both in flight: a window at least
    clock.advance(5)
    window.finish(LIST)
    window.finish(LIST)
    assert window.wait_time(LIST) == pytest.approx(61.0)
    clock.advance(61)
    assert window.count(LIST) == 0


def test_window_forgets_idle_keys() -> None:
    clock = FakeClock()
    window = IdenticalWindow(clock, limit=2, window=60.0)
    for task_id in range(1000):
        window.record(RequestKey.for_file(task_id, None))
    clock.advance(62)

    assert all(window.count(RequestKey.for_file(i, None)) == 0 for i in range(1000))
    assert window._sent == {}


@pytest.mark.parametrize("seed", range(5))
def test_window_never_lets_three_through_in_any_minute(seed: int) -> None:
    clock = FakeClock()
    window = IdenticalWindow(clock, limit=2, window=60.0, margin=1.0)
    rng = random.Random(seed)
    sent: list[float] = []
    for _ in range(2000):
        clock.advance(rng.choice([0.0, 0.1, 1.0, 5.0, 29.9, 30.0, 59.9, 60.0, 61.0]))
        if window.wait_time(LIST) == 0:
            window.record(LIST)
            sent.append(clock.monotonic())

    assert len(sent) > 50
    assert all(later - earlier > 60.0 for earlier, later in zip(sent, sent[2:], strict=False))


def test_etiquette_counts_only_acquired_sends() -> None:
    clock = FakeClock()
    rules = Etiquette(clock)

    assert rules.acquire(LIST) is None
    rules.release(LIST)
    assert rules.acquire(LIST) is None
    rules.release(LIST)
    throttle = rules.acquire(LIST)

    assert throttle is not None
    assert throttle.reason == "window"
    assert throttle.retry_after == pytest.approx(61.0)
    assert rules.check(FILE) is None


def test_error_9_blocks_the_key_for_a_minute_and_everything_briefly() -> None:
    clock = FakeClock()
    rules = Etiquette(clock)

    assert rules.on_rate_limited(FILE) == 60.0
    blocked = rules.check(FILE)
    paused = rules.check(LIST)

    assert blocked is not None
    assert blocked.reason == "rate_limited"
    assert blocked.retry_after == pytest.approx(60.0)
    assert paused is not None
    assert paused.retry_after == pytest.approx(5.0)
    clock.advance(5)
    assert rules.check(LIST) is None
    still = rules.check(FILE)
    assert still is not None
    assert still.retry_after == pytest.approx(55.0)
    clock.advance(55)
    assert rules.check(FILE) is None


def test_error_4_stops_everything_for_half_an_hour() -> None:
    clock = FakeClock()
    rules = Etiquette(clock)
    rules.on_success(LIST)

    assert rules.on_ip_blocked() == 1800.0
    assert not rules.verified
    for key in (LIST, PAGE2, FILE):
        throttle = rules.check(key)
        assert throttle is not None
        assert throttle.reason == "ip_blocked"
    clock.advance(1799)
    throttle = rules.check(FILE)
    assert throttle is not None
    assert throttle.retry_after == pytest.approx(1.0)
    clock.advance(1)
    assert rules.check(FILE) is None


def test_error_2_allows_one_attempt_per_ten_minutes_and_three_per_half_hour() -> None:
    clock = FakeClock()
    rules = Etiquette(clock)
    attempts: list[float] = []
    start = clock.monotonic()
    while clock.monotonic() - start < 3 * 3600:
        if rules.acquire(LIST) is None:
            attempts.append(clock.monotonic() - start)
            rules.on_auth_failed()
            rules.release(LIST)
        clock.advance(7)

    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert all(gap >= 600 for gap in gaps)
    # In any 30 minutes (SMSC's strike window) at most 3 failed logins: SMSC blocks at 5.
    assert all(sum(1 for t in attempts if s <= t < s + 1800) <= 3 for s in attempts), attempts
    assert len(attempts) >= 6


def test_a_burst_of_auth_failures_delays_the_next_attempt_past_the_strike_window() -> None:
    clock = FakeClock()
    rules = Etiquette(clock)
    for _ in range(4):  # four requests were already in flight when the password changed
        wait = rules.on_auth_failed()

    assert wait == pytest.approx(1801.0)


def test_success_clears_global_backoffs_but_not_other_keys_error_9() -> None:
    clock = FakeClock()
    rules = Etiquette(clock)
    rules.on_rate_limited(FILE)
    rules.on_rate_limited(LIST)
    rules.on_auth_failed()
    rules.on_ip_blocked()

    rules.on_success(LIST)

    assert rules.verified
    assert rules.check(LIST) is None
    assert rules.check(PAGE2) is None
    other = rules.check(FILE)
    assert other is not None
    assert other.reason == "rate_limited"


def test_answers_with_errors_1_and_5_verify_the_login() -> None:
    rules = Etiquette(FakeClock())
    assert not rules.verified

    rules.on_answer(FILE)

    assert rules.verified


def test_ttl_cache_is_fresh_then_stale() -> None:
    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(clock, 15.0)
    assert cache.fresh() is None
    assert cache.stale() is None

    cache.put("tasks")
    clock.advance(14.9)
    assert cache.fresh() == "tasks"
    clock.advance(0.1)
    assert cache.fresh() is None
    assert cache.stale() == "tasks"


async def test_single_flight_shares_one_call() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    calls = 0
    gate = asyncio.Event()

    async def work() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return 42

    callers = [asyncio.ensure_future(flight.run("k", work)) for _ in range(50)]
    await asyncio.sleep(0)
    assert flight.in_flight("k")
    gate.set()
    results = await asyncio.gather(*callers)

    assert results == [42] * 50
    assert calls == 1
    assert flight.joined == 49
    assert not flight.in_flight("k")
    assert await flight.run("k", work) == 42
    assert calls == 2


async def test_single_flight_survives_a_cancelled_caller_and_shares_errors() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    gate = asyncio.Event()

    async def work() -> int:
        await gate.wait()
        raise ValueError("boom")

    first = asyncio.ensure_future(flight.run("k", work))
    second = asyncio.ensure_future(flight.run("k", work))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    gate.set()

    with pytest.raises(ValueError, match="boom"):
        await second
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_single_flight_error_nobody_awaits_is_not_reported_as_lost() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    gate = asyncio.Event()
    finished = asyncio.Event()

    async def work() -> int:
        try:
            await gate.wait()
            raise ValueError("boom")
        finally:
            finished.set()

    only = asyncio.ensure_future(flight.run("k", work))
    await asyncio.sleep(0)
    only.cancel()
    gate.set()
    await finished.wait()
    await asyncio.sleep(0)

    assert not flight.in_flight("k")
    with pytest.raises(asyncio.CancelledError):
        await only


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "1 s"),
        (39.01, "40 s"),
        (60.0, "60 s"),
        (119.0, "119 s"),
        (119.5, "2 min"),
        (600, "10 min"),
        (1799.2, "30 min"),
    ],
)
def test_format_wait(seconds: float, text: str) -> None:
    assert format_wait(seconds) == text


def test_ttl_cache_max_age_asks_for_something_younger() -> None:
    """A caller may want a younger value than the TTL allows (the watcher polling for news)."""
    from bot.clock import FakeClock
    from bot.smsc.etiquette import TtlCache

    clock = FakeClock()
    cache: TtlCache[str] = TtlCache(clock, ttl=15.0)
    cache.put("list")
    clock.advance(5)
    assert cache.fresh() == "list"
    assert cache.fresh(max_age=2.0) is None
    assert cache.fresh(max_age=60.0) == "list"  # never older than the TTL, though
    clock.advance(11)
    assert cache.fresh(max_age=60.0) is None
    assert cache.stale() == "list"


def test_an_unsent_request_gives_its_slot_back() -> None:
    clock = FakeClock()
    etiquette = Etiquette(clock)
    key = RequestKey.for_list(5, None)
    assert etiquette.acquire(key) is None
    etiquette.unacquire(key)  # the durable budget said no: nothing went out
    assert etiquette.window.count(key) == 0
    for _ in range(2):
        assert etiquette.acquire(key) is None
        etiquette.release(key)
    throttle = etiquette.check(key)
    assert throttle is not None
    assert throttle.reason == "window"


def test_hold_logins_only_lengthens_the_wait() -> None:
    clock = FakeClock()
    etiquette = Etiquette(clock)
    key = RequestKey.for_list(5, None)
    etiquette.on_auth_failed()
    etiquette.hold_logins(60)  # shorter than the 10 minutes already imposed
    throttle = etiquette.check(key)
    assert throttle is not None
    assert throttle.retry_after == pytest.approx(600)
    etiquette.hold_logins(1500)  # what earlier processes' failures cost
    throttle = etiquette.check(key)
    assert throttle is not None
    assert throttle.reason == "auth"
    assert throttle.retry_after == pytest.approx(1500)
