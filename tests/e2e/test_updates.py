"""End-to-end: updates the library cannot parse, getUpdates failures, update-loop health (issue 9).

The bad updates are real shapes of disagreement between Telegram and python-telegram-bot (a
required field missing), queued raw in the emulator; the bot runs over real HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from telegram.error import InvalidToken

from bot.clock import FakeClock
from bot.smsc.simulator import SimulatorState, create_app
from bot.telegram.updates import BACKOFF_CAP, QUEUE_STUCK_AFTER, UpdateIntake
from bot.tg_emulator import ApiFailure, TelegramEmulator
from tests.fakes.endpoints import get_endpoint
from tests.fakes.rig import (
    ADMIN_CHAT,
    LOGIN,
    PASSWORD,
    TOKEN,
    Rig,
    bot_env,
    bot_process,
    running_rig,
    serve,
)
from tests.fakes.smsc_support import until

PRIVATE = "personal-words-never-logged"

# Each is something PTB 22's Update.de_json raises on (a required field missing, a wrong type).
BAD_UPDATES: dict[str, dict[str, Any]] = {
    "chat_without_type": {
        "message": {
            "message_id": 5,
            "date": 1_700_000_000,
            "chat": {"id": ADMIN_CHAT, "first_name": PRIVATE},
            "text": PRIVATE,
        }
    },
    "from_without_id": {
        "message": {
            "message_id": 6,
            "date": 1_700_000_000,
            "chat": {"id": ADMIN_CHAT, "type": "private"},
            "from": {"is_bot": False, "first_name": PRIVATE},
            "text": PRIVATE,
        }
    },
    "message_not_an_object": {"message": 5},
    "callback_without_chat_instance": {
        "callback_query": {
            "id": "77",
            "from": {"id": ADMIN_CHAT, "is_bot": False, "first_name": PRIVATE},
            "data": PRIVATE,
        }
    },
    "my_chat_member_without_date": {
        "my_chat_member": {
            "chat": {"id": -100123, "type": "supergroup", "title": PRIVATE},
            "from": {"id": ADMIN_CHAT, "is_bot": False, "first_name": "A"},
            "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True}},
        }
    },
}


def intake_of(rig: Rig) -> UpdateIntake:
    """The bot's update intake (decoding, backoff, loop health)."""
    return rig.app.bot_data.updates


