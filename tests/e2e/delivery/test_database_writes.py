"""End-to-end: a database that refuses writes or loses its file never makes the bot resend.

The bot runs for real (PTB over HTTP to the Bot API emulator, the SMSC simulator, a real SQLite
file); the delivery loop's own wait is checked here too.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest

import storage
from bot.alerts.delivery import Deliverer
from bot.clock import FakeClock
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask
from bot.tg_emulator import ApiFailure
from storage import health as db_health
from tests.e2e.delivery.support import (
    CHATS,
    delete_database_files,
    healthz,
    metrics_text,
    never,
    per_chat,
    sent,
    set_read_only,
    step_until,
    subscribe,
)
from tests.fakes.rig import Rig, running_rig
from tests.fakes.storage_support import outbox_stats

# --- a failed write never causes a resend --------------------------------------------------------


async def test_a_send_whose_record_fails_is_never_sent_again(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's case: Telegram accepts, marking it delivered fails, the row is due again."""
    await rig.finish_task(SimTask(100, "disk trouble", TaskStatus.RUNNING), TaskStatus.FAILED)
    rig.emu.fail("sendMessage", ApiFailure.server_error(502), count=2)  # an outage first
    await rig.deliver()
    assert sent(rig) == []
    await set_read_only(rig, on=True)  # then the disk goes bad just as Telegram comes back
    caplog.set_level(logging.WARNING)
    for _ in range(16):  # the issue saw 16 copies, one every 5 s
        rig.clock.advance(600)
        await rig.deliver()
    assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
    assert rig.services.deliverer.unrecorded == 2  # the sent facts live in memory
    status, text = await healthz(rig)
    assert status == 503
    assert "database writes failing" in text
    assert "read-only" in text
    metrics = await metrics_text(rig)
    assert "bot_database_writable 0.0" in metrics
    for event in ("db_unwritable", "deliveries_held"):  # once per episode, not per retry
        assert len([r for r in caplog.records if getattr(r, "event", "") == event]) == 1

    await set_read_only(rig, on=False)
    await rig.deliver()
    assert rig.services.deliverer.unrecorded == 0
    assert await storage.count_pending(rig.services.db) == 0
    assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
    assert (await healthz(rig))[0] == 200
    assert "bot_database_writable 1.0" in await metrics_text(rig)
    assert any(getattr(r, "event", "") == "db_writable" for r in caplog.records)
    assert any(getattr(r, "event", "") == "deliveries_resumed" for r in caplog.records)


async def test_nothing_new_is_sent_while_the_database_takes_no_writes(rig: Rig) -> None:
    await rig.finish_task(SimTask(101, "held", TaskStatus.RUNNING), TaskStatus.FAILED)
    rig.emu.fail("sendMessage", ApiFailure.server_error(502), count=2)
    await set_read_only(rig, on=True)
    await rig.deliver()  # both sends fail and so does recording the retry: writes are off
    assert not db_health.write_health(rig.services.db).writable
    attempts = len(rig.emu.calls_to("sendMessage"))
    for _ in range(5):
        rig.clock.advance(600)
        assert await rig.deliver() == 0  # held: nothing tried while writes fail
    assert len(rig.emu.calls_to("sendMessage")) == attempts
    await set_read_only(rig, on=False)
    await rig.deliver()  # the probe write works again: deliveries resume
    assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)


async def test_the_loop_retries_writes_with_a_pause_and_never_resends(tmp_path: Path) -> None:
    async with running_rig(tmp_path) as rig:  # the real delivery loop
        await subscribe(rig, *CHATS)
        rig.sim.add_task(SimTask(102, "loop", TaskStatus.RUNNING))
        await rig.poll()  # baseline
        rig.clock.autoadvance = False  # from here the test moves time: the loop's pauses count
        rig.emu.fail("sendMessage", ApiFailure.server_error(502), count=2)  # a short outage
        rig.sim.set_status(102, TaskStatus.FAILED)
        poll = asyncio.ensure_future(rig.poll())
        await step_until(rig, lambda: poll.done() and len(rig.emu.calls_to("sendMessage")) >= 2)
        for _ in range(1000):  # both retries recorded (time stands still: none is due yet)
            if (await outbox_stats(rig.services.db))["retrying"] == len(CHATS):
                break
            await asyncio.sleep(0.005)
        await set_read_only(rig, on=True)  # the disk goes bad before the retry is due
        deliverer = rig.services.deliverer
        await step_until(rig, lambda: deliverer.unrecorded >= 1)
        await step_until(rig, lambda: deliverer.write_failures >= 4, step=5.0)
        assert all(n == 1 for n in per_chat(sent(rig)).values())
        await set_read_only(rig, on=False)
        await step_until(rig, lambda: len(sent(rig)) >= 2 and deliverer.unrecorded == 0, step=5.0)
        await step_until(rig, never, step=60.0, steps=20)  # and nothing more, later
        assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
        assert await storage.count_pending(rig.services.db) == 0


# --- the database file deleted under the running bot ---------------------------------------------


async def test_database_file_deleted_makes_healthz_fail_with_the_reason(rig: Rig) -> None:
    assert await healthz(rig) == (200, "ok\n")
    path = rig.settings.database_path
    delete_database_files(path)
    status, text = await healthz(rig)
    assert status == 503
    assert "was deleted" in text
    assert str(path) in text


async def test_database_file_replaced_makes_healthz_fail(rig: Rig) -> None:
    path = rig.settings.database_path
    os.replace(path, path.with_name("moved.sqlite3"))
    path.write_bytes(b"")
    status, text = await healthz(rig)
    assert status == 503
    assert "replaced" in text


# --- the delivery loop's wait --------------------------------------------------------------------


async def test_wait_leaves_no_pending_task_behind(tmp_path: Path) -> None:
    db = await storage.open_database(tmp_path / "wait.sqlite3")
    try:
        deliverer = Deliverer(None, db, None, FakeClock())  # type: ignore[arg-type]
        before = len(asyncio.all_tasks())
        for delay in (timedelta(0), timedelta(seconds=-3), timedelta(0)):
            await asyncio.wait_for(deliverer._wait(delay), 1)
        await asyncio.sleep(0)
        assert len(asyncio.all_tasks()) == before  # each early return used to leak a waiter
        deliverer.wake()
        await asyncio.wait_for(deliverer._wait(timedelta(seconds=30)), 1)  # woken: returns
        await asyncio.sleep(0)
        assert len(asyncio.all_tasks()) == before
    finally:
        await storage.close_database(db)
