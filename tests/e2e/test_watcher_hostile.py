"""End to end: status flaps never repeat an alert, hostile list items never stop the watcher."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import storage
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask
from bot.tg_emulator import Call
from tests.fakes.rig import ADMIN_CHAT, TEAM_GROUP, Rig, running_rig
from tests.fakes.storage_support import get_known_task


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A bot whose delivery passes the test runs by hand, with two subscribed chats."""
    async with running_rig(tmp_path, options={"run_delivery": False}) as rig:
        for chat_id in (ADMIN_CHAT, TEAM_GROUP):
            await storage.subscribe(rig.services.db, chat_id, None, rig.clock.now())
        yield rig


def sent(rig: Rig, method: str) -> list[Call]:
    return [c for c in rig.emu.calls_to(method) if c.status == 200]


async def flap(rig: Rig, task_id: int, *statuses: TaskStatus) -> list[str]:
    """Show SMSC's task in each status in turn, one poll each; return the alerts queued."""
    kinds: list[str] = []
    for status in statuses:
        rig.sim.set_status(task_id, status)
        diff = await rig.poll()
        assert diff is not None
        kinds += [a.kind for a in diff.alerts]
    return kinds


# --- one alert per task per outcome, ever ------------------------------------------------------


async def test_completed_running_completed_alerts_once(rig: Rig) -> None:
    rig.sim.add_task(SimTask(10, "flappy", TaskStatus.RUNNING, rows=5))
    await rig.poll()  # baseline
    done, lag = TaskStatus.COMPLETED, TaskStatus.RUNNING
    assert await flap(rig, 10, done, lag, done, lag, done) == ["completed"]
    await rig.deliver()
    assert sorted(c.chat_id for c in sent(rig, "sendDocument")) == sorted([ADMIN_CHAT, TEAM_GROUP])
    assert await rig.deliver() == 0
    outcome = await storage.get_outcome(rig.services.db, 10)
    assert outcome == storage.TaskOutcome(10, "completed", alerted=True)


async def test_completed_then_lagging_then_failed_stays_one_completion(rig: Rig) -> None:
    rig.sim.add_task(SimTask(11, "relabelled", TaskStatus.RUNNING))
    await rig.poll()
    kinds = await flap(rig, 11, TaskStatus.COMPLETED, TaskStatus.RUNNING, TaskStatus.FAILED)
    assert kinds == ["completed"]  # a finished task SMSC relabels was already reported
    await rig.deliver()
    assert sent(rig, "sendMessage") == []  # no failure message


async def test_a_task_finished_at_the_baseline_never_alerts_on_a_flap(rig: Rig) -> None:
    rig.sim.add_task(SimTask(12, "old news", TaskStatus.COMPLETED))
    await rig.poll()  # baseline: finished already, nothing said
    assert await flap(rig, 12, TaskStatus.RUNNING, TaskStatus.COMPLETED) == []


async def test_the_flap_is_remembered_across_restarts(rig: Rig) -> None:
    rig.sim.add_task(SimTask(13, "restart me", TaskStatus.RUNNING, rows=3))
    await rig.poll()
    assert await flap(rig, 13, TaskStatus.COMPLETED) == ["completed"]
    await rig.deliver()
    await rig.restart()
    assert await flap(rig, 13, TaskStatus.RUNNING) == []
    await rig.restart()
    assert await flap(rig, 13, TaskStatus.COMPLETED, TaskStatus.FAILED) == []
    await rig.deliver()
    assert len(sent(rig, "sendDocument")) == 2  # once per chat, ever
    assert sent(rig, "sendMessage") == []


# --- hostile list items: skipped or sanitised, everything else goes on ----------------------


