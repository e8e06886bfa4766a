"""Honest answers: `task_listing()` says how fresh its list is; a slow SMSC keeps nobody waiting."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import aiohttp
import pytest

from bot.clock import FakeClock
from bot.smsc.client import SmscClient
from bot.smsc.errors import (
    SmscBudgetError,
    SmscError,
    SmscHttpError,
    SmscRateLimitedError,
    SmscSlowError,
)
from bot.smsc.listing import TaskListing
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import Fault, SimTask
from bot.texts.freshness import ago, freshness_note, listing_line, room_for, with_note
from tests.fakes.smsc_support import Sim, add_tasks, make_client, until


@pytest.fixture
def patient(session: aiohttp.ClientSession, sim: Sim, clock: FakeClock) -> SmscClient:
    """A client that gives up waiting for a person after 0.2 s (real time) instead of 10 s."""
    return make_client(session, sim.url, clock, reply_patience=0.2)


async def test_a_fresh_list_has_no_note(client: SmscClient, sim: Sim, clock: FakeClock) -> None:
    add_tasks(sim.state, 2)
    listing = await client.task_listing()

    assert listing.fresh
    assert [t.id for t in listing.tasks] == [2, 1]
    assert listing.fetched_at == clock.now()
    assert freshness_note(listing, clock.now()) == ""
    assert listing_line(listing, clock.now()) == "Task list: as of 12:00:00 MSK (just now), 2 tasks"


async def test_http_500_serves_the_old_list_saying_so(
    client: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 2)
    await client.task_listing()
    clock.advance(75)
    sim.state.inject(Fault("http_500"))

    listing = await client.task_listing()

    assert not listing.fresh
    assert [t.id for t in listing.tasks] == [2, 1]
    assert isinstance(listing.failure, SmscHttpError)
    assert listing.failed_at == clock.now()
    note = freshness_note(listing, clock.now() + timedelta(seconds=45))
    assert note == (
        "⚠️ <i>List as of 12:00:00 MSK (2 min ago); SMSC answered HTTP 500 at 12:01:15 MSK.</i>"
    )
    # The watcher's list_tasks() still raises: it must not record an old list as news.
    sim.state.inject(Fault("http_500"))
    clock.advance(61)
    with pytest.raises(SmscHttpError):
        await client.list_tasks()


async def test_error_9_says_error_9_and_when_the_next_try_is(
    client: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 1)
    await client.task_listing()
    clock.advance(20)
    sim.state.inject(Fault("error", code=9))

    listing = await client.task_listing()

    assert isinstance(listing.failure, SmscRateLimitedError)
    note = freshness_note(listing, clock.now())
    assert "List as of 12:00:00 MSK (20 s ago)" in note
    assert "SMSC answered error 9 (too many requests) at 12:00:20 MSK, next try in 60 s." in note


async def test_our_own_budget_is_not_blamed_on_smsc(
    client: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 1)
    for _ in range(2):
        await client.task_listing()
        clock.advance(16)  # past the 15 s cache, inside SMSC's minute

    listing = await client.task_listing()

    assert isinstance(listing.failure, SmscBudgetError)
    assert len(sim.state.requests) == 2
    note = freshness_note(listing, clock.now())
    assert "SMSC answered" not in note
    assert "our own limit of identical SMSC requests a minute is used up" in note
    assert "since 12:00:32 MSK, next try in 29 s" in note


async def test_a_slow_smsc_answers_from_the_cache_and_fills_it_in_the_background(
    patient: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 2)
    await patient.task_listing()
    clock.advance(61)
    sim.state.add_task(SimTask(3, "New", TaskStatus.COMPLETED))
    sim.state.inject(Fault("slow", seconds=30))

    listing = await patient.task_listing()  # SMSC is parked: the cached list answers

    assert not listing.fresh
    assert [t.id for t in listing.tasks] == [2, 1]
    assert isinstance(listing.failure, SmscSlowError)
    note = freshness_note(listing, clock.now())
    assert "SMSC has not yet answered the request sent at 12:01:01 MSK" in note
    # The request was not abandoned: once SMSC answers, the cache has the new list.
    clock.advance(30)
    await until(lambda: patient.listing().fresh, within=10)
    assert [t.id for t in patient.listing().tasks] == [3, 2, 1]
    assert len(sim.state.requests) == 2


async def test_a_slow_smsc_with_nothing_cached_is_a_clear_error(
    patient: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 1)
    sim.state.inject(Fault("slow", seconds=30))

    with pytest.raises(SmscSlowError, match="has not answered for 1 s"):
        await patient.task_listing()

    clock.advance(30)
    await until(lambda: patient.listing().fetched_at is not None, within=10)
    listing = await patient.task_listing()
    assert listing.fresh
    assert [t.id for t in listing.tasks] == [1]
    assert len(sim.state.requests) == 1  # the late answer filled the cache: no second request


async def test_concurrent_impatient_callers_share_the_one_slow_request(
    patient: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 1)
    await patient.task_listing()
    clock.advance(61)
    sim.state.inject(Fault("slow", seconds=30))

    listings = await asyncio.gather(*(patient.task_listing() for _ in range(5)))

    assert all(isinstance(x.failure, SmscSlowError) for x in listings)
    assert len(sim.state.requests) == 2
    clock.advance(30)
    await until(lambda: patient.listing().fresh, within=10)


def test_the_note_escapes_what_it_shows() -> None:
    clock = FakeClock()
    listing = TaskListing(
        tasks=(),
        fetched_at=clock.now() - timedelta(hours=2, minutes=5),
        fresh=False,
        failure=SmscError("x", cause="SMSC said <b>ERROR & co</b>"),
        failed_at=clock.now(),
        next_attempt_at=clock.now() + timedelta(seconds=300),
    )
    note = freshness_note(listing, clock.now())
    assert note == (
        "⚠️ <i>List as of 09:55:00 MSK (2 h 05 min ago); SMSC said &lt;b&gt;ERROR &amp; co&lt;/b&gt;"
        " at 12:00:00 MSK, next try in 5 min.</i>"
    )
    assert with_note("body", note) == f"body\n\n{note}"
    assert with_note("body", "") == "body"
    assert room_for("") == 4096
    assert room_for(note) < 4096 - len(note)


def test_an_overlong_cause_is_cut() -> None:
    clock = FakeClock()
    listing = TaskListing(
        tasks=(),
        fetched_at=None,
        fresh=False,
        failure=SmscError("x", cause="y" * 10_000),
        failed_at=clock.now(),
    )
    note = freshness_note(listing, clock.now())
    assert note.startswith("⚠️ <i>No task list from SMSC yet; yyy")
    assert len(note) < 300


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "just now"),
        (5, "5 s ago"),
        (59, "59 s ago"),
        (125, "2 min ago"),
        (3 * 3600 + 300, "3 h 05 min ago"),
    ],
)
def test_ago(seconds: int, expected: str) -> None:
    now = FakeClock().now()
    assert ago(now - timedelta(seconds=seconds), now) == expected
