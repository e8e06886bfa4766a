"""End-to-end: SIGTERM ends the real `python -m bot` with exit 0 within 10 s in every state.

Each test puts the bot in one state (the Bot API refusing connections, Telegram's flood
control, start-up hanging on Telegram, webhook mode), sends SIGTERM and checks the exit code,
the deadline and that SMSC heard nothing new after "stopping". Work in flight cut off at the
deadline is covered here by the hung upload in test_e2e_hosted.py and, for a hung poll, in
process by test_lifecycle.py (its 7.5 s wait would only slow the suite down).
The 10 s is the operator's contract, measured from the signal; the bot aims well inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask, SimulatorState, create_app
from bot.tg_emulator import ApiFailure, TelegramEmulator
from tests.fakes.rig import (
    ADMIN_CHAT,
    LOGIN,
    PASSWORD,
    TOKEN,
    bot_env,
    bot_process,
    free_port,
    serve,
)
from tests.fakes.smsc_support import until

CONTRACT = 10.0  # seconds from SIGTERM to exit


class Stderr:
    """Drains a process's stderr as it comes (a full pipe would block the bot's logging)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        self._stream = proc.stderr
        self.text = ""
        self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while chunk := await self._stream.read(65536):
            self.text += chunk.decode(errors="replace")

    async def finish(self) -> str:
        await asyncio.wait_for(self._task, 10)
        return self.text


async def sigterm(proc: asyncio.subprocess.Process, stderr: Stderr) -> tuple[int, float, str]:
    """Send SIGTERM; return the exit code, the seconds until exit and the whole log."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), CONTRACT + 5)  # the margin: to report, not hang
    elapsed = loop.time() - started
    return code, elapsed, await stderr.finish()


def smsc_lists(sim: SimulatorState) -> int:
    return sum(1 for r in sim.requests if "get_list" in r.params)


@contextlib.asynccontextmanager
async def closing_server(port: int) -> AsyncIterator[list[int]]:
    """Accept on `port` and hang up at once, like a Bot API behind a failing proxy; count."""
    attempts: list[int] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(1)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    server = await asyncio.start_server(hang_up, "127.0.0.1", port)
    try:
        yield attempts
    finally:
        server.close()
        await server.wait_closed()


async def test_sigterm_after_the_bot_api_refused_connections_for_a_while(tmp_path: Path) -> None:
    """PTB backs off ever longer between failed polls (up to 30 s), deaf to a stop meanwhile."""
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    async with serve(create_app(sim)) as sim_url:
        emu = TelegramEmulator(token=TOKEN)
        await emu.start()
        port = emu.port
        env = bot_env(emu.url, sim_url, tmp_path / "bot.sqlite3", POLL_INTERVAL="20")
        async with bot_process(env, tmp_path) as proc:
            stderr = Stderr(proc)
            await emu.wait_until(lambda: emu.active_polls > 0, timeout=20)
            await until(lambda: smsc_lists(sim) >= 1, within=20)  # the watcher is polling
            await emu.stop()  # the Bot API goes away ...
            async with closing_server(port) as attempts:  # ... and every connection fails
                await until(lambda: len(attempts) >= 4, within=30)  # back-off grew past 3 s
                lists = smsc_lists(sim)
                code, elapsed, log = await sigterm(proc, stderr)
    assert code == 0, log
    assert elapsed < CONTRACT, log
    assert "stopping (SIGTERM)" in log
    assert "bot stopped" in log
    assert smsc_lists(sim) == lists  # the watcher stopped with the signal
    assert TOKEN not in log


async def test_sigterm_during_telegrams_flood_control_back_off(tmp_path: Path) -> None:
    """A 429 with retry_after 60 on getUpdates: PTB's retry loop sleeps 60.5 s, deaf to a stop."""
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        env = bot_env(emu.url, sim_url, tmp_path / "bot.sqlite3", POLL_INTERVAL="20")
        async with bot_process(env, tmp_path) as proc:
            stderr = Stderr(proc)
            await emu.wait_until(lambda: emu.active_polls > 0, timeout=20)
            emu.fail("getUpdates", ApiFailure.retry_after(60))
            emu.send_message(ADMIN_CHAT, "/start")  # ends the long poll; the next one gets 429
            await emu.wait_for("getUpdates", predicate=lambda c: c.status == 429, timeout=20)
            await until(lambda: smsc_lists(sim) >= 1, within=20)
            lists = smsc_lists(sim)
            code, elapsed, log = await sigterm(proc, stderr)
    assert code == 0, log
    assert elapsed < CONTRACT, log
    # PTB's own 60.5 s sleep used to hold the stop; the bot's getUpdates backoff
    # (bot/telegram/updates.py) is cancelled with the poll, so the stop is clean and no later
    # than the contract.
    assert "stopping (SIGTERM)" in log
    assert "bot stopped" in log
    assert smsc_lists(sim) == lists


@pytest.mark.parametrize(
    "method",
    [
        "getMe",  # PTB's initialize
        "setMyCommands",  # our start hook: database and session already open
        "deleteWebhook",  # the updater's bootstrap: everything else already running
    ],
)
async def test_sigterm_while_start_up_hangs_on_telegram(tmp_path: Path, method: str) -> None:
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        emu.fail(method, ApiFailure.timeout())
        env = bot_env(emu.url, sim_url, tmp_path / "bot.sqlite3")
        async with bot_process(env, tmp_path) as proc:
            stderr = Stderr(proc)
            await emu.wait_for(method, timeout=20)  # held: never answered
            code, elapsed, log = await sigterm(proc, stderr)
        emu.release_held()
    assert code == 0, log
    assert elapsed < CONTRACT, log
    assert "Traceback" not in log
    assert emu.calls_to("getUpdates") == []  # it never got as far as polling
    if method != "getMe":  # resources were open: they were closed
        assert "bot stopped" in log


async def test_sigterm_in_webhook_mode(tmp_path: Path) -> None:
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    sim.add_task(SimTask(3, "via webhook", TaskStatus.COMPLETED))
    port = free_port()
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        env = bot_env(
            emu.url,
            sim_url,
            tmp_path / "bot.sqlite3",
            WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
            WEBHOOK_SECRET="s3cret_Hook-token",
            PORT=str(port),
            POLL_INTERVAL="20",
        )
        async with bot_process(env, tmp_path) as proc:
            stderr = Stderr(proc)
            await emu.wait_for("setWebhook", timeout=20)
            emu.send_message(ADMIN_CHAT, "/start")
            await emu.wait_for("sendMessage", timeout=20)  # updates arrive through our server
            await until(lambda: smsc_lists(sim) >= 1, within=20)
            lists = smsc_lists(sim)
            code, elapsed, log = await sigterm(proc, stderr)
    assert code == 0, log
    assert elapsed < CONTRACT, log
    assert "bot stopped" in log
    assert smsc_lists(sim) == lists
    assert "s3cret_Hook-token" not in log


async def test_sigterm_while_setting_the_webhook_hangs(tmp_path: Path) -> None:
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    port = free_port()
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        emu.fail("setWebhook", ApiFailure.timeout())
        env = bot_env(
            emu.url,
            sim_url,
            tmp_path / "bot.sqlite3",
            WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
            WEBHOOK_SECRET="s3cret_Hook-token",
            PORT=str(port),
        )
        async with bot_process(env, tmp_path) as proc:
            stderr = Stderr(proc)
            await emu.wait_for("setWebhook", timeout=20)
            code, elapsed, log = await sigterm(proc, stderr)
        emu.release_held()
    assert code == 0, log
    assert elapsed < CONTRACT, log
    assert "bot stopped" in log
    assert "Traceback" not in log