async def test_hostile_items_never_stop_alerts_or_tasks(rig: Rig) -> None:
    rig.sim.add_task(SimTask(20, "good one", TaskStatus.RUNNING, rows=4))
    rig.sim.add_raw_item({"id": 99999999999999999999, "name": "huge", "status": 2})
    rig.sim.add_raw_item({"id": -3, "name": "negative", "status": 2})
    rig.sim.add_raw_item({"id": 30, "name": "null status", "status": None})
    rig.sim.add_raw_item({"id": 31, "name": "status text", "status": "done"})
    rig.sim.add_raw_json('{"id": ' + "9" * 5000 + ', "name": "5000 digits", "status": 2}')
    rig.sim.add_raw_item({"id": 32, "name": "lone \ud800 surrogate", "status": 1, "time": "\udfff"})
    rig.sim.add_raw_item({"id": 33, "name": ["wrong", "type"], "status": "1", "file": None})
    await rig.poll()  # baseline
    assert rig.services.watcher.last_skipped == 5
    rig.sim.set_status(20, TaskStatus.COMPLETED)
    diff = await rig.poll()
    assert diff is not None
    assert [(a.kind, a.task_id) for a in diff.alerts] == [("completed", 20)]
    await rig.deliver()
    assert len(sent(rig, "sendDocument")) == 2

    text = await rig.reply_text(ADMIN_CHAT, "/tasks")
    assert "#20" in text
    assert "lone \ufffd surrogate" in text
    assert "#33" in text
    assert "huge" not in text
    assert "negative" not in text
    known = await get_known_task(rig.services.db, 32)
    assert known is not None
    assert known.name == "lone \ufffd surrogate"
    metrics = rig.services.metrics.render().decode()
    assert "smsc_items_skipped_total 10.0" in metrics  # 5 per poll, two polls
    assert "watcher_last_poll_items_skipped 5.0" in metrics
    status = await rig.reply_text(ADMIN_CHAT, "/status")
    assert "5 unusable SMSC list items skipped" in status  # /status says something is wrong


async def test_ten_thousand_bad_rows_log_one_line_per_poll(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.sim.add_task(SimTask(40, "survivor", TaskStatus.RUNNING, rows=2))
    rig.sim.add_task(SimTask(41, "bystander", TaskStatus.PENDING))
    for i in range(10_000):
        rig.sim.add_raw_item({"id": -i - 1, "name": f"bad {i}", "status": "?"})
    caplog.set_level(logging.INFO)
    await rig.poll()
    rig.sim.set_status(40, TaskStatus.COMPLETED)
    diff = await rig.poll()
    assert diff is not None
    assert [a.task_id for a in diff.alerts] == [40]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2  # one per poll, not one per row
    assert all("Skipped 10000 unusable SMSC list items" in r.getMessage() for r in warnings)
    assert rig.services.watcher.last_skipped == 10_000
    await rig.deliver()
    assert len(sent(rig, "sendDocument")) == 2
    text = await rig.reply_text(ADMIN_CHAT, "/tasks")
    assert "#40" in text
    assert "#41" in text


# --- nothing is too long to send ------------------------------------------------------------

LONG = "<&>" * 3000 + "😀" * 3000 + "\u202e" * 100


async def test_overlong_fields_still_alert_and_page(rig: Rig) -> None:
    for i in range(1, 26):
        rig.sim.add_task(
            SimTask(i, LONG, TaskStatus.RUNNING, created=LONG, time=LONG, file=f"{'f' * 300}{i}")
        )
    await rig.poll()  # baseline
    rig.sim.set_status(25, TaskStatus.COMPLETED)
    rig.sim.set_status(24, TaskStatus.FAILED)
    await rig.poll()
    await rig.deliver()
    docs = sent(rig, "sendDocument")
    messages = sent(rig, "sendMessage")
    assert len(docs) == 2  # the completion, with its file, in both chats
    assert len(messages) == 2  # the failure
    assert [c for c in rig.emu.calls if c.status != 200] == []
    caption = docs[0].response["result"]["caption"]
    assert "#25" in caption
    assert "…" in caption  # cut, not refused

    call = await rig.say(ADMIN_CHAT, "/tasks")
    assert call is not None
    assert call.status == 200
    assert "#25" in call.response["result"]["text"]
    data = call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    rig.emu.press_button(ADMIN_CHAT, call.response["result"]["message_id"], data)
    (edit,) = await rig.emu.wait_for("editMessageText")
    assert edit.status == 200
    older = edit.response["result"]["text"]
    assert "older than" in older
    assert "#25" not in older
