"""End-to-end: the watcher's alerts, through the outbox, to Telegram (issue 4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

import storage
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import Fault, SimTask
from bot.tg_emulator import ApiFailure, Call
from tests.fakes.rig import ADMIN_CHAT, TEAM_GROUP, Rig, running_rig

HOSTILE = "Export <b>&amp; _*[]`~ </i> \"q\" 'a' &"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A bot whose delivery passes the test runs by hand, with two subscribed chats."""
    async with running_rig(tmp_path, options={"run_delivery": False}) as rig:
        await subscribe(rig, ADMIN_CHAT, TEAM_GROUP)
        yield rig


async def subscribe(rig: Rig, *chat_ids: int) -> None:
    for chat_id in chat_ids:
        await storage.subscribe(rig.services.db, chat_id, None, rig.clock.now())


def sends(rig: Rig, method: str = "sendMessage", *, ok: bool = True) -> list[Call]:
    """Successful alert sends (replies to commands aside: tests here send no commands)."""
    return [c for c in rig.emu.calls_to(method) if (c.status == 200) == ok]


def downloads(rig: Rig) -> int:
    return sum(1 for r in rig.sim.requests if r.params.get("get_file"))


async def test_completion_uploads_once_and_resends_by_file_id(rig: Rig) -> None:
    rig.sim.add_task(
        SimTask(
            10,
            "Рассылка ноябрь",
            TaskStatus.RUNNING,
            created="25.11.2026 11:00:00",
            time="25.11.2026 11:01:00",
            rows=120,
        )
    )
    await rig.poll()  # baseline
    rig.sim.set_status(10, TaskStatus.COMPLETED)
    diff = await rig.poll()
    assert [a.kind for a in diff.alerts] == ["completed"]
    assert await rig.deliver() == 2
    docs = sends(rig, "sendDocument")
    assert len(docs) == 2
    uploads = [c for c in docs if c.files]
    assert len(uploads) == 1  # uploaded once, the other chat got the file_id
    file_id = uploads[0].response["result"]["document"]["file_id"]
    resend = next(c for c in docs if not c.files)
    assert resend.params["document"] == file_id
    assert rig.emu.documents[file_id] == rig.sim.file_bytes(10)
    assert {c.chat_id for c in docs} == {ADMIN_CHAT, TEAM_GROUP}
    caption = resend.response["result"]["caption"]
    assert "#10" in caption
    assert "Рассылка ноябрь" in caption
    assert "120 rows" in caption
    assert downloads(rig) == 1
    assert list(rig.services.settings.files_dir.iterdir()) == []
    assert await storage.count_pending(rig.services.db) == 0
    assert await rig.deliver() == 0  # nothing twice


async def test_failure_alert_escapes_the_name(rig: Rig) -> None:
    await rig.finish_task(
        SimTask(11, HOSTILE, TaskStatus.RUNNING, created="25.11.2026 11:00:00"), TaskStatus.FAILED
    )
    await rig.deliver()
    texts = [c.response["result"]["text"] for c in sends(rig)]
    assert len(texts) == 2
    assert all("failed" in t and HOSTILE in t for t in texts)
    assert sends(rig, ok=False) == []  # Telegram accepted the HTML


async def test_first_poll_is_a_baseline(rig: Rig) -> None:
    for task_id, status in (
        (1, TaskStatus.COMPLETED),
        (2, TaskStatus.FAILED),
        (3, TaskStatus.CANCELED),
    ):
        rig.sim.add_task(SimTask(task_id, f"old {task_id}", status))
    diff = await rig.poll()
    assert diff.alerts == []
    assert len(diff.changed) == 3
    assert await rig.deliver() == 0
    diff = await rig.poll()
    assert diff.changed == []  # nothing new the second time either


async def test_a_task_first_seen_later_already_finished_alerts(rig: Rig) -> None:
    await rig.poll()  # baseline: empty account
    rig.sim.add_task(SimTask(20, "quick", TaskStatus.COMPLETED, rows=3))
    rig.sim.add_task(SimTask(21, "broken", TaskStatus.FAILED))
    diff = await rig.poll()
    assert sorted(a.kind for a in diff.alerts) == ["completed", "failed"]


