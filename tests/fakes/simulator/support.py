"""The SMSC simulator served on loopback for its own tests: a seeded state and a session."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.clock import FakeClock
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import PATH, SimTask, SimulatorState, create_app

ROOT = Path(__file__).resolve().parents[3]
AUTH = {"login": "demo", "psw": "demo"}


@dataclass
class Sim:
    state: SimulatorState
    clock: FakeClock
    url: str
    session: aiohttp.ClientSession

    async def get(self, **params: Any) -> tuple[int, str]:
        """GET with the demo credentials plus `params`; return status and text."""
        query = {**AUTH, **{k: str(v) for k, v in params.items()}}
        async with self.session.get(self.url, params=query) as resp:
            return resp.status, await resp.text()

    async def post(self, **params: Any) -> tuple[int, str]:
        """POST the demo credentials plus `params` as a urlencoded form."""
        form = {**AUTH, **{k: str(v) for k, v in params.items()}}
        async with self.session.post(self.url, data=form) as resp:
            return resp.status, await resp.text()


@contextlib.asynccontextmanager
async def serve(state: SimulatorState) -> AsyncIterator[str]:
    """Run the app on a free loopback port; yield the endpoint URL."""
    runner = web.AppRunner(create_app(state), shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}{PATH}"
    finally:
        await runner.cleanup()


def seed(state: SimulatorState) -> None:
    """Add the five tasks most tests list and download."""
    for task in (
        SimTask(
            1,
            "Рассылка октябрь",
            TaskStatus.COMPLETED,
            "01.11.2026 10:00:00",
            "01.11.2026 10:01:00",
            rows=10,
        ),
        SimTask(
            2,
            "Export 2026-11 <weekly> & co",
            TaskStatus.COMPLETED,
            "02.11.2026 10:00:00",
            "02.11.2026 10:02:00",
            file="weekly.csv",
        ),
        SimTask(
            3, "Выгрузка, часть 2", TaskStatus.RUNNING, "03.11.2026 10:00:00", "03.11.2026 10:03:00"
        ),
        SimTask(4, "Pending", TaskStatus.PENDING, "04.11.2026 10:00:00"),
        SimTask(
            5,
            'Отчёт "VIP"',
            TaskStatus.COMPLETED,
            "05.11.2026 10:00:00",
            "05.11.2026 10:05:00",
            file="vip.csv",
            encoding="cp1251",
            rows=20,
        ),
    ):
        state.add_task(task)


MakeSim = Callable[..., Awaitable[Sim]]
