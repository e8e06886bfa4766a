"""Watcher benchmarks: diffing a 10,000-task list, and a 1,000-chat fan-out on the emulator.

The fan-out runs on the real clock with the emulator enforcing Telegram's flood limits, so
its wall time is what a real deployment would see; it is printed against the physical limit,
Telegram's 30 messages a second overall (300 chats: 10.0 s at best).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import storage
from bot.alerts.watcher import diff_tasks
from bot.clock import SystemClock
from bot.smsc.models import Task, TaskStatus
from bot.smsc.simulator import SimTask
from tests.fakes.rig import ADMIN_CHAT, running_rig

TELEGRAM_OVERALL_PER_SECOND = 30.0  # Telegram's own flood limit: the fan-out's physical floor


@dataclass(frozen=True)
class DiffResult:
    """Timings of one diff of a large list."""

    tasks: int
    changed: int
    median_ms: float
    max_ms: float

    def describe(self) -> str:
        """One line of figures."""
        return (
            f"diff_{self.tasks}_tasks: median {self.median_ms:.1f} ms, max {self.max_ms:.1f} ms "
            f"({self.changed} changed; target < 100 ms)"
        )


def bench_diff(n: int = 10_000, rounds: int = 20) -> DiffResult:
    """Time `diff_tasks` over `n` tasks of which 1% changed status."""
    tasks = [
        Task(id=i, name=f"task {i}", status=TaskStatus(i % 5), created_raw="01.11.2026 10:00:00")
        for i in range(n)
    ]
    known = {t.id: int(t.status) for t in tasks}
    for i in range(0, n, 100):
        known[i] = int(TaskStatus.RUNNING) if tasks[i].status != TaskStatus.RUNNING else 0
    now = datetime.now(UTC)
    times = []
    changed = 0
    for _ in range(rounds):
        start = time.perf_counter()
        diff = diff_tasks(known, tasks, baseline_done=True, notify_canceled=True, now=now)
        times.append((time.perf_counter() - start) * 1000)
        changed = len(diff.changed)
    return DiffResult(n, changed, statistics.median(times), max(times))


@dataclass(frozen=True)
class FanoutResult:
    """What one completion alert to many chats cost."""

    chats: int
    wall_s: float
    requests: int
    uploads: int
    retry_afters: int
    delivered: int
    reply_s: float  # a person's /help, sent a third of the way into the fan-out, answered

    @property
    def limit_s(self) -> float:
        """The shortest time Telegram's overall limit allows for one message per chat."""
        return self.chats / TELEGRAM_OVERALL_PER_SECOND

    def describe(self) -> str:
        """One line of figures."""
        return (
            f"fanout_{self.chats}_chats: {self.chats} chats in {self.wall_s:.1f} s, limit "
            f"{self.limit_s:.1f} s, {self.wall_s / self.limit_s:.2f}x (target <= 1.1x); "
            f"{self.delivered} delivered ({self.delivered / self.wall_s:.1f} msg/s), "
            f"{self.requests} Telegram requests, "
            f"{self.uploads} upload(s) (must be 1), {self.retry_afters} 429s (must be 0); "
            f"a reply during it in {self.reply_s:.2f} s (target <= 0.5 s)"
        )


async def bench_fanout(chats: int = 1000) -> FanoutResult:
    """Deliver one completion alert (with its CSV) to `chats` subscribed chats."""
    with tempfile.TemporaryDirectory() as tmp:
        async with running_rig(
            Path(tmp), clock=SystemClock(), options={"run_delivery": False}
        ) as rig:
            db = rig.services.db
            now = rig.clock.now()
            # A realistic mix: mostly private chats, some groups (20 a minute each).
            for i in range(chats):
                chat_id = -1_000_000 - i if i % 10 == 0 else 1_000_000 + i
                await storage.subscribe(db, chat_id, None, now)
            rig.sim.add_task(SimTask(1, "Monthly export", TaskStatus.RUNNING, rows=2_000))
            await rig.services.watcher.poll()
            rig.sim.set_status(1, TaskStatus.COMPLETED)
            # Past the list cache: the real clock moves on its own, so force a fresh list.
            rig.services.smsc.invalidate_cache()
            await rig.services.watcher.poll()
            rig.emu.enforce_flood_limits = True
            before = len(rig.emu.calls)
            start = time.perf_counter()
            fan_out = asyncio.ensure_future(rig.services.deliverer.deliver_due())
            await rig.emu.wait_for("sendDocument", count=max(1, chats // 3), timeout=600)
            asked = time.perf_counter()
            rig.emu.send_message(ADMIN_CHAT, "/help")
            await rig.emu.wait_for("sendMessage", chat_id=ADMIN_CHAT, timeout=60)
            reply = time.perf_counter() - asked
            await fan_out
            wall = time.perf_counter() - start
            docs = [c for c in rig.emu.calls[before:] if c.method == "sendDocument"]
            return FanoutResult(
                chats=chats,
                wall_s=wall,
                requests=len(rig.emu.calls) - before,
                uploads=sum(1 for c in docs if c.files),
                retry_afters=rig.emu.flood_429s,
                delivered=sum(1 for c in docs if c.status == 200),
                reply_s=reply,
            )


@dataclass(frozen=True)
class LatencyResult:
    """From a task's status change on SMSC to the first alert delivered in Telegram."""

    poll_interval: float
    latency_s: float

    def describe(self) -> str:
        """One line of figures."""
        target = self.poll_interval + 2
        return (
            f"alert_latency: {self.latency_s:.1f} s from status change to first delivered alert "
            f"(POLL_INTERVAL {self.poll_interval:g} s; target <= {target:g} s; worst case: the "
            "change lands just after a poll)"
        )


async def bench_latency(poll_interval: float = 60.0) -> LatencyResult:
    """Run the real scheduled watcher; change a task just after a poll; time the alert."""
    with tempfile.TemporaryDirectory() as tmp:
        async with running_rig(
            Path(tmp),
            clock=SystemClock(),
            options={"schedule_watcher": True},
            poll_interval=poll_interval,
        ) as rig:
            await storage.subscribe(rig.services.db, 1, None, rig.clock.now())
            rig.sim.add_task(SimTask(1, "latency", TaskStatus.RUNNING, rows=100))
            await rig.emu.wait_until(lambda: rig.services.watcher.polls >= 1, timeout=30)
            start = time.perf_counter()
            rig.sim.set_status(1, TaskStatus.COMPLETED)
            await rig.emu.wait_for("sendDocument", ok=True, timeout=poll_interval + 30)
            return LatencyResult(poll_interval, time.perf_counter() - start)