async def test_canceled_is_a_quiet_notice(rig: Rig) -> None:
    await rig.finish_task(SimTask(30, "stop me", TaskStatus.PENDING), TaskStatus.CANCELED)
    await rig.deliver()
    calls = sends(rig)
    assert len(calls) == 2
    assert all(c.params.get("disable_notification") is True for c in calls)
    assert all("canceled" in c.response["result"]["text"] for c in calls)


async def test_canceled_notices_can_be_switched_off(tmp_path: Path) -> None:
    async with running_rig(tmp_path, options={"run_delivery": False}, notify_canceled=False) as rig:
        await subscribe(rig, ADMIN_CHAT)
        rig.sim.add_task(SimTask(30, "stop me", TaskStatus.PENDING))
        await rig.poll()
        rig.sim.set_status(30, TaskStatus.CANCELED)
        assert (await rig.poll()).alerts == []


async def test_restart_in_the_middle_of_delivery_loses_and_repeats_nothing(rig: Rig) -> None:
    await rig.finish_task(SimTask(40, "mid-flight", TaskStatus.RUNNING), TaskStatus.FAILED)
    rig.emu.fail("sendMessage", ApiFailure.server_error(502), count=1, chat_id=TEAM_GROUP)
    await rig.deliver()  # ADMIN delivered, TEAM failed and waits for a retry
    assert [c.chat_id for c in sends(rig)] == [ADMIN_CHAT]
    await rig.restart()  # the process goes away with a delivery pending
    rig.clock.advance(3600)
    await rig.deliver()
    delivered = [c.chat_id for c in sends(rig)]
    assert sorted(delivered) == sorted([ADMIN_CHAT, TEAM_GROUP])
    await rig.deliver()
    assert len(sends(rig)) == 2


async def test_telegram_outage_then_everything_arrives_once(rig: Rig) -> None:
    await rig.finish_task(SimTask(41, "outage", TaskStatus.RUNNING), TaskStatus.FAILED)
    rig.emu.fail("sendMessage", ApiFailure.server_error(502), count=6)
    for _ in range(4):
        await rig.deliver()
        rig.clock.advance(600)
    assert sorted(c.chat_id for c in sends(rig)) == sorted([ADMIN_CHAT, TEAM_GROUP])
    assert await storage.count_pending(rig.services.db) == 0


async def test_retry_after_is_honoured(rig: Rig) -> None:
    await rig.finish_task(SimTask(42, "flood", TaskStatus.RUNNING), TaskStatus.FAILED)
    rig.emu.fail("sendMessage", ApiFailure.retry_after(7), count=1, chat_id=ADMIN_CHAT)
    before = rig.clock.monotonic()
    await rig.deliver()
    assert sorted(c.chat_id for c in sends(rig)) == sorted([ADMIN_CHAT, TEAM_GROUP])
    assert rig.clock.monotonic() - before >= 7  # waited as told, then retried
    first_fail = next(c for c in rig.emu.calls_to("sendMessage") if c.status == 429)
    retry = next(c for c in sends(rig) if c.chat_id == ADMIN_CHAT)
    assert retry.at > first_fail.at


async def test_blocked_chat_is_unsubscribed_others_unaffected(rig: Rig) -> None:
    await rig.finish_task(SimTask(43, "blocked", TaskStatus.RUNNING), TaskStatus.FAILED)
    rig.emu.block(ADMIN_CHAT)
    await rig.deliver()
    assert [c.chat_id for c in sends(rig)] == [TEAM_GROUP]
    subs = await storage.list_subscriptions(rig.services.db)
    assert [s.chat_id for s in subs] == [TEAM_GROUP]
    assert await storage.count_pending(rig.services.db) == 0


async def test_deleted_chat_is_unsubscribed(rig: Rig) -> None:
    await rig.finish_task(SimTask(44, "gone", TaskStatus.RUNNING), TaskStatus.FAILED)
    rig.emu.fail("sendMessage", ApiFailure.chat_not_found(), count=1, chat_id=TEAM_GROUP)
    await rig.deliver()
    assert [s.chat_id for s in await storage.list_subscriptions(rig.services.db)] == [ADMIN_CHAT]


async def test_group_migrated_to_supergroup_follows(rig: Rig) -> None:
    new_id = -1001234567890
    await rig.finish_task(SimTask(45, "migrate", TaskStatus.RUNNING), TaskStatus.FAILED)
    rig.emu.migrate_chat(TEAM_GROUP, new_id)
    await rig.deliver()
    await rig.deliver()
    assert sorted(c.chat_id for c in sends(rig)) == sorted([ADMIN_CHAT, new_id])
    subs = {s.chat_id for s in await storage.list_subscriptions(rig.services.db)}
    assert subs == {ADMIN_CHAT, new_id}


