"""Task lifecycle on the fake clock, the demo scenario, the CLI and its bounded request log."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys

import aiohttp
import pytest

from bot.clock import FakeClock
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import PATH, SimTask, SimulatorState, demo_state
from tests.fakes.simulator.support import ROOT, MakeSim, Sim, serve

# --- lifecycle -----------------------------------------------------------------------------------


async def test_schedule_and_tick(sim: Sim) -> None:
    sim.state.schedule(30, 4, TaskStatus.RUNNING)
    sim.state.schedule(90, 4, TaskStatus.COMPLETED)
    sim.clock.advance(29)
    sim.state.tick()
    assert sim.state.tasks[4].status == TaskStatus.PENDING
    sim.clock.advance(1)
    sim.state.tick()
    assert sim.state.tasks[4].status == TaskStatus.RUNNING
    assert sim.state.tasks[4].time == "25.11.2026 12:00:30"  # FakeClock starts 09:00 UTC
    sim.clock.advance(100)
    # No tick: the request itself applies due transitions.
    assert (await sim.get(get_file=1, id=4))[1].startswith("phone;")
    assert sim.state.tasks[4].time == "25.11.2026 12:00:30"


async def test_late_transitions_keep_their_due_time(sim: Sim) -> None:
    sim.state.schedule(10, 4, TaskStatus.RUNNING)
    sim.clock.advance(600)
    sim.state.tick()
    assert sim.state.tasks[4].time == "25.11.2026 12:00:10"


def test_add_task_fills_defaults() -> None:
    state = SimulatorState(FakeClock())
    task = state.add_task(SimTask(10, "x", TaskStatus.RUNNING))
    assert (task.created, task.time, task.file) == (
        "25.11.2026 12:00:00",
        "25.11.2026 12:00:00",
        "task_10.csv",
    )
    with pytest.raises(ValueError, match="already exists"):
        state.add_task(SimTask(10, "again"))


async def test_demo_state_lifecycle() -> None:
    clock = FakeClock()
    state = demo_state(clock)
    by_name = {t.name: t for t in state.tasks.values()}
    assert len(state.tasks) == 8
    assert "Export 2026-11 <weekly> & co" in by_name
    friday, new_year, test = (
        by_name["Black Friday campaign"],
        by_name["Акция «Новый год»"],
        by_name["Тестовая выгрузка"],
    )
    assert {friday.status, new_year.status, test.status} == {TaskStatus.PENDING}
    clock.advance(30)
    state.tick()
    assert (friday.status, new_year.status) == (TaskStatus.RUNNING, TaskStatus.RUNNING)
    clock.advance(60)
    state.tick()
    assert (friday.status, new_year.status, test.status) == (
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELED,
    )
    clock.advance(90)  # 180 s: the first recurring export appears
    state.tick()
    assert len(state.tasks) == 9
    spawned = state.tasks[max(state.tasks)]
    assert spawned.status == TaskStatus.PENDING
    clock.advance(3600)  # an hour with nobody asking: caught up on the next tick
    state.tick()
    assert len(state.tasks) == 9 + 20
    assert spawned.status == TaskStatus.COMPLETED
    assert {t.status for t in state.tasks.values() if t.id > spawned.id} >= {
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
    }
    assert state.file_bytes(spawned.id).startswith(b"phone;")


async def test_demo_state_serves(make_sim: MakeSim) -> None:
    clock = FakeClock()
    state = demo_state(clock, login="u", password="p", apikey="k")
    async with aiohttp.ClientSession() as session, serve(state) as url:
        async with session.get(url, params={"apikey": "k", "get_list": "1", "fmt": "3"}) as resp:
            listed = json.loads(await resp.text())
        assert len(listed) == 8
        assert listed[0]["id"] > listed[-1]["id"]
        async with session.get(
            url,
            params={"login": "u", "psw": "p", "get_file": "1", "name": "vygruzka_sentyabr_2.csv"},
        ) as resp:
            assert resp.charset == "windows-1251"
            assert (await resp.read()).decode("cp1251").startswith("phone;")


# --- CLI -----------------------------------------------------------------------------------------


async def test_cli_serves_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from bot.smsc.simulator.cli import main; sys.exit(main(sys.argv[1:]))",
        "--port",
        "0",
        "--login",
        "cli",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        assert int(match[1]) > 0
        assert "login=cli psw=demo" in line
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                match[0] + PATH, params={"login": "cli", "psw": "demo", "get_list": "1", "fmt": "3"}
            ) as resp,
        ):
            assert len(json.loads(await resp.text())) == 8
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert proc.stderr is not None
        assert await proc.stderr.read() == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_request_log_can_be_bounded_for_long_runs() -> None:
    """The CLI demo may run for days: its request log keeps only the newest records."""
    from bot.clock import FakeClock
    from bot.smsc.simulator import SimulatorState

    state = SimulatorState(FakeClock())
    state.keep_requests = 10
    indices = [state.record_arrival("POST", {}, {"n": str(i)}, {"n": str(i)}) for i in range(25)]
    assert len(state.requests) <= 10
    assert state.requests[-1].params == {"n": "24"}
    state.record_answer(indices[-1], 9)
    assert state.requests[-1].response_error == 9
    state.record_answer(indices[0], 9)  # long forgotten: ignored, not an error
