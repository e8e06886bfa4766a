"""End to end: SMSC's limits across restarts on one database, and replies honest about old lists."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.smsc.models import TaskStatus
from bot.smsc.simulator import Fault, SimTask
from storage.smsc_budget import budget_rows
from tests.fakes.endpoints import get_endpoint
from tests.fakes.rig import ADMIN_CHAT, PASSWORD, Rig, running_rig
from tests.fakes.smsc_support import identical_bursts


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with running_rig(tmp_path) as rig:
        yield rig


def add_tasks(rig: Rig, count: int = 3) -> None:
    for i in range(1, count + 1):
        rig.sim.add_task(SimTask(i, f"Task {i}", TaskStatus.COMPLETED))


async def test_restarts_never_send_more_than_two_identical_requests_a_minute(rig: Rig) -> None:
    add_tasks(rig)
    for _ in range(10):  # a crash loop: a new process every 7 s, each polling at once
        rig.clock.advance(7)
        await rig.services.watcher.poll()
        await rig.restart()

    assert identical_bursts(rig.sim, limit=2, window=60.0) == []
    assert all(rec.response_error is None for rec in rig.sim.requests)  # no error 9 at all
    assert len(rig.sim.requests) >= 2  # and yet the bot did talk to SMSC


async def test_a_wrong_password_costs_one_failed_login_per_ten_minutes(tmp_path: Path) -> None:
    async with running_rig(tmp_path, smsc_password="wrong-" + PASSWORD) as rig:
        for _ in range(20):  # 20 restarts in 10 minutes
            rig.clock.advance(30)
            await rig.services.watcher.poll()
            await rig.restart()
        assert len(rig.sim.failed_logins) == 1
        rig.clock.advance(40)  # 10 minutes after the first attempt
        await rig.services.watcher.poll()
        failures = [f.at for f in rig.sim.failed_logins]
        assert len(failures) == 2
        assert failures[1] - failures[0] >= 600
        assert rig.sim.blocked_until == {}
        # The password never reaches the database, whatever it stores about logins.
        rows = await budget_rows(rig.services.db)
        assert rows
        assert all(PASSWORD not in f"{r.scope}{r.event}" for r in rows)


async def test_readyz_wants_a_poll_of_this_process(rig: Rig) -> None:
    add_tasks(rig)
    await rig.poll()
    assert await get_endpoint(rig, "/readyz") == (200, "ready\n")

    await rig.restart()  # the database remembers the last poll; this process has none yet

    status, text = await get_endpoint(rig, "/readyz")
    assert status == 503
    assert "no SMSC poll yet" in text
    assert await rig.services.watcher.last_poll() is not None
    await rig.poll()
    assert await get_endpoint(rig, "/readyz") == (200, "ready\n")


async def test_tasks_after_http_500_shows_the_old_list_saying_so(rig: Rig) -> None:
    add_tasks(rig)
    first = await rig.reply_text(ADMIN_CHAT, "/tasks")
    assert "List as of" not in first
    rig.clock.advance(61)
    rig.sim.inject(Fault("http_500"))

    text = await rig.reply_text(ADMIN_CHAT, "/tasks")

    assert "#3" in text
    assert "⚠️ List as of " in text
    assert "; SMSC answered HTTP 500 at " in text


async def test_every_reply_from_an_old_list_says_why(rig: Rig) -> None:
    for i in range(1, 16):
        status = TaskStatus.RUNNING if i == 7 else TaskStatus.COMPLETED
        rig.sim.add_task(SimTask(i, f"Task {i}", status))
    call = await rig.say(ADMIN_CHAT, "/tasks")
    assert call is not None
    rig.clock.advance(61)
    rig.sim.inject(Fault("error", code=9), count=5)

    get_reply = await rig.reply_text(ADMIN_CHAT, "/get 7")
    assert "#7" in get_reply
    assert "SMSC answered error 9 (too many requests) at" in get_reply
    missing = await rig.reply_text(ADMIN_CHAT, "/get 99")
    assert "not found" in missing
    assert "List as of" in missing  # a new task may be missing from an old list

    data = call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    rig.emu.press_button(ADMIN_CHAT, call.response["result"]["message_id"], data)
    edits = await rig.emu.wait_for("editMessageText")
    assert edits[0].status == 200
    older: Any = edits[0].params["text"]
    assert "older than" in older
    assert "List as of" in older

    status_text = await rig.reply_text(ADMIN_CHAT, "/status")
    assert "List as of" in status_text
    assert "error 9" in status_text