async def test_file_not_ready_is_retried_then_attached(rig: Rig) -> None:
    await rig.finish_task(
        SimTask(50, "slow file", TaskStatus.RUNNING, rows=10), TaskStatus.COMPLETED
    )
    rig.sim.inject(Fault("error", code=5), count=2)
    await rig.deliver()
    assert sends(rig, "sendDocument") == []
    for _ in range(3):
        rig.clock.advance(301)
        await rig.deliver()
    docs = sends(rig, "sendDocument")
    assert len(docs) == 2
    assert sum(1 for c in docs if c.files) == 1


async def test_file_never_ready_sends_the_alert_without_it(rig: Rig) -> None:
    await rig.finish_task(SimTask(51, "no file", TaskStatus.RUNNING), TaskStatus.COMPLETED)
    rig.sim.inject(Fault("error", code=5), count=1000)
    await rig.deliver()
    rig.clock.advance(timedelta(minutes=31).total_seconds())
    await rig.deliver()
    texts = [c.response["result"]["text"] for c in sends(rig)]
    assert len(texts) == 2
    assert all("not attached" in t and "/get 51" in t for t in texts)
    assert downloads(rig) == 2  # one try per round, not one per chat


async def test_persistent_smsc_problem_is_reported_once_then_recovery(rig: Rig) -> None:
    await rig.poll()
    rig.sim.inject(Fault("error", code=2), count=1000)
    for _ in range(3):
        rig.clock.advance(700)  # past the client's 10-minute pause after a rejected login
        await rig.poll()
    await rig.deliver()
    texts = [c.response["result"]["text"] for c in sends(rig)]
    assert len(texts) == 2  # one per chat, not one per poll
    assert all("SMSC problem" in t for t in texts)
    rig.sim.clear_faults()  # SMSC accepts us again
    rig.clock.advance(700)
    await rig.poll()
    await rig.deliver()
    texts = [c.response["result"]["text"] for c in sends(rig)]
    assert len(texts) == 4
    assert all("answers again" in t for t in texts[2:])


async def test_delivery_loop_sends_on_its_own(tmp_path: Path) -> None:
    async with running_rig(tmp_path) as rig:
        await subscribe(rig, ADMIN_CHAT)
        await rig.finish_task(SimTask(60, "auto", TaskStatus.RUNNING), TaskStatus.FAILED)
        calls = await rig.emu.wait_for("sendMessage", ok=True)
        assert "#60" in calls[0].response["result"]["text"]


async def test_fan_out_respects_every_flood_limit(tmp_path: Path) -> None:
    async with running_rig(tmp_path, options={"run_delivery": False}) as rig:
        chats = [10_000 + i for i in range(30)] + [-10_000 - i for i in range(10)]
        await subscribe(rig, *chats)
        rig.emu.enforce_flood_limits = True
        await rig.finish_task(
            SimTask(70, "fan-out", TaskStatus.RUNNING, rows=5), TaskStatus.COMPLETED
        )
        await rig.deliver()
        docs = sends(rig, "sendDocument")
        assert len(docs) == len(chats)
        assert sum(1 for c in docs if c.files) == 1
        assert rig.emu.flood_429s == 0


async def test_a_poll_does_not_reuse_a_list_a_user_fetched_seconds_ago(rig: Rig) -> None:
    rig.sim.add_task(SimTask(80, "fresh", TaskStatus.RUNNING))
    await rig.poll()
    rig.clock.advance(61)
    await rig.reply_text(ADMIN_CHAT, "/tasks")  # caches the list: task 80 running
    rig.sim.set_status(80, TaskStatus.COMPLETED)
    rig.clock.advance(10)  # inside the 15 s cache, past the watcher's 2 s
    diff = await rig.services.watcher.poll()
    assert diff is not None
    assert [a.kind for a in diff.alerts] == ["completed"]


async def test_chats_removed_from_the_allowlist_lose_their_subscription(tmp_path: Path) -> None:
    async with running_rig(tmp_path, alert_chat_ids="555") as rig:
        await subscribe(rig, ADMIN_CHAT, 999)  # 999: allowed once, since removed
        rig.settings = rig.settings.model_copy(update={"allowed_chat_ids": (ADMIN_CHAT,)})
        await rig.restart()
        chats = {s.chat_id for s in await storage.list_subscriptions(rig.services.db)}
        assert chats == {ADMIN_CHAT, 555}  # ALERT_CHAT_IDS are subscribed though not in the list


