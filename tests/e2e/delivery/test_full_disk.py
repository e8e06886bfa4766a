"""End-to-end: a full disk (tmpfs) during a Telegram outage, and the real `python -m bot` process
reporting a deleted database file or a full disk on /healthz.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

import storage
from bot.clock import FakeClock
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask, SimulatorState, create_app
from bot.tg_emulator import ApiFailure, TelegramEmulator
from storage import health as db_health
from tests.e2e.delivery.support import (
    CHATS,
    delete_database_files,
    fill,
    healthz,
    per_chat,
    sent,
    subscribe,
    tmpfs,
)
from tests.fakes.rig import (
    ADMIN_CHAT,
    LOGIN,
    PASSWORD,
    TOKEN,
    bot_env,
    bot_process,
    running_rig,
    serve,
)

# --- a full disk (tmpfs) during a Telegram outage ------------------------------------------------


async def test_full_disk_during_a_telegram_outage_then_each_chat_gets_it_once(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        url = f"sqlite:///{disk / 'bot.sqlite3'}"
        async with running_rig(tmp_path, options={"run_delivery": False}, database_url=url) as rig:
            await subscribe(rig, *CHATS)
            await rig.finish_task(SimTask(110, "tmpfs", TaskStatus.RUNNING), TaskStatus.FAILED)
            rig.emu.fail("sendMessage", ApiFailure.server_error(502), count=4)  # the outage
            await rig.deliver()
            rig.clock.advance(600)
            await rig.deliver()
            assert sent(rig) == []
            filler = fill(disk)  # the disk fills up just as Telegram comes back
            rig.clock.advance(600)
            await rig.deliver()  # sent, but marking them delivered hits the full disk
            assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
            assert db_health.write_health(rig.services.db).failures > 0
            assert rig.services.deliverer.unrecorded == len(CHATS)
            for _ in range(20):  # the bot resent on every pass from here
                rig.clock.advance(600)
                await rig.deliver()
            assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
            status, text = await healthz(rig)
            assert status == 503
            assert "database writes failing: disk full" in text
            filler.unlink()  # the operator frees space
            for _ in range(3):
                rig.clock.advance(600)
                await rig.deliver()
            assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
            assert await storage.count_pending(rig.services.db) == 0
            assert (await healthz(rig))[0] == 200


# --- the real `python -m bot` process ----------------------------------------------------------


async def wait_health(port: int, status: int, *, timeout: float = 60.0) -> str:  # noqa: ASYNC109
    """Poll the process's /healthz (real time: it runs the real clock) until it answers `status`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = "no answer"
    async with aiohttp.ClientSession() as http:
        while loop.time() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    last = f"{resp.status} {await resp.text()}"
                    if resp.status == status:
                        return await resp.text()
            await asyncio.sleep(0.2)
    raise AssertionError(f"/healthz never answered {status}; last: {last}")


@contextlib.asynccontextmanager
async def real_bot(tmp_path: Path, db_path: Path) -> AsyncIterator[tuple[TelegramEmulator, int]]:
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        env = bot_env(emu.url, sim_url, db_path, ALLOWED_CHAT_IDS=str(ADMIN_CHAT))
        async with bot_process(env, tmp_path, capture_stderr=False):
            port = int(env["PORT"])
            await wait_health(port, 200)
            yield emu, port


async def test_real_process_reports_its_database_file_deleted(tmp_path: Path) -> None:
    db_path = tmp_path / "bot.sqlite3"
    async with real_bot(tmp_path, db_path) as (_, port):
        delete_database_files(db_path)
        text = await wait_health(port, 503)
        assert "was deleted" in text


async def test_real_process_reports_a_full_disk_and_its_end(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        async with real_bot(tmp_path, disk / "bot.sqlite3") as (emu, port):
            await emu.wait_until(lambda: emu.active_polls > 0, timeout=60)
            filler = fill(disk)
            emu.send_message(ADMIN_CHAT, "/subscribe")  # a write, refused by the full disk
            text = await wait_health(port, 503)
            assert "database writes failing" in text
            assert "disk full" in text
            filler.unlink()
            await wait_health(port, 200)  # the delivery loop's probe sees writes work again
