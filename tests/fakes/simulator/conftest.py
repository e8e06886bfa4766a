"""Fixtures of the simulator's tests: seeded simulators on loopback, each with its own FakeClock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.clock import FakeClock
from bot.smsc.simulator import SimulatorState
from tests.fakes.simulator.support import MakeSim, Sim, seed, serve


@pytest.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    """Build seeded simulators with custom options; everything is torn down after the test."""
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def make(*, seeded: bool = True, **options: Any) -> Sim:
            clock = FakeClock()
            state = SimulatorState(clock, **options)
            if seeded:
                seed(state)
            url = await stack.enter_async_context(serve(state))
            return Sim(state, clock, url, session)

        yield make


@pytest.fixture
async def sim(make_sim: MakeSim) -> Sim:
    return await make_sim()
