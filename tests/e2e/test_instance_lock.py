"""One bot process per database: a second one refuses to start, exit 2, one line (issue 8)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from storage import StorageError
from storage.instance_lock import AnotherInstanceError, FileInstanceLock, instance_lock
from tests.fakes.processes import POLL_AT_ONCE, peers
from tests.fakes.rig import ADMIN_CHAT, bot_process, free_port
from tests.fakes.smsc_support import until


def test_the_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    db = tmp_path / "data" / "bot.sqlite3"
    first = instance_lock(db)
    first.acquire()  # creates the folder and data/bot.sqlite3.lock
    assert (tmp_path / "data" / "bot.sqlite3.lock").exists()
    second = instance_lock(db)  # another open file: flock conflicts even within one process
    with pytest.raises(AnotherInstanceError, match="another bot process is already running on"):
        second.acquire()
    first.release()
    first.release()  # idempotent
    second.acquire()
    second.release()


def test_a_lock_that_cannot_be_made_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="cannot create the lock file"):
        FileInstanceLock(blocker / "bot.sqlite3").acquire()


async def test_a_second_process_on_the_same_database_refuses_to_start(tmp_path: Path) -> None:
    db = tmp_path / "bot.sqlite3"
    async with peers() as bot:
        emu, sim = bot.emu, bot.sim
        env = bot.env(db, **POLL_AT_ONCE)
        async with bot_process(env, tmp_path, capture_stderr=False) as first:
            await emu.wait_until(lambda: emu.active_polls > 0, timeout=20)
            await until(lambda: len(sim.requests) > 0, within=20)  # its first poll; next in 60 s
            calls, requests = len(emu.calls_to("getMe")), len(sim.requests)
            async with bot_process({**env, "PORT": str(free_port())}, tmp_path) as second:
                code = await asyncio.wait_for(second.wait(), 30)
                _, stderr = await second.communicate()
            lines = stderr.decode().strip().splitlines()
            assert code == 2
            assert len(lines) == 1, lines
            assert lines[0].startswith("error: DATABASE_URL: another bot process is already")
            assert str(db) in lines[0]
            # It never reached Telegram or SMSC.
            assert len(emu.calls_to("getMe")) == calls
            assert len(sim.requests) == requests
            emu.send_message(ADMIN_CHAT, "/start")  # the first one keeps working
            await emu.wait_for("sendMessage", chat_id=ADMIN_CHAT, timeout=20)
            first.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(first.wait(), 10) == 0
        polls = emu.active_polls
        async with bot_process({**env, "PORT": str(free_port())}, tmp_path) as third:
            await emu.wait_until(lambda: emu.active_polls > polls, timeout=20)  # starts now
            third.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(third.wait(), 10) == 0
