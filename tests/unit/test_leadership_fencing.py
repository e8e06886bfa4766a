"""A leader begins a term when it takes the lock, and steps down once a newer term begins."""

from __future__ import annotations

import contextlib

import storage
from bot.clock import FakeClock
from bot.runtime.leadership import Leadership
from bot.runtime.lifecycle import Lifecycle
from storage.election import PgLeaderLock
from storage.fencing import begin_term, current_epoch
from tests.fakes.smsc_support import until
from tests.fakes.storage_support import T0


async def test_the_leader_gets_a_fresh_epoch_and_a_newer_term_stops_it(pg_url: str) -> None:
    db = await storage.open_url(pg_url, now=T0)
    earlier = await begin_term(db, "someone before", T0)
    lifecycle = Lifecycle()
    events: list[str] = []

    async def duty(stack: contextlib.AsyncExitStack) -> None:
        events.append("started")
        stack.callback(events.append, "stopped")

    leadership = Leadership(
        PgLeaderLock(pg_url, "fenced"),
        db,
        clock=FakeClock(start=T0),
        lifecycle=lifecycle,
        retry=0.05,
    )
    leadership.duties.append(duty)
    try:
        leadership.start()
        await until(lambda: events == ["started"], within=10)
        assert leadership.epoch is not None
        assert leadership.epoch > earlier
        assert await current_epoch(db) == leadership.epoch
        # Its lock connection still answers, yet another term began (it missed losing the lock).
        await begin_term(db, "usurper", T0)
        await until(lambda: lifecycle.stopping, within=10)
        await until(lambda: events == ["started", "stopped"], within=10)
        assert not leadership.leading
    finally:
        await leadership.stop()
        await storage.close_database(db)
