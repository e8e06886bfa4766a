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
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask
from bot.tg_emulator import ApiFailure
from tests.fakes.processes import (
    POLL_AT_ONCE,
    Peers,
    Stderr,
    get_updates_backoff,
    peers,
    sigterm,
)
from tests.fakes.rig import ADMIN_CHAT, TOKEN, bot_process, free_port
from tests.fakes.smsc_support import until

CONTRACT = 10.0  # seconds from SIGTERM to exit


async def stop_once_watching(
    bot: Peers, proc: asyncio.subprocess.Process, stderr: Stderr
) -> tuple[str, int]:
    """SIGTERM once the watcher has polled SMSC; the log, and the lists SMSC gave by the signal.

    Checks what every stop must do: exit 0 within the contract, "bot stopped" logged.
    """
    await until(lambda: bot.smsc_lists() >= 1, within=20)
    lists = bot.smsc_lists()
    code, elapsed, log = await sigterm(proc, stderr, within=CONTRACT)
    assert code == 0, log
    assert elapsed < CONTRACT, log
    assert "bot stopped" in log
    return log, lists


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
    """PTB backs off ever longer between failed polls (up to 30 s), deaf to a stop meanwhile.

    The bot's own backoff replaces it; shortened here (0.05 s, 0.1 s, 0.2 s, then 60 s, far
    past the contract) so the signal lands in a long wait without sitting through the short ones.
    """
    async with peers() as bot:
        emu = bot.emu
        port = emu.port
        env = bot.env(
            tmp_path / "bot.sqlite3",
            POLL_INTERVAL="20",
            **POLL_AT_ONCE,
            **get_updates_backoff(0.05, 0.1, 0.2, 60),
        )
        async with bot_process(env, tmp_path) as proc:
            stderr = Stderr(proc)
            await emu.wait_until(lambda: emu.active_polls > 0, timeout=20)
            await until(lambda: bot.smsc_lists() >= 1, within=20)  # the watcher is polling
            await emu.stop()  # the Bot API goes away ...
            async with closing_server(port) as attempts:  # ... and every connection fails
                # 4 failures in a row: the backoff grew through its steps to the 60 s one.
                await until(lambda: len(attempts) >= 4, within=30)
                assert await stderr.wait_for(lambda t: "next attempt in 60 s" in t, within=10)
                tried, lists = len(attempts), bot.smsc_lists()
                code, elapsed, log = await sigterm(proc, stderr, within=CONTRACT)
            # The signal came during the 60 s wait: no attempt after it but the stop's own
            # final getUpdates (timeout 0, which never waits).
            assert len(attempts) <= tried + 1
    assert code == 0, log
    assert elapsed < CONTRACT, log
    assert "stopping (SIGTERM)" in log
    assert "bot stopped" in log
    assert bot.smsc_lists() == lists  # the watcher stopped with the signal
    assert TOKEN not in log


async def test_sigterm_during_telegrams_flood_control_back_off(tmp_path: Path) -> None:
    """A 429 with retry_after 60 on getUpdates: PTB's retry loop sleeps 60.5 s, deaf to a stop."""
    async with peers() as bot:
        emu = bot.emu
        env = bot.env(tmp_path / "bot.sqlite3", POLL_INTERVAL="20", **POLL_AT_ONCE)
        async with bot_process(env, tmp_path) as proc:
            stderr = Stderr(proc)
            await emu.wait_until(lambda: emu.active_polls > 0, timeout=20)
            emu.fail("getUpdates", ApiFailure.retry_after(60))
            emu.send_message(ADMIN_CHAT, "/start")  # ends the long poll; the next one gets 429
            await emu.wait_for("getUpdates", predicate=lambda c: c.status == 429, timeout=20)
            # PTB's own 60.5 s sleep used to hold the stop; the bot's getUpdates backoff
            # (bot/telegram/updates.py) is cancelled with the poll, so the stop is clean and no
            # later than the contract.
            log, lists = await stop_once_watching(bot, proc, stderr)
    assert "stopping (SIGTERM)" in log
    assert bot.smsc_lists() == lists


@pytest.mark.parametrize(
    "method",
    [
        "getMe",  # PTB's initialize
        "setMyCommands",  # our start hook: database and session already open
        "deleteWebhook",  # the updater's bootstrap: everything else already running
    ],
)
async def test_sigterm_while_start_up_hangs_on_telegram(tmp_path: Path, method: str) -> None:
    async with peers() as bot:
        emu = bot.emu
        emu.fail(method, ApiFailure.timeout())
        env = bot.env(tmp_path / "bot.sqlite3")
        async with bot_process(env, tmp_path) as proc:
            stderr = Stderr(proc)
            await emu.wait_for(method, timeout=20)  # held: never answered
            code, elapsed, log = await sigterm(proc, stderr, within=CONTRACT)
        emu.release_held()
    assert code == 0, log
    assert elapsed < CONTRACT, log
    assert "Traceback" not in log
    assert emu.calls_to("getUpdates") == []  # it never got as far as polling
    if method != "getMe":  # resources were open: they were closed
        assert "bot stopped" in log


def webhook_env(bot: Peers, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Webhook mode on a free loopback port."""
    port = free_port()
    return bot.env(
        tmp_path / "bot.sqlite3",
        WEBHOOK_URL=f"http://127.0.0.1:{port}/hook",
        WEBHOOK_SECRET="s3cret_Hook-token",
        PORT=str(port),
        **extra,
    )


async def test_sigterm_in_webhook_mode(tmp_path: Path) -> None:
    async with peers() as bot:
        bot.sim.add_task(SimTask(3, "via webhook", TaskStatus.COMPLETED))
        emu = bot.emu
        env = webhook_env(bot, tmp_path, POLL_INTERVAL="20", **POLL_AT_ONCE)
        async with bot_process(env, tmp_path) as proc:
            stderr = Stderr(proc)
            await emu.wait_for("setWebhook", timeout=20)
            emu.send_message(ADMIN_CHAT, "/start")
            await emu.wait_for("sendMessage", timeout=20)  # updates arrive through our server
            log, lists = await stop_once_watching(bot, proc, stderr)
    assert bot.smsc_lists() == lists
    assert "s3cret_Hook-token" not in log


async def test_sigterm_while_setting_the_webhook_hangs(tmp_path: Path) -> None:
    async with peers() as bot:
        emu = bot.emu
        emu.fail("setWebhook", ApiFailure.timeout())
        env = webhook_env(bot, tmp_path)
        async with bot_process(env, tmp_path) as proc:
            stderr = Stderr(proc)
            await emu.wait_for("setWebhook", timeout=20)
            code, elapsed, log = await sigterm(proc, stderr, within=CONTRACT)
        emu.release_held()
    assert code == 0, log
    assert elapsed < CONTRACT, log
    assert "bot stopped" in log
    assert "Traceback" not in log
