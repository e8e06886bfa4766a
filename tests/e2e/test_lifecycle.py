"""The lifecycle (one stop deadline, work in flight) and the monotonic schedule (issues 8, 10).

The stop's own timings are real time by design (they bound what the operator waits for), so
the tests here give it tiny budgets; the schedule runs on the injected FakeClock.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from pathlib import Path

import pytest

import storage
from bot.clock import FakeClock
from bot.runtime.app import RuntimeOptions, build_application
from bot.runtime.lifecycle import Lifecycle, StopTimes
from bot.runtime.periodic import Periodic
from bot.runtime.resources import FIRST_POLL_DELAY
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import Fault, SimTask
from tests.fakes.rig import REPO, Rig, make_settings, running_rig
from tests.fakes.smsc_support import until

TINY = StopTimes(deadline=0.4, closing=0.2)  # work in flight gets 0.2 s of real time


def smsc_lists(rig: Rig) -> int:
    return sum(1 for r in rig.sim.requests if "get_list" in r.params)


async def polls_reach(rig: Rig, count: int) -> None:
    await until(lambda: rig.services.watcher.polls >= count)
    assert rig.services.watcher.polls == count


async def settle() -> None:
    """Let every ready task run (the loop's wake-ups after clock.advance)."""
    for _ in range(20):
        await asyncio.sleep(0)


# ---- the clock ---------------------------------------------------------------------------------


async def test_sleep_until_parks_even_on_an_autoadvancing_clock() -> None:
    clock = FakeClock(autoadvance=True)
    timer = asyncio.create_task(clock.sleep_until(clock.monotonic() + 60))
    await settle()
    assert not timer.done()  # a background timer never drives time itself
    assert (clock.sleepers, clock.timers) == (0, 1)  # `sleepers` still means waiting requests
    clock.advance(60)
    await asyncio.wait_for(timer, 5)


def test_a_wall_clock_step_leaves_monotonic_time_alone() -> None:
    clock = FakeClock()
    mono, wall = clock.monotonic(), clock.now()
    clock.step_wall(-600)
    assert clock.monotonic() == mono
    assert (wall - clock.now()).total_seconds() == 600


# ---- Periodic ---------------------------------------------------------------------------------


async def test_periodic_runs_first_then_every_interval_and_survives_a_failing_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    runs: list[float] = []

    async def action() -> None:
        runs.append(clock.monotonic())
        if len(runs) == 2:
            raise RuntimeError("one bad run")

    start = clock.monotonic()
    async with Periodic("tick", action, clock=clock, lifecycle=Lifecycle(), interval=30, first=2):
        for step in (2, 30, 30, 29):
            clock.advance(step)
            await settle()
    assert runs == [start + 2, start + 32, start + 62]  # not at +91: one second short
    assert "tick failed" in caplog.text


async def test_run_now_takes_the_due_tick_instead_of_adding_one() -> None:
    clock = FakeClock()
    calls = 0

    async def action() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return calls

    periodic = Periodic("tick", action, clock=clock, lifecycle=Lifecycle(), interval=60, first=2)
    async with periodic:
        clock.advance(61)  # the loop's first tick is due ...
        assert await periodic.run_now() == 1  # ... and this is it
        await settle()
        assert calls == 1
        assert periodic.next_due == clock.monotonic() + 60
        clock.advance(60)
        await settle()
        assert calls == 2  # the schedule goes on from the manual run


async def test_a_stop_ends_a_waiting_schedule_at_once() -> None:
    clock = FakeClock()
    lifecycle = Lifecycle(TINY)
    periodic = Periodic(
        "tick", lambda: asyncio.sleep(0), clock=clock, lifecycle=lifecycle, interval=60, first=2
    )
    async with periodic:
        lifecycle.request_stop("test")
        await settle()
        clock.advance(120)
        await settle()
    assert periodic.runs == 0  # no run starts once the stop is asked for


# ---- Lifecycle --------------------------------------------------------------------------------


async def test_work_in_flight_is_cut_off_at_the_deadline_minus_the_closing_reserve() -> None:
    lifecycle = Lifecycle(TINY)
    stopped: list[str] = []
    lifecycle.on_stop(lambda: stopped.append("no new work"))

    async def hung() -> None:
        with lifecycle.inflight.tracking():
            await asyncio.Event().wait()

    work = asyncio.create_task(hung())
    await settle()
    lifecycle.request_stop("test")
    lifecycle.request_stop("again")  # idempotent: one deadline
    assert stopped == ["no new work"]
    assert 0 < lifecycle.work_remaining() <= TINY.work
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(work, 5)

    async def late() -> None:  # work that starts after the cut-off ends at once
        with lifecycle.inflight.tracking():
            await asyncio.sleep(0)
            raise AssertionError("not reached")

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(late())
    lifecycle.stopped()


async def test_a_stop_during_start_up_cancels_it() -> None:
    lifecycle = Lifecycle(TINY)
    closed: list[bool] = []

    async def start_up() -> None:
        try:
            await asyncio.Event().wait()  # e.g. getMe that never answers
        finally:
            closed.append(True)

    asyncio.get_running_loop().call_soon(lifecycle.request_stop, "test")
    assert await lifecycle.start_up(start_up()) is False
    assert closed == [True]


async def test_a_start_up_error_propagates() -> None:
    async def start_up() -> None:
        raise ValueError("bad token")

    with pytest.raises(ValueError, match="bad token"):
        await Lifecycle(TINY).start_up(start_up())


async def test_bounded_cancels_a_step_that_overruns(caplog: pytest.LogCaptureFixture) -> None:
    lifecycle = Lifecycle(TINY)
    lifecycle.request_stop("test")
    assert await lifecycle.bounded(asyncio.sleep(0), within=1, what="a quick step")
    assert not await lifecycle.bounded(asyncio.Event().wait(), within=0.05, what="a hung step")
    assert "a hung step took longer than 0.1 s and was cancelled" in caplog.text
    lifecycle.stopped()


# ---- the production poll loop in the rig ------------------------------------------------------


async def test_polls_continue_at_poll_interval_after_the_wall_clock_steps_back(
    tmp_path: Path,
) -> None:
    """An NTP correction or a VM resume: 10 minutes back. The monotonic schedule goes on."""
    async with running_rig(tmp_path) as rig:
        rig.clock.advance(FIRST_POLL_DELAY)
        await polls_reach(rig, 1)
        rig.clock.step_wall(-600)
        for expected in (2, 3, 4):
            rig.clock.advance(rig.settings.poll_interval)
            await polls_reach(rig, expected)
        assert smsc_lists(rig) == 4
        assert rig.services.watching


async def test_the_rig_runs_the_production_poll_loop(tmp_path: Path) -> None:
    async with running_rig(tmp_path) as rig:
        await rig.finish_task(SimTask(5, "looped", TaskStatus.RUNNING), TaskStatus.FAILED)
        polls = rig.services.watcher.polls
        assert polls == 2  # Rig.poll's runs were the loop's ticks, not extra ones
        rig.sim.add_task(SimTask(6, "seen by the loop", TaskStatus.RUNNING))
        rig.clock.advance(rig.settings.poll_interval)
        await polls_reach(rig, polls + 1)
        assert 6 in await storage.load_known_statuses(rig.services.db)


async def test_a_stop_cuts_off_a_hung_poll_and_asks_smsc_nothing_more(tmp_path: Path) -> None:
    clock = FakeClock()  # the "slow" answer parks until the clock moves: never, here
    async with running_rig(
        tmp_path, clock=clock, options={"stop_times": TINY, "run_delivery": False}
    ) as rig:
        rig.sim.inject(Fault("slow", seconds=3600))
        clock.advance(FIRST_POLL_DELAY)
        await until(lambda: smsc_lists(rig) == 1)
        await rig.stop()  # returns once the poll in flight was cut off
        assert not rig.app.bot_data.running
        assert smsc_lists(rig) == 1


async def test_a_failed_start_closes_what_it_opened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = make_settings(tmp_path, "http://127.0.0.1:9", "http://127.0.0.1:9")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        options = RuntimeOptions(http_host="127.0.0.1", http_port=taken.getsockname()[1])
        app = build_application(settings, options=options)
        with pytest.raises(OSError, match="address already in use"):
            await app.bot_data.runtime.start(app)  # the web server cannot bind
    assert not app.bot_data.running
    assert "bot stopped" in caplog.text  # the database and the session were closed
    await app.bot_data.runtime.stop(app)  # nothing left to stop: a no-op


WEDGED = """
import asyncio, logging, os, signal, sys, time
from bot.runtime.lifecycle import Lifecycle, StopTimes

async def main():
    lifecycle = Lifecycle(StopTimes(deadline=1.0, closing=0.5, overrun=0.5))
    with lifecycle.handling_signals():
        os.kill(os.getpid(), signal.SIGTERM)
        await lifecycle.wait_for_stop()
        time.sleep(30)  # a stop step that blocks the event loop: nothing async can end it

logging.basicConfig(level=logging.INFO)
asyncio.run(main())
sys.exit(3)  # not reached
"""


async def test_a_signalled_stop_that_overruns_ends_the_process_at_the_deadline(
    tmp_path: Path,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WEDGED,
        cwd=REPO,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 20)  # not the 30 s sleep
    log = stderr.decode()
    assert proc.returncode == 0, log
    assert "stopping (SIGTERM)" in log
    assert "stop overran its deadline; exiting now" in log
