"""The client's manners towards SMSC under load, over real HTTP, with time moved by FakeClock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NamedTuple

import aiohttp
import pytest

from bot.clock import FakeClock
from bot.smsc.client import SmscClient, SmscCredentials
from bot.smsc.errors import (
    SmscAuthError,
    SmscBudgetError,
    SmscError,
    SmscIpBlockedError,
    SmscRateLimitedError,
)
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import Fault, SimTask, SimulatorState, create_app
from tests.fakes.rig import serve
from tests.fakes.smsc_support import (
    LOGIN,
    PASSWORD,
    WRONG_PASSWORD,
    Sim,
    add_tasks,
    identical_bursts,
    make_client,
    until,
)

Call = Callable[[SmscClient], Awaitable[object]]


def _calls(tmp_path: Path) -> list[Call]:
    """Every way a caller can reach SMSC, with repeated arguments so requests are identical."""
    return [
        lambda c: c.list_tasks(),
        lambda c: c.list_tasks(),
        lambda c: c.task_listing(),
        lambda c: c.list_page(cnt=3),
        lambda c: c.list_page(cnt=3, after_id=5),
        lambda c: c.list_page(),
        lambda c: c.download(tmp_path, task_id=1),
        lambda c: c.download(tmp_path, task_id=2),
        lambda c: c.download(tmp_path, name="task_3.csv"),
    ]


class Pattern(NamedTuple):
    """How callers hit the client: steps, seconds between them, callers per step, waiting."""

    seed: int
    steps: int
    gaps: list[float]
    crowd: list[int]
    max_wait: float = 0.0
    autoadvance: bool = False  # sleeps jump the clock: waiting callers move time for everyone
    faults: bool = False  # sprinkle HTTP 500s and injected error 9s


PATTERNS = {
    "burst_every_second": Pattern(1, 240, [1.0], [10]),
    "steady_poll_20s": Pattern(2, 60, [20.0], [1, 2]),
    "just_under_a_minute": Pattern(3, 60, [29.9, 30.0, 59.9, 60.0], [3]),
    "random_no_wait": Pattern(4, 200, [0, 0.2, 1, 5, 15, 30, 59, 61], [1, 2, 4, 8]),
    "random_wait_short": Pattern(5, 200, [0, 0.5, 3, 20, 61], [1, 3, 6], 10.0, autoadvance=True),
    "random_wait_long": Pattern(6, 150, [0, 1, 7, 45], [1, 2, 5], 120.0, autoadvance=True),
    "random_with_faults": Pattern(
        7, 200, [0, 1, 5, 15, 30, 61], [1, 2, 4], 10.0, autoadvance=True, faults=True
    ),
}


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
async def test_never_more_than_two_identical_requests_in_any_minute(
    session: aiohttp.ClientSession, tmp_path: Path, pattern: str
) -> None:
    seed, steps, gaps, crowd, max_wait, autoadvance, faults = PATTERNS[pattern]
    rng = random.Random(seed)
    fake = FakeClock(autoadvance=autoadvance)
    state = _state(fake)
    calls = _calls(tmp_path)
    async with serve(create_app(state)) as url:
        smsc = make_client(session, url, fake, page_size=3, max_wait=max_wait)
        outcomes: list[object] = []
        for _ in range(steps):
            if faults and rng.random() < 0.1:
                state.inject(rng.choice([Fault("http_500"), Fault("error", code=9)]))
            batch = [rng.choice(calls)(smsc) for _ in range(rng.choice(crowd))]
            outcomes += await asyncio.gather(*batch, return_exceptions=True)
            fake.advance(rng.choice(gaps))

    assert identical_bursts(state, limit=2, window=60.0) == []
    unexpected = [o for o in outcomes if isinstance(o, BaseException | SmscError)]
    assert all(isinstance(o, SmscError) for o in unexpected), unexpected
    if not faults:
        # SMSC itself never had to refuse anything.
        assert all(rec.response_error is None for rec in state.requests)
    assert len(state.requests) >= 10
    assert smsc.stats.upstream_requests == len(state.requests)


def _state(fake: FakeClock) -> SimulatorState:
    state = SimulatorState(fake, login=LOGIN, password=PASSWORD)
    for task_id in range(1, 8):
        state.add_task(SimTask(task_id, f"Task {task_id}", TaskStatus.COMPLETED, rows=3))
    return state


async def test_full_window_serves_the_stale_list(
    client: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 2)
    await client.list_tasks()
    clock.advance(16)
    await client.list_tasks()
    clock.advance(16)
    sim.state.add_task(SimTask(3, "new", TaskStatus.PENDING))

    stale = await client.list_tasks()

    assert [t.id for t in stale] == [2, 1]
    assert len(sim.state.requests) == 2
    assert client.stats.stale_hits == 1
    clock.advance(30)  # 62 s after the first request
    assert [t.id for t in await client.list_tasks()] == [3, 2, 1]


async def test_full_window_without_a_cache_raises_with_retry_after(
    client: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 2)
    await client.list_page(cnt=5)
    clock.advance(20)
    await client.list_page(cnt=5)
    clock.advance(0.5)

    with pytest.raises(SmscBudgetError) as info:
        await client.list_page(cnt=5)

    assert info.value.retry_after == pytest.approx(40.5)
    # Our own budget, not SMSC: the words must not blame SMSC for a refusal it never made.
    assert str(info.value) == (
        "our own limit of identical SMSC requests a minute is used up (SMSC refused nothing); "
        "next try in 41 s"
    )
    assert info.value.sent is False
    assert len(sim.state.requests) == 2
    assert client.stats.throttled == 1


async def test_full_window_waits_on_the_clock_when_allowed(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 2)
    client = make_client(session, sim.url, clock, max_wait=90.0)
    await client.list_page(cnt=5)
    await client.list_page(cnt=5)

    third = asyncio.ensure_future(client.list_page(cnt=5))
    await until(lambda: clock.sleepers == 1)
    assert len(sim.state.requests) == 2
    clock.advance(60.9)
    await asyncio.sleep(0)
    assert not third.done()
    clock.advance(0.1)
    await third

    assert [rec.at - sim.state.requests[0].at for rec in sim.state.requests] == [0.0, 0.0, 61.0]
    assert client.stats.waits == 1


async def test_error_9_backs_off_that_request_and_pauses_briefly(
    client: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 3)
    sim.state.inject(Fault("error", code=9))

    with pytest.raises(SmscRateLimitedError) as info:
        await client.list_page(cnt=1)
    assert info.value.retry_after == 60.0
    assert str(info.value) == "SMSC answered error 9 (too many requests); next try in 60 s"
    with pytest.raises(SmscRateLimitedError):
        await client.list_page(cnt=1)
    # Another request waits out the short global pause (shorter than max_wait) on the clock.
    other = asyncio.ensure_future(client.list_page(cnt=2))
    await until(lambda: clock.sleepers == 1)
    assert len(sim.state.requests) == 1
    clock.advance(5)
    await other
    assert len(sim.state.requests) == 2

    with pytest.raises(SmscRateLimitedError):
        await client.list_page(cnt=1)
    clock.advance(55)
    await client.list_page(cnt=1)
    assert len(sim.state.requests) == 3
    assert client.stats.waits == 1


async def test_error_9_on_a_refresh_serves_the_stale_list(
    client: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 2)
    await client.list_tasks()
    clock.advance(20)
    sim.state.inject(Fault("error", code=9))

    tasks = await client.list_tasks()

    assert [t.id for t in tasks] == [2, 1]
    assert client.stats.errors_by_code == {"9": 1}


async def test_error_4_stops_every_call_for_half_an_hour(
    client: SmscClient, sim: Sim, clock: FakeClock, tmp_path: Path
) -> None:
    add_tasks(sim.state, 2)
    sim.state.inject(Fault("error", code=4))
    with pytest.raises(SmscIpBlockedError) as info:
        await client.list_tasks()
    assert info.value.retry_after == 1800.0
    assert "next attempt in 30 min" in str(info.value)

    for _ in range(29):
        clock.advance(60)
        for call in (client.list_tasks(), client.download(tmp_path, task_id=1)):
            with pytest.raises(SmscIpBlockedError) as info:
                await call
            assert info.value.retry_after is not None
            assert 0 < info.value.retry_after <= 1800 - 60
    assert len(sim.state.requests) == 1

    clock.advance(60)
    assert len(await client.list_tasks()) == 2
    assert len(sim.state.requests) == 2


async def test_wrong_password_costs_at_most_three_logins_per_half_hour(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock, tmp_path: Path
) -> None:
    add_tasks(sim.state, 2)
    client = make_client(
        session, sim.url, clock, credentials=SmscCredentials(login=LOGIN, password=WRONG_PASSWORD)
    )
    seen: list[SmscError] = []
    for _ in range(6 * 60):  # an hour of a busy bot: a burst of callers every 10 s
        calls = [client.list_tasks(), client.task_listing(), client.download(tmp_path, task_id=1)]
        for outcome in await asyncio.gather(*calls, return_exceptions=True):
            assert isinstance(outcome, SmscAuthError)
            seen.append(outcome)
        clock.advance(10)

    attempts = [rec.at - sim.state.requests[0].at for rec in sim.state.requests]
    assert sum(1 for t in attempts if t < 1800) == 3
    assert all(sum(1 for t in attempts if s <= t < s + 1800) <= 3 for s in attempts)
    assert sim.state.blocked_until == {}
    assert all(rec.response_error == 2 for rec in sim.state.requests)
    assert all(err.retry_after is not None for err in seen)
    assert "next login attempt in" in str(seen[-1])


async def test_concurrent_first_calls_with_a_wrong_password_make_one_attempt(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock, tmp_path: Path
) -> None:
    add_tasks(sim.state, 3)
    client = make_client(
        session, sim.url, clock, credentials=SmscCredentials(login=LOGIN, password=WRONG_PASSWORD)
    )

    outcomes = await asyncio.gather(
        client.list_tasks(),
        client.list_page(cnt=7),
        *(client.download(tmp_path, task_id=i) for i in (1, 2, 3)),
        return_exceptions=True,
    )

    assert all(isinstance(o, SmscAuthError) for o in outcomes)
    assert len(sim.state.requests) == 1


async def test_a_success_clears_the_auth_backoff(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 2)
    sim.state.inject(Fault("error", code=2))
    client = make_client(session, sim.url, clock)
    with pytest.raises(SmscAuthError):
        await client.list_tasks()
    clock.advance(600)

    assert len(await client.list_tasks()) == 2
    clock.advance(20)
    assert len(await client.list_page(cnt=1)) == 1
    assert len(sim.state.requests) == 3


async def test_concurrency_is_capped(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock, tmp_path: Path
) -> None:
    add_tasks(sim.state, 8)
    client = make_client(session, sim.url, clock)
    sim.state.inject(Fault("slow", seconds=1), count=30)

    calls: list[asyncio.Future[object]] = [
        asyncio.ensure_future(client.list_page(cnt=n)) for n in range(1, 13)
    ]
    calls += [asyncio.ensure_future(client.download(tmp_path, task_id=i)) for i in range(1, 9)]
    while not all(c.done() for c in calls):
        await until(lambda: clock.sleepers > 0 or all(c.done() for c in calls))
        await asyncio.sleep(0.01)  # let any request that could still start arrive
        assert sim.state.in_flight <= 4
        clock.advance(1)
    await asyncio.gather(*calls)

    assert sim.state.max_concurrent_seen == 4
    assert len(sim.state.requests) == 20
