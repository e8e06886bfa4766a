"""Three real replicas on PostgreSQL: kill -9 the leader mid fan-out, then a rolling restart.

Every chat gets each alert exactly once (a send cut off by the kill may repeat), a standby
takes over within 15 s, SMSC never sees more than 2 identical requests in 60 s from the whole
set, and restarting the replicas one by one loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import UTC, datetime
from pathlib import Path

import storage
from bot.clock import SystemClock
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask, SimulatorState, create_app
from tests.ha_support import (
    delivered,
    ha_database,
    leader,
    replica_env,
    replica_get,
    replica_health,
    seed_subscribers,
    wait_for,
)
from tests.pg_support import PgServer
from tests.rig import LOGIN, PASSWORD, TOKEN, bot_process, serve
from tests.smsc_support import identical_bursts
from tests.tg_emulator import TelegramEmulator

CHATS = [8000 + n for n in range(100)]
TASK = 501  # completes: the watcher's alert with the CSV (sendDocument)
LATER = 502  # fails later, during the rolling restart (sendMessage)


async def test_kill_9_the_leader_mid_fan_out_then_roll_all_three(
    pg_server: PgServer, tmp_path: Path
) -> None:
    sim = SimulatorState(SystemClock(), login=LOGIN, password=PASSWORD)
    sim.add_task(SimTask(TASK, "HA fan-out", TaskStatus.COMPLETED, rows=20))
    async with (
        ha_database(pg_server) as url,
        TelegramEmulator(token=TOKEN) as emu,
        serve(create_app(sim)) as sim_url,
        contextlib.AsyncExitStack() as procs,
    ):
        await seed_subscribers(url, CHATS, in_progress=[TASK])
        for chat in CHATS:
            emu.add_chat(chat)
        watch = await storage.open_url(url)
        procs.push_async_callback(storage.close_database, watch)
        running: dict[str, asyncio.subprocess.Process] = {}
        ports: dict[str, int] = {}

        async def start(replica: str) -> None:
            folder = tmp_path / replica
            folder.mkdir(exist_ok=True)
            env = replica_env(url, emu.url, sim_url, replica, CHATS)
            running[replica] = await procs.enter_async_context(
                bot_process(env, folder, capture_stderr=False)
            )
            ports[replica] = int(env["PORT"])

        async def healthy(replica: str) -> None:
            # A rolling restart waits for the new replica before stopping the next one.
            async def answers() -> bool:
                return await replica_health(ports[replica]) == 200

            await wait_for(answers, within=30, every=0.1)

        for replica in ("r1", "r2", "r3"):
            await start(replica)

        # The leader polls, finds the task completed and fans out to 100 chats.
        async def fanning_out() -> bool:
            return await delivered(watch) >= 20

        await wait_for(fanning_out, within=40)
        first = await leader(watch)
        assert first is not None
        assert first.replica in running
        running[first.replica].send_signal(signal.SIGKILL)
        assert await running.pop(first.replica).wait() == -signal.SIGKILL
        in_flight = await delivered(watch)
        assert in_flight < len(CHATS), "the kill should land in the middle of the fan-out"

        async def new_leader() -> bool:
            info = await leader(watch)
            return info is not None and info.replica != first.replica

        await wait_for(new_leader, within=15)  # the bound; it takes about LEADER_RETRY
        second = await leader(watch)
        assert second is not None
        assert second.replica in running

        # Each replica says what it is: the leader in /metrics, a standby in /readyz.
        standby = next(r for r in running if r != second.replica)
        await healthy(standby)
        ready = await replica_get(ports[standby], "/readyz")
        assert ready is not None
        assert ready[0] == 200
        assert ready[1].startswith(f"standby: ready to serve commands ({standby})")
        metrics = await replica_get(ports[second.replica], "/metrics")
        assert metrics is not None
        assert f'bot_leader{{replica="{second.replica}"}} 1.0' in metrics[1]
        metrics = await replica_get(ports[standby], "/metrics")
        assert metrics is not None
        assert f'bot_leader{{replica="{standby}"}} 0.0' in metrics[1]

        async def all_delivered() -> bool:
            return await delivered(watch) == len(CHATS)

        await wait_for(all_delivered, within=40)
        per_chat = {c: len(emu.calls_to("sendDocument", chat_id=c, ok=True)) for c in CHATS}
        assert all(n >= 1 for n in per_chat.values()), "a chat never got the alert"
        twice = [c for c, n in per_chat.items() if n > 1]
        assert len(twice) <= 1, f"repeated to {twice} (only the send cut off may repeat)"

        # A rolling restart: a failure alert is queued, then every replica is replaced in turn.
        conn = watch
        alert = storage.NewAlert(
            kind="failed",
            task_id=LATER,
            payload={
                "task": {
                    "id": LATER,
                    "name": "rolled",
                    "status": 4,
                    "created_raw": "",
                    "time_raw": "",
                    "created": None,
                    "time": None,
                    "file": "",
                },
                "detected_at": datetime.now(UTC).isoformat(),
            },
        )
        await storage.record_poll(conn, tasks=[], alerts=[alert], now=datetime.now(UTC))
        await start(first.replica + "b")  # the killed one comes back under a new name
        await healthy(first.replica + "b")
        for old in [r for r in running if r != first.replica + "b"]:
            await healthy(old)
            running[old].send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(running.pop(old).wait(), 15) == 0
            await start(old + "b")
            await healthy(old + "b")

        async def both_delivered() -> bool:
            return await delivered(watch) == 2 * len(CHATS)

        await wait_for(both_delivered, within=40)
        failed = {c: len(emu.calls_to("sendMessage", chat_id=c, ok=True)) for c in CHATS}
        assert failed == dict.fromkeys(CHATS, 1)
        final = await leader(watch)
        assert final is not None
        assert final.replica.endswith("b")
        # /status (polling: the leader takes the updates) names the leader and since when.
        asker = CHATS[0]
        emu.send_message(asker, "/status", user_id=asker)
        calls = await emu.wait_for("sendMessage", chat_id=asker, count=2, ok=True, timeout=30)
        text = str(calls[-1].params.get("text", ""))
        assert f"Leader: this replica ({final.replica}) since " in text
        for proc in running.values():
            proc.send_signal(signal.SIGTERM)
        for proc in running.values():
            assert await asyncio.wait_for(proc.wait(), 15) == 0
    assert identical_bursts(sim) == []
