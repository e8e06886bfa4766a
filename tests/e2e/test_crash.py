"""Kill -9 in the middle of a fan-out, restart: every alert delivered, none twice (issue 4)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import storage
from bot.clock import FakeClock
from bot.smsc.simulator import SimulatorState, create_app
from bot.tg_emulator import ApiFailure, TelegramEmulator
from tests.fakes.rig import LOGIN, PASSWORD, TOKEN, bot_env, bot_process, free_port, serve
from tests.fakes.smsc_support import until
from tests.fakes.storage_support import failed_alert

REPO = Path(__file__).resolve().parents[2]
CHATS = [7001, 7002, 7003, 7004, 7005]
HELD = 7003


async def seed(db_path: Path) -> None:
    """A failure alert detected and committed, nothing sent yet: the outbox after a poll."""
    now = datetime.now(UTC)
    conn = await storage.open_database(db_path)
    try:
        for chat in CHATS:
            await storage.subscribe(conn, chat, None, now)
        alert = failed_alert(77, "crash test", now)
        await storage.record_poll(
            conn, tasks=[storage.TaskSnapshot(77, 4, "crash test")], alerts=[alert], now=now
        )
    finally:
        await storage.close_database(conn)


def delivered(db_path: Path) -> int:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        return int(
            conn.execute("SELECT count(*) FROM deliveries WHERE state = 'delivered'").fetchone()[0]
        )


async def test_kill_9_mid_fan_out_then_restart(tmp_path: Path) -> None:
    db_path = tmp_path / "bot.sqlite3"
    await seed(db_path)
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        env = bot_env(emu.url, sim_url, db_path, ALLOWED_CHAT_IDS=",".join(map(str, CHATS)))
        emu.fail("sendMessage", ApiFailure.timeout(), count=1, chat_id=HELD)
        first = {**env, "PORT": str(free_port())}
        async with bot_process(first, tmp_path, capture_stderr=False) as proc:
            await emu.wait_for("sendMessage", chat_id=HELD, timeout=20)  # in flight, never answered
            await until(lambda: delivered(db_path) == len(CHATS) - 1, within=20)
            proc.send_signal(signal.SIGKILL)
            assert await proc.wait() == -signal.SIGKILL
        emu.release_held()
        second = {**env, "PORT": str(free_port())}
        async with bot_process(second, tmp_path, capture_stderr=False) as proc:
            await until(lambda: delivered(db_path) == len(CHATS), within=20)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
        per_chat = {chat: len(emu.calls_to("sendMessage", chat_id=chat, ok=True)) for chat in CHATS}
        assert per_chat == dict.fromkeys(CHATS, 1)
