"""The real `python -m bot` in a subprocess, with its two peers, its stderr and its SIGTERM.

`peers()` starts the SMSC simulator and the Bot API emulator for one process test; `Peers.env`
is the process's environment, as an operator would set it (tests/fakes/rig.py `bot_env`), plus
the test-only knobs that spare a test the bot's real-time waits (bot/runtime/resources.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from bot.clock import FakeClock
from bot.runtime.resources import TEST_FIRST_POLL_DELAY, TEST_GET_UPDATES_BACKOFF
from bot.smsc.simulator import SimulatorState, create_app
from bot.tg_emulator import TelegramEmulator
from tests.fakes.rig import LOGIN, PASSWORD, TOKEN, bot_env, serve

# The watcher's first poll at once instead of 2 s after start: for tests that wait for it.
POLL_AT_ONCE = {TEST_FIRST_POLL_DELAY: "0"}


def get_updates_backoff(*waits: float) -> dict[str, str]:
    """The environment for a getUpdates backoff of `waits` seconds (the last one repeats)."""
    return {TEST_GET_UPDATES_BACKOFF: ",".join(str(w) for w in waits)}


@dataclass
class Peers:
    """The SMSC simulator and the Bot API emulator one bot process talks to."""

    sim: SimulatorState
    sim_url: str
    emu: TelegramEmulator

    def env(self, db_path: Path, **extra: str) -> dict[str, str]:
        """The bot's environment pointed at these peers (`extra` wins)."""
        return bot_env(self.emu.url, self.sim_url, db_path, **extra)

    def smsc_lists(self) -> int:
        """How many task lists SMSC was asked for."""
        return sum(1 for r in self.sim.requests if "get_list" in r.params)


@contextlib.asynccontextmanager
async def peers() -> AsyncIterator[Peers]:
    """A fresh simulator (auto-advancing fake clock) and emulator, stopped on the way out.

    A test may stop the emulator earlier (the Bot API going away): stopping is idempotent.
    """
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        yield Peers(sim, sim_url, emu)


class Stderr:
    """Drains a process's stderr as it comes (a full pipe would block the bot's logging)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        self._stream = proc.stderr
        self.text = ""
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while chunk := await self._stream.read(65536):
            self.text += chunk.decode(errors="replace")
            self._changed.set()
        self._changed.set()

    async def wait_for(self, found: Callable[[str], bool], *, within: float) -> bool:
        """Wait until `found(text)` (True) or the stream ended or `within` passed (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not found(self.text):
            if self._task.done():
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))
            if loop.time() >= deadline:
                return found(self.text)
        return True

    def events(self) -> list[str]:
        """The `event` of every JSON log line so far (LOG_FORMAT=json)."""
        found = []
        for line in self.text.splitlines():
            with contextlib.suppress(ValueError):
                data = json.loads(line)
                if isinstance(data, dict) and isinstance(data.get("event"), str):
                    found.append(data["event"])
        return found

    async def finish(self) -> str:
        """The whole log, once the process closed its stderr."""
        await asyncio.wait_for(self._task, 10)
        return self.text


async def sigterm(
    proc: asyncio.subprocess.Process, stderr: Stderr, *, within: float
) -> tuple[int, float, str]:
    """Send SIGTERM; return the exit code, the seconds until exit and the whole log.

    `within`: the stop's contract; the wait gives up 5 s after it (to report, not hang).
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), within + 5)
    elapsed = loop.time() - started
    return code, elapsed, await stderr.finish()
