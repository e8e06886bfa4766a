"""What the SMSC client tests share: the simulator on loopback, a client, a fake clock."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.clock import FakeClock
from bot.smsc.budget import BudgetStore
from bot.smsc.client import SmscClient, SmscClientConfig, SmscCredentials
from bot.smsc.errors import (
    SmscApiError,
    SmscAuthError,
    SmscIpBlockedError,
    SmscNotFoundError,
    SmscParameterError,
    SmscRateLimitedError,
    SmscUnknownApiError,
)
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask, SimulatorState, create_app
from tests.fakes.rig import serve

LOGIN = "acme"
PASSWORD = "pa55-Секрет-0xC0FFEE"
WRONG_PASSWORD = "wr0ng-Секрет-0xBADBAD"
APIKEY = "key-6f1c2a9d4b7e"

# Each SMSC error code and the exception it becomes (7 is not on the API page: an unknown code).
ERRORS: dict[int, type[SmscApiError]] = {
    1: SmscParameterError,
    2: SmscAuthError,
    4: SmscIpBlockedError,
    5: SmscNotFoundError,
    9: SmscRateLimitedError,
    7: SmscUnknownApiError,
}


@dataclass
class Sim:
    """A running simulator: its state and its base URL."""

    state: SimulatorState
    url: str


def fake_smsc(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.Application:
    """A one-route app standing in for SMSC when the simulator cannot produce a shape."""
    app = web.Application()
    app.router.add_route("*", "/sys/downloads.php", handler)
    return app


def make_client(
    session: aiohttp.ClientSession,
    url: str,
    clock: FakeClock,
    *,
    credentials: SmscCredentials | None = None,
    budget: BudgetStore | None = None,
    **config: Any,
) -> SmscClient:
    """Build a client for the simulator at `url` with the right password by default."""
    return SmscClient(
        session,
        credentials or SmscCredentials(login=LOGIN, password=PASSWORD),
        config=SmscClientConfig(base_url=url + "/", **config),
        clock=clock,
        budget=budget,
    )


def add_tasks(state: SimulatorState, count: int, *, rows: int = 5) -> None:
    """Add completed tasks 1..count."""
    for task_id in range(1, count + 1):
        state.add_task(SimTask(task_id, f"Task {task_id}", TaskStatus.COMPLETED, rows=rows))


def identical_bursts(
    state: SimulatorState, *, limit: int = 2, window: float = 60.0
) -> list[tuple[str, list[float]]]:
    """Return every run of more than `limit` identical requests within `window` seconds."""
    times: dict[str, list[float]] = defaultdict(list)
    for rec in state.requests:
        times[json.dumps(SimulatorState.identity(rec.params))].append(rec.at)
    bursts: list[tuple[str, list[float]]] = []
    for identity, stamps in times.items():
        stamps.sort()
        bursts.extend(
            (identity, stamps[i : i + limit + 1])
            for i in range(len(stamps) - limit)
            if stamps[i + limit] - stamps[i] <= window
        )
    return bursts


async def until(
    predicate: Callable[[], bool], what: str = "the condition", *, within: float = 5.0
) -> None:
    """Let the loop run (real I/O on loopback) until `predicate()` holds; `within` is a net."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"still waiting for {what} after {within} s")
        await asyncio.sleep(0.001)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test says so."""
    return FakeClock()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One real client session, closed at the end."""
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[Sim]:
    """The SMSC simulator on loopback, sharing the test's clock."""
    state = SimulatorState(clock, login=LOGIN, password=PASSWORD, apikey=APIKEY)
    async with serve(create_app(state)) as url:
        yield Sim(state, url)


@pytest.fixture
def client(session: aiohttp.ClientSession, sim: Sim, clock: FakeClock) -> SmscClient:
    """A client with production etiquette talking to the simulator."""
    return make_client(session, sim.url, clock)