async def test_scheduled_jobs(tmp_path: Path) -> None:
    async with running_rig(tmp_path, poll_interval=45) as rig:
        runtime = rig.app.bot_data.runtime
        assert runtime.poller is not None
        assert runtime.pruner is not None
        assert runtime.poller.interval == 45
        assert runtime.pruner.interval == 24 * 3600
        assert rig.services.watching


async def test_a_blocked_first_chat_passes_the_upload_on(rig: Rig) -> None:
    await rig.finish_task(
        SimTask(90, "pass it on", TaskStatus.RUNNING, rows=3), TaskStatus.COMPLETED
    )
    rig.emu.block(TEAM_GROUP)  # the chat that would upload first
    await rig.deliver()
    refused = [c for c in rig.emu.calls_to("sendDocument") if c.status == 403]
    docs = sends(rig, "sendDocument")
    assert [c.chat_id for c in refused] == [TEAM_GROUP]
    assert [c.chat_id for c in docs] == [ADMIN_CHAT]
    assert refused[0].at < docs[0].at
    assert docs[0].files  # the upload moved on to the next chat, in the same pass
    assert await storage.count_pending(rig.services.db) == 0


async def test_too_large_file_alerts_every_chat_without_downloading_again(rig: Rig) -> None:
    await rig.finish_task(SimTask(91, "huge", TaskStatus.RUNNING, rows=2_000), TaskStatus.COMPLETED)
    rig.services.files.upload_limit = 100
    await rig.deliver()
    texts = [c.response["result"]["text"] for c in sends(rig)]
    assert len(texts) == 2
    assert all("too large for Telegram" in t for t in texts)
    assert downloads(rig) == 1


async def test_a_reply_during_a_fan_out_is_not_kept_waiting(tmp_path: Path) -> None:
    chats = [20_000 + i for i in range(90)]  # about three seconds of alerts
    allowed = ",".join(map(str, [ADMIN_CHAT, *chats]))
    async with running_rig(
        tmp_path, options={"run_delivery": False}, allowed_chat_ids=allowed
    ) as rig:
        await subscribe(rig, *chats)
        await rig.finish_task(SimTask(95, "busy", TaskStatus.RUNNING), TaskStatus.FAILED)
        rig.clock.autoadvance = False  # real pacing now: the test steps the clock itself

        async def step_until(condition: Callable[[], bool]) -> None:
            # Fake time moves 2 ms per real ms at most: the bot's own real latency (a loaded
            # machine) must not read as pacing delay, which 10 ms per ms did (flaky under load).
            for _ in range(5_000):
                if condition():
                    return
                rig.clock.advance(0.01)
                await asyncio.sleep(0.005)
            raise AssertionError("condition never held")

        fan_out = asyncio.ensure_future(rig.deliver())
        await step_until(lambda: len(sends(rig)) >= 5)
        start = rig.clock.monotonic()
        rig.emu.send_message(ADMIN_CHAT, "/help")
        await step_until(lambda: bool(rig.emu.calls_to("sendMessage", chat_id=ADMIN_CHAT)))
        waited = rig.clock.monotonic() - start
        # The next slot or the one after (2/29 s, plus the bot's own latency), not behind the
        # alerts in line (the 16 deliveries in flight alone would hold it about 0.6 s).
        assert waited <= 0.3
        await step_until(fan_out.done)
        assert len(sends(rig)) == len(chats) + 1


async def test_delivery_loop_retries_on_its_own_when_a_retry_falls_due(tmp_path: Path) -> None:
    async with running_rig(tmp_path) as rig:
        await subscribe(rig, ADMIN_CHAT)
        rig.sim.add_task(SimTask(61, "retry me", TaskStatus.RUNNING))
        await rig.poll()
        rig.sim.set_status(61, TaskStatus.FAILED)
        rig.emu.fail("sendMessage", ApiFailure.server_error(502), count=1)
        await rig.poll()  # wakes the loop; nothing else drives it
        calls = await rig.emu.wait_for("sendMessage", ok=True)
        assert "#61" in calls[0].response["result"]["text"]
        assert len(rig.emu.calls_to("sendMessage")) == 2  # the failure, then the retry
