"""A playground started in the test's event loop, on a FakeClock, with a known SMSC account."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from bot.clock import FakeClock
from bot.playground import world
from bot.playground.runner import Playground, PlaygroundOptions
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask, SimulatorState
from bot.tg_emulator import Call

FIRST = 50001
SMALL = FIRST  # a completed task with a small file, for /get
PENDING = FIRST + 12  # the newest: the one the panel completes
TASKS = 13  # more than one /tasks page (10), so there is an "Older" button


def known_account(clock: FakeClock) -> SimulatorState:
    """An SMSC account with no scripted changes: only the test moves it."""
    state = SimulatorState(clock, login=world.SMSC_LOGIN, password=world.SMSC_PASSWORD)
    for n in range(TASKS - 1):
        state.add_task(
            SimTask(
                FIRST + n,
                f"Export <{n}> & co" if n == 1 else f"Export number {n}",
                TaskStatus.COMPLETED if n % 3 != 2 else TaskStatus.FAILED,
                created=f"{n + 1:02d}.11.2026 10:00:00",
                time=f"{n + 1:02d}.11.2026 10:01:00",
                rows=40,
            )
        )
    state.add_task(SimTask(PENDING, "Fresh export", created="20.11.2026 10:00:00", rows=30))
    return state


@contextlib.asynccontextmanager
async def running_playground(tmp_path: Path, **overrides: Any) -> AsyncIterator[Playground]:
    """A started playground on a free port; its first watcher poll (the baseline) done."""
    clock = FakeClock(autoadvance=True)
    options = PlaygroundOptions(
        port=0,
        database=tmp_path / "bot.sqlite3",
        clock=clock,
        state=known_account(clock),
        schedule_watcher=False,
    )
    for name, value in overrides.items():
        setattr(options, name, value)
    async with Playground(options) as pg:
        await poll(pg)
        yield pg


async def poll(pg: Playground) -> None:
    """One watcher poll after SMSC's identical-request window and the list cache have passed."""
    clock = pg.clock
    assert isinstance(clock, FakeClock)
    clock.advance(61)
    await pg.services.watcher.poll()


def in_chat(chat_id: int, thread_id: int | None = None) -> Any:
    """A predicate for `emu.wait_for`: a call to this chat (and topic)."""

    def check(call: Call) -> bool:
        return call.params.get("chat_id") == chat_id and (
            thread_id is None or call.params.get("message_thread_id") == thread_id
        )

    return check


async def say(
    http: aiohttp.ClientSession, pg: Playground, chat_id: int, text: str, **extra: Any
) -> Call:
    """Type `text` through the JSON API; return the bot's next sendMessage/sendDocument there."""
    before = len(pg.emu.calls)
    async with http.post(
        f"{pg.url}/api/chats/{chat_id}/messages", json={"text": text, **extra}
    ) as resp:
        assert resp.status == 201, await resp.text()
    await pg.emu.wait_until(
        lambda: any(
            c.method in ("sendMessage", "sendDocument") and in_chat(chat_id)(c)
            for c in pg.emu.calls[before:]
        ),
        timeout=15.0,
    )
    return next(
        c
        for c in pg.emu.calls[before:]
        if c.method in ("sendMessage", "sendDocument") and in_chat(chat_id)(c)
    )
