"""End-to-end: strangers cannot take the bot away from its team (issue 9).

200 `/start` from a chat outside the allowlist used to delay an allowed `/tasks` by minutes:
every refusal held a handler slot while it waited out Telegram's per-chat pacing. These tests
check the structure that prevents it (wall-clock figures are in bench/bench_strangers.py):
one refusal per stranger chat per window, sent off the handler slots at background priority,
so the allowed reply goes out before the strangers' backlog.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from bot.clock import FakeClock
from bot.runtime.web import SECRET_HEADER
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask
from bot.telegram.pacing import TelegramRateLimiter
from bot.tg_emulator import Call
from handlers.access import gate_of
from tests.fakes.rig import (
    ADMIN_CHAT,
    STRANGER,
    Rig,
    running_rig,
)
from tests.fakes.smsc_support import until
from tests.fakes.webhook_support import SECRET, webhook_bot

STRANGERS = range(900_001, 900_201)  # 200 private chats outside the allowlist


def refusals(rig: Rig) -> list[Call]:
    return [c for c in rig.emu.calls_to("sendMessage") if c.chat_id not in (ADMIN_CHAT,)]


def add_task(rig: Rig) -> None:
    rig.sim.add_task(SimTask(1, "team work", TaskStatus.COMPLETED, created="01.11.2026 10:00:00"))


async def test_one_refusal_per_stranger_chat_per_window(tmp_path: Path) -> None:
    async with running_rig(tmp_path, options={"run_delivery": False}) as rig:
        add_task(rig)
        gate = gate_of(rig.app)
        for _ in range(200):
            rig.emu.send_message(STRANGER, "/start")
        text = await rig.reply_text(ADMIN_CHAT, "/tasks")
        assert "#1" in text
        await until(
            lambda: gate.stats.refused == 200 and gate.pending == 0, "the flood", within=20.0
        )
        assert len(rig.emu.calls_to("sendMessage", chat_id=STRANGER)) == 1
        assert gate.stats.suppressed == 199
        metrics = rig.services.metrics.render().decode()
        assert 'access_refusals_total{outcome="suppressed"} 199.0' in metrics
        assert 'access_refusals_total{outcome="replies_sent"} 1.0' in metrics
        # After the window the stranger may be told once more (it may have been added since).
        rig.clock.advance(gate.window + 1)
        await rig.reply_text(STRANGER, "/tasks")
        assert len(rig.emu.calls_to("sendMessage", chat_id=STRANGER)) == 2


async def test_allowed_reply_goes_before_the_strangers_backlog(tmp_path: Path) -> None:
    clock = FakeClock()  # frozen: nothing paced is sent until the test moves time
    async with running_rig(tmp_path, clock=clock, options={"run_delivery": False}) as rig:
        try:
            await _allowed_reply_goes_first(rig, clock)
        finally:
            clock.autoadvance = True  # whatever happened, let the paced sends finish
            clock.advance(3600)


async def _allowed_reply_goes_first(rig: Rig, clock: FakeClock) -> None:
    add_task(rig)
    gate = gate_of(rig.app)
    for chat_id in STRANGERS:
        rig.emu.send_message(chat_id, "/start")
    rig.emu.send_message(ADMIN_CHAT, "/tasks")

    def admin_replied() -> bool:
        return bool(rig.emu.calls_to("sendMessage", chat_id=ADMIN_CHAT))

    # Everything handled; what waits for a send slot waits in the clock, not in a handler.
    await until(lambda: gate.stats.refused == len(STRANGERS), "the strangers' updates", within=20.0)
    limiter = rig.app.bot.rate_limiter
    assert isinstance(limiter, TelegramRateLimiter)
    # Each waits in the clock or in the background line behind the one booking.
    in_wait = lambda: clock.sleepers + limiter.in_line  # noqa: E731
    await until(
        lambda: admin_replied() or in_wait() == gate.pending + 1, "the reply's slot", within=20.0
    )
    waiting = gate.pending
    assert waiting >= gate.max_pending - 2  # the backlog, bounded
    # The rest are dropped, not queued: the backlog never grows with the flood.
    assert gate.stats.dropped + gate.stats.replies_sent + waiting == len(STRANGERS)
    assert rig.app.update_processor.current_concurrent_updates <= 1  # only /tasks' own
    # Move time one send slot at a time: the reply's slot comes within a few.
    for _ in range(40):
        if admin_replied():
            break
        clock.advance(1 / 29)
        await asyncio.sleep(0.02)
    assert admin_replied()
    before = len(refusals(rig))
    assert before <= 8  # the reply takes the next free slot, ahead of the backlog
    assert gate.pending > 0  # most of the backlog still waits
    # The backlog drains later; no stranger is told twice.
    for _ in range(400):
        if gate.pending == 0:
            break
        clock.advance(1 / 29)
        await asyncio.sleep(0.005)
    assert gate.pending == 0
    told = [c.chat_id for c in refusals(rig)]
    assert len(told) == len(set(told)) == len(STRANGERS) - gate.stats.dropped


async def test_stranger_memory_is_bounded(tmp_path: Path) -> None:
    async with running_rig(tmp_path, options={"run_delivery": False}) as rig:
        gate = gate_of(rig.app)
        gate.max_strangers = 3
        for chat_id in STRANGERS[:10]:
            await rig.reply_text(chat_id, "/start")
        assert gate.remembered == 3
        # The first one was forgotten, so it is told again (a bounded memory, not a leak).
        await rig.reply_text(STRANGERS[0], "/start")
        assert len(rig.emu.calls_to("sendMessage", chat_id=STRANGERS[0])) == 2


async def test_webhook_flood_does_not_delay_allowed_commands(tmp_path: Path) -> None:
    async with webhook_bot(
        tmp_path, tasks=[SimTask(3, "via webhook", TaskStatus.COMPLETED)]
    ) as bot:
        emu = bot.emu
        async with aiohttp.ClientSession() as http:

            async def post(update_id: int) -> int:
                body = json.dumps(_stranger_update(update_id))
                async with http.post(bot.url, data=body, headers={SECRET_HEADER: SECRET}) as r:
                    return r.status

            statuses = await asyncio.gather(*(post(i) for i in range(1, 501)))
        assert set(statuses) == {200}
        emu.send_message(ADMIN_CHAT, "/tasks")
        replies = await emu.wait_for("sendMessage", chat_id=ADMIN_CHAT, timeout=20)
        assert "#3" in replies[0].params["text"]
        assert len(emu.calls_to("sendMessage", chat_id=STRANGER)) <= 1


def _stranger_update(update_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_795_597_200,
            "chat": {"id": STRANGER, "type": "private", "first_name": "Eve"},
            "from": {"id": STRANGER, "is_bot": False, "first_name": "Eve"},
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }
