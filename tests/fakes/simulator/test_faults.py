"""Injected faults: HTTP 500, garbage, HTML, SMSC errors, disconnects and slow answers."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from bot.clock import FakeClock
from bot.smsc.simulator import Fault, SimulatorState
from tests.fakes.simulator.support import AUTH, Sim, seed, serve
from tests.fakes.smsc_support import until

# --- faults --------------------------------------------------------------------------------------


async def test_fault_http_500(sim: Sim) -> None:
    sim.state.inject(Fault("http_500"))
    status, body = await sim.get(get_list=1)
    assert status == 500
    assert "Internal Server Error" in body
    assert (await sim.get(get_list=1, fmt=1))[0] == 200  # only the next request


async def test_fault_garbage(sim: Sim) -> None:
    sim.state.inject(Fault("garbage"))
    async with sim.session.get(sim.url, params={**AUTH, "get_list": "1", "fmt": "3"}) as resp:
        assert resp.status == 200
        body = await resp.read()
    with pytest.raises(ValueError):  # noqa: PT011 - JSON or UTF-8, either way not an answer
        json.loads(body)
    assert not body.startswith((b"ERROR", b"0,-", b"<", b"[", b"{", b"id ="))


async def test_fault_html(sim: Sim) -> None:
    sim.state.inject(Fault("html"))
    async with sim.session.get(sim.url, params={**AUTH, "get_list": "1"}) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert "<form" in await resp.text()


@pytest.mark.parametrize(
    ("fault", "fmt", "expected"),
    [
        (Fault("error", code=4), 1, "0,-4"),
        (
            Fault("error", code=9),
            3,
            '{"error": "duplicate request, wait a minute", "error_code": 9}',
        ),
        (Fault("error", code=5, fmt=0), 3, "ERROR = 5 (task or file not found)"),
        (
            Fault("error", code=77, fmt=2),
            0,
            "<result>\n<error>unknown error</error>\n<error_code>77</error_code>\n</result>",
        ),
    ],
)
async def test_fault_error(sim: Sim, fault: Fault, fmt: int, expected: str) -> None:
    sim.state.inject(fault)
    assert await sim.get(get_list=1, fmt=fmt) == (200, expected)
    assert sim.state.requests[-1].response_error == fault.code


async def test_fault_disconnect_post(sim: Sim) -> None:
    sim.state.inject(Fault("disconnect"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await sim.post(get_list=1)
    assert (await sim.post(get_list=1, fmt=1))[1].startswith("5,")
    assert len(sim.state.requests) == 2


async def test_fault_disconnect_get_needs_two_because_aiohttp_retries(sim: Sim) -> None:
    sim.state.inject(Fault("disconnect"), count=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await sim.get(get_list=1)
    assert sim.state.upstream_count(get_list=1) == 2


async def test_fault_slow_parks_until_the_clock_moves(sim: Sim) -> None:
    sim.state.inject(Fault("slow", seconds=30))
    pending = asyncio.create_task(sim.get(get_list=1, fmt=1))
    await until(lambda: sim.clock.sleepers == 1, "the parked request")
    sim.clock.advance(29)
    await asyncio.sleep(0.05)  # give a wrongly early answer the chance to show up
    assert not pending.done()
    sim.clock.advance(1)
    status, body = await pending
    assert status == 200
    assert body.startswith("5,")


async def test_fault_slow_is_dropped_when_the_client_gives_up(sim: Sim) -> None:
    sim.state.inject(Fault("slow", seconds=30))
    with pytest.raises(TimeoutError):
        async with sim.session.get(
            sim.url, params={**AUTH, "get_list": "1"}, timeout=aiohttp.ClientTimeout(total=0.2)
        ) as resp:
            await resp.read()
    await until(lambda: sim.state.in_flight == 0, "the dropped request to finish")
    assert sim.clock.sleepers == 0
    assert sim.state.requests[-1].response_error is None


async def test_parked_requests_do_not_stall_shutdown() -> None:
    clock = FakeClock()
    state = SimulatorState(clock)
    seed(state)
    state.inject(Fault("slow", seconds=3600))
    async with aiohttp.ClientSession() as session:
        async with serve(state) as url:
            pending = asyncio.create_task(session.get(url, params={**AUTH, "get_list": "1"}))
            await until(lambda: clock.sleepers == 1, "the parked request")
        # Leaving serve() ran runner.cleanup(): the parked request was released and answered.
        resp = await pending
        resp.release()
    assert clock.sleepers == 0
    assert state.in_flight == 0


def test_fault_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("teapot")  # type: ignore[arg-type]