@pytest.mark.parametrize("name", sorted(BAD_UPDATES))
async def test_polling_skips_an_update_the_library_cannot_parse(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    caplog.set_level(logging.INFO)
    async with running_rig(tmp_path) as rig:
        bad = rig.emu.queue_raw_update(BAD_UPDATES[name])
        polls_before = len(rig.emu.calls_to("getUpdates"))
        text = await rig.reply_text(ADMIN_CHAT, "/tasks")  # a later update is still answered
        assert "task" in text.lower()
        # The bad one was confirmed: Telegram (the emulator) dropped it.
        await rig.emu.wait_until(lambda: rig.emu.pending_updates == [], timeout=10)
        polls = len(rig.emu.calls_to("getUpdates")) - polls_before
        assert polls < 20  # no hot loop (it was ~400 calls a second)
        kind = next(k for k in bad if k != "update_id")
        assert intake_of(rig).stats.unparseable == {kind: 1}
        status, metrics = await get_endpoint(rig, "/metrics")
        assert status == 200
        assert f'telegram_updates_unparseable_total{{type="{kind}"}} 1.0' in metrics
        assert (await get_endpoint(rig, "/healthz"))[0] == 200
    lines = [r for r in caplog.records if getattr(r, "event", "") == "update_unparseable"]
    assert len(lines) == 1
    assert f"update_id={bad['update_id']} type={kind}" in lines[0].getMessage()
    assert PRIVATE not in caplog.text  # content may hold user data: never logged
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_batch_with_bad_updates_in_the_middle_keeps_every_good_one(
    tmp_path: Path,
) -> None:
    async with running_rig(tmp_path) as rig:
        # Queued before the bot's next long poll returns: they arrive as one batch.
        rig.emu.send_message(ADMIN_CHAT, "/help")
        for payload in BAD_UPDATES.values():
            rig.emu.queue_raw_update(payload)
        rig.emu.send_message(ADMIN_CHAT, "/status")
        await rig.emu.wait_for("sendMessage", chat_id=ADMIN_CHAT, count=2, timeout=10)
        await rig.emu.wait_until(lambda: rig.emu.pending_updates == [], timeout=10)
        assert sum(intake_of(rig).stats.unparseable.values()) == len(BAD_UPDATES)


async def test_failed_get_updates_back_off_exponentially_up_to_a_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_rig(tmp_path) as rig:
        intake = intake_of(rig)
        backoff_clock = FakeClock(autoadvance=True)  # the waits pass without sleeping
        backoff_clock.advance(time.monotonic())  # continue from the real clock's readings
        start = backoff_clock.monotonic()
        intake.clock = backoff_clock
        failures = 8
        rig.emu.fail("getUpdates", ApiFailure.server_error(502), count=failures)
        assert await rig.reply_text(ADMIN_CHAT, "/help")
        assert intake.stats.get_updates_failures == failures
        assert intake.stats.consecutive_failures == 0  # a success resets the backoff
    waits = [
        float(m.group(1))
        for r in caplog.records
        if (m := re.search(r"next attempt in (\d+) s", r.getMessage()))
    ]
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff_clock.monotonic() - start == pytest.approx(sum(waits))
    assert max(waits) == BACKOFF_CAP
    assert not [r for r in caplog.records if r.exc_info]  # one line each, no traceback


async def test_retry_after_on_get_updates_is_honoured(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_rig(tmp_path) as rig:
        intake = intake_of(rig)
        backoff_clock = FakeClock(autoadvance=True)
        backoff_clock.advance(time.monotonic())
        start = backoff_clock.monotonic()
        intake.clock = backoff_clock
        rig.emu.fail("getUpdates", ApiFailure.retry_after(17), count=1)
        await rig.reply_text(ADMIN_CHAT, "/help")
        assert backoff_clock.monotonic() - start == pytest.approx(17)


async def test_healthz_is_503_when_get_updates_is_wedged(tmp_path: Path) -> None:
    async with running_rig(tmp_path) as rig:
        intake = intake_of(rig)
        await rig.reply_text(ADMIN_CHAT, "/help")
        assert await get_endpoint(rig, "/healthz") == (200, "ok\n")
        health_clock = FakeClock(autoadvance=True)
        health_clock.advance(time.monotonic())
        intake.clock = health_clock
        rig.emu.fail("getUpdates", ApiFailure.timeout(), count=1)  # answers never
        await rig.emu.wait_for("getUpdates", predicate=lambda c: c.status == 0, timeout=10)
        health_clock.advance(30)
        assert (await get_endpoint(rig, "/healthz"))[0] == 200  # a long poll may take that long
        health_clock.advance(3 * 1 + 60)
        status, text = await get_endpoint(rig, "/healthz")
        assert status == 503
        assert "no getUpdates round trip finished" in text
        rig.emu.release_held()
        await rig.reply_text(ADMIN_CHAT, "/help")  # the loop recovers; so does health
        assert await get_endpoint(rig, "/healthz") == (200, "ok\n")


async def test_healthz_is_503_when_polling_has_stopped(tmp_path: Path) -> None:
    async with running_rig(tmp_path) as rig:
        # 401 is PTB's InvalidToken: its polling loop gives up for good.
        rig.emu.fail("getUpdates", ApiFailure(401, "Unauthorized"), count=1)
        await until(lambda: intake_of(rig).problem(rig.app) is not None, within=10)
        status, text = await get_endpoint(rig, "/healthz")
        assert status == 503
        assert "update polling stopped" in text
        assert rig.app.updater is not None
        with pytest.raises(InvalidToken):  # PTB's stop re-raises what ended its loop
            await rig.app.updater.stop()


async def test_update_queue_nobody_takes_from_is_stuck() -> None:
    clock = FakeClock()
    intake = UpdateIntake(clock)
    queue = intake.queue
    assert queue.stuck_for() is None
    await queue.put("update")
    clock.advance(QUEUE_STUCK_AFTER)
    assert queue.stuck_for() is None  # not yet past the limit
    clock.advance(1)
    assert queue.stuck_for() == pytest.approx(QUEUE_STUCK_AFTER + 1)
    await queue.put("another")
    assert await queue.get() == "update"
    assert queue.stuck_for() is None  # the consumer is alive again
    clock.advance(QUEUE_STUCK_AFTER + 5)
    assert queue.stuck_for() is not None
    assert await queue.get() == "another"
    assert queue.stuck_for() is None


async def test_entry_point_survives_a_bad_update_and_stops_on_sigterm(tmp_path: Path) -> None:
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        env = bot_env(emu.url, sim_url, tmp_path / "bot.sqlite3", ALLOWED_CHAT_IDS=str(ADMIN_CHAT))
        async with bot_process(env, tmp_path) as proc:
            await emu.wait_until(lambda: emu.active_polls > 0, timeout=30)  # polling
            bad = emu.queue_raw_update(BAD_UPDATES["chat_without_type"])
            emu.send_message(ADMIN_CHAT, "/help")
            await emu.wait_for("sendMessage", chat_id=ADMIN_CHAT, timeout=30)
            # Confirmed (Telegram drops it) by the getUpdates that fetched the next update.
            confirmed = lambda: all(u["update_id"] > bad["update_id"] for u in emu.pending_updates)  # noqa: E731
            await emu.wait_until(confirmed, timeout=30)
            polls = len(emu.calls_to("getUpdates"))
            assert polls < 30
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
            assert proc.stderr is not None
            stderr = (await proc.stderr.read()).decode()
    assert stderr.count("skipped an update the library cannot parse") == 1
    assert "CRITICAL" not in stderr
    assert "Traceback" not in stderr
    assert PRIVATE not in stderr
    assert TOKEN not in stderr


async def test_entry_point_backs_off_a_broken_bot_api_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        emu.fail("getUpdates", ApiFailure.server_error(502), count=10_000)
        env = bot_env(emu.url, sim_url, tmp_path / "bot.sqlite3", ALLOWED_CHAT_IDS=str(ADMIN_CHAT))
        async with bot_process(env, tmp_path) as proc:
            calls = await emu.wait_for("getUpdates", count=3, timeout=30)
            # Lower bounds only (load can only stretch them): 1 s, then 2 s between attempts,
            # where the library alone retried at once (~400 calls a second).
            assert calls[1].at - calls[0].at >= 0.9
            assert calls[2].at - calls[1].at >= 1.9
            proc.send_signal(signal.SIGTERM)  # in the middle of a backoff wait
            assert await asyncio.wait_for(proc.wait(), 10) == 0
            assert proc.stderr is not None
            stderr = (await proc.stderr.read()).decode()
    assert "Traceback" not in stderr
    assert "getUpdates failed (HTTP 502" in stderr
