"""Replicas on PostgreSQL: how long a failover takes, and /tasks latency with three replicas.

Three real `python -m bot` processes in webhook mode on one database (a throwaway cluster from
Debian's initdb/pg_ctl, as the tests use). Failover: `kill -9` the leader, time until another
replica holds the leader lock; the ceiling is LEADER_RETRY (a standby's next try) plus a round
trip. Latency: 50 chats send /tasks at once, spread over the three replicas' webhooks, timed
until each reply reaches the Bot API emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

import storage
from bot.clock import SystemClock
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask, SimulatorState, create_app
from bot.tg_emulator import TelegramEmulator
from tests.fakes.ha_support import Replicas, ha_database, leader, seed_subscribers
from tests.fakes.pg_support import PgServer, start_cluster
from tests.fakes.rig import LOGIN, PASSWORD, TOKEN, serve

SECRET = "bench_failover-secret"
RETRY = 0.5


@dataclass(frozen=True)
class FailoverResult:
    """Takeover times and /tasks latencies."""

    failovers: list[float]
    latencies: list[float]
    chats: int
    smsc_requests: int

    def describe(self) -> str:
        """One line of figures, as `python -m bench` prints it."""
        lat = sorted(self.latencies)
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        return (
            f"failover: {len(self.failovers)} kill -9 of the leader -> new leader in "
            f"{', '.join(f'{f:.2f}' for f in self.failovers)} s "
            f"(expected <= LEADER_RETRY {RETRY} s + a round trip; bound 15 s); /tasks, 3 replicas, "
            f"{self.chats} concurrent chats: median {statistics.median(lat) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms, "
            f"{self.smsc_requests} SMSC requests in all"
        )


def _update(update_id: int, chat: int) -> dict[str, object]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private", "first_name": "b"},
            "from": {"id": chat, "is_bot": False, "first_name": "b"},
            "text": "/tasks",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def _ask(
    http: aiohttp.ClientSession, emu: TelegramEmulator, port: int, update_id: int, chat: int
) -> float:
    start = time.perf_counter()
    async with http.post(
        f"http://127.0.0.1:{port}/hook",
        json=_update(update_id, chat),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    ) as response:
        response.raise_for_status()
    await emu.wait_for("sendMessage", chat_id=chat, timeout=60)
    return time.perf_counter() - start


async def _failover(replicas: Replicas, watch: storage.Database) -> float:
    current = await leader(watch)
    while current is None:
        await asyncio.sleep(0.02)
        current = await leader(watch)
    await replicas.kill(current.replica)
    start = time.perf_counter()
    while True:
        info = await leader(watch)
        if info is not None and info.replica != current.replica:
            return time.perf_counter() - start
        await asyncio.sleep(0.01)


def run(chats: int = 50, kills: int = 3) -> FailoverResult:
    """Start a cluster and three replicas; measure `kills` failovers and a /tasks burst."""
    cluster = Path(tempfile.mkdtemp(prefix="bench-failover-pg-"))
    work = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    server, stop = start_cluster(cluster)
    try:
        return asyncio.run(_run(server, work, chats, kills))
    finally:
        subprocess.run(stop, capture_output=True, timeout=60, check=False)  # noqa: S603
        shutil.rmtree(cluster, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


async def _run(server: PgServer, root: Path, chats: int, kills: int) -> FailoverResult:
    sim = SimulatorState(SystemClock(), login=LOGIN, password=PASSWORD)
    for task_id in range(1, 31):
        sim.add_task(SimTask(task_id, f"Task {task_id}", TaskStatus.COMPLETED))
    ids = [9000 + n for n in range(chats)]
    async with (
        ha_database(server) as url,
        TelegramEmulator(token=TOKEN) as emu,
        serve(create_app(sim)) as sim_url,
        contextlib.AsyncExitStack() as procs,
        aiohttp.ClientSession() as http,
    ):
        await seed_subscribers(url, [], in_progress=[])
        for chat in ids:
            emu.add_chat(chat)
        watch = await storage.open_url(url)
        procs.push_async_callback(storage.close_database, watch)
        replicas = Replicas(
            procs,
            url,
            emu_url=emu.url,
            sim_url=sim_url,
            chats=ids,
            root=root,
            LEADER_RETRY=str(RETRY),
            WEBHOOK_SECRET=SECRET,
        )
        names = ["r1", "r2", "r3"]
        for name in names:
            replicas.extra_env[name] = {"WEBHOOK_URL": "http://127.0.0.1:{port}/hook"}
            await replicas.start(name)
        for name in names:
            await replicas.healthy(name)
        failovers: list[float] = []
        for n in range(kills):
            failovers.append(await _failover(replicas, watch))
            name = f"k{n}"
            replicas.extra_env[name] = {"WEBHOOK_URL": "http://127.0.0.1:{port}/hook"}
            await replicas.start(name)
            await replicas.healthy(name)
        ports = [replicas.ports[r] for r in replicas.running]
        latencies = await asyncio.gather(
            *(_ask(http, emu, ports[i % len(ports)], 100 + i, chat) for i, chat in enumerate(ids))
        )
        for name in list(replicas.running):
            await replicas.stop(name)
    return FailoverResult(failovers, list(latencies), chats, len(sim.requests))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its line."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_failover")
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args(argv)
    print(run(args.chats, args.kills).describe(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
