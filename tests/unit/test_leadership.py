"""The leader's duties follow the lock: run while held, stop the process when it is lost."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import CollectorRegistry, generate_latest

import storage
from bot.clock import FakeClock
from bot.runtime.leadership import Leadership, leader_line
from bot.runtime.lifecycle import Lifecycle
from storage.election import LeaderInfo, PgLeaderLock
from tests.fakes.smsc_support import until
from tests.fakes.storage_support import T0, at


async def test_duties_run_only_while_leading_and_a_lost_lock_stops_the_process(
    pg_url: str,
) -> None:
    db = await storage.open_url(pg_url, now=T0)
    holder = PgLeaderLock(pg_url, "first")
    assert await holder.try_lead()  # someone else leads: this replica stands by
    lifecycle = Lifecycle()
    registry = CollectorRegistry()
    events: list[str] = []

    async def duty(stack: contextlib.AsyncExitStack) -> None:
        events.append("started")
        stack.callback(events.append, "stopped")

    leadership = Leadership(
        PgLeaderLock(pg_url, "second"),
        db,
        clock=FakeClock(start=T0),
        lifecycle=lifecycle,
        retry=0.05,
        registry=registry,
    )
    leadership.duties.append(duty)
    try:
        leadership.start()
        await asyncio.sleep(0.2)
        assert events == []
        assert not leadership.leading
        assert await leadership.leader() == LeaderInfo("first", None)
        await holder.close()  # the leader dies
        await until(lambda: events == ["started"], within=10)
        assert leadership.leading
        assert b'bot_leader{replica="second"} 1.0' in generate_latest(registry)
        assert await leadership.leader() == LeaderInfo("second", T0)
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?",
            ("second",),
        )
        await until(lambda: lifecycle.stopping, within=10)  # it cannot know it leads: it stops
        await until(lambda: events == ["started", "stopped"], within=10)
        assert not leadership.leading
        assert b'bot_leader{replica="second"} 0.0' in generate_latest(registry)
    finally:
        await leadership.stop()
        await holder.close()
        await storage.close_database(db)


def test_the_status_line_names_the_leader_and_since_when() -> None:
    now = at(5)
    assert leader_line(None, "me", now) == "Leader: none right now (this replica me stands by)"
    mine = leader_line(LeaderInfo("me", T0), "me", now)
    assert mine == "Leader: this replica (me) since 2026-11-25 09:00:00 UTC (300 s)"
    other = leader_line(LeaderInfo("other", None), "me", now)
    assert other == "Leader: other; this replica (me) stands by"
