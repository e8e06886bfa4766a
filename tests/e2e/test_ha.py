"""Three real replicas on PostgreSQL: kill -9 the leader mid fan-out, then a rolling restart.

Every chat gets each alert exactly once (a send cut off by the kill may repeat), a standby
takes over within 15 s, SMSC never sees more than 2 identical requests in 60 s from the whole
set, and restarting the replicas one by one loses nothing.
"""

from __future__ import annotations

import contextlib
import signal
from datetime import UTC, datetime
from pathlib import Path

import storage
from bot.clock import SystemClock
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask, SimulatorState, create_app
from bot.tg_emulator import TelegramEmulator
from tests.fakes.ha_support import (
    Replicas,
    delivered,
    ha_database,
    leader,
    replica_get,
    seed_subscribers,
    wait_for,
)
from tests.fakes.pg_support import PgServer
from tests.fakes.rig import LOGIN, PASSWORD, TOKEN, serve
from tests.fakes.smsc_support import identical_bursts
from tests.fakes.storage_support import failed_alert

CHATS = [8000 + n for n in range(100)]
TASK = 501  # completes: the watcher's alert with the CSV (sendDocument)
LATER = 502  # fails later, during the rolling restart (sendMessage)


async def _check_endpoints(replicas: Replicas, lead: str) -> None:
    """Each replica says what it is: the leader in /metrics, a standby in /readyz."""
    standby = next(r for r in replicas.running if r != lead)
    await replicas.healthy(standby)
    ready = await replica_get(replicas.ports[standby], "/readyz")
    assert ready is not None
    assert ready[0] == 200
    assert ready[1].startswith(f"standby: ready to serve commands ({standby})")
    metrics = await replica_get(replicas.ports[lead], "/metrics")
    assert metrics is not None
    assert f'bot_leader{{replica="{lead}"}} 1.0' in metrics[1]
    metrics = await replica_get(replicas.ports[standby], "/metrics")
    assert metrics is not None
    assert f'bot_leader{{replica="{standby}"}} 0.0' in metrics[1]


async def _kill_the_leader_mid_fan_out(
    replicas: Replicas, watch: storage.Database, emu: TelegramEmulator
) -> str:
    """Phase 1: return the replica that was killed."""

    async def fanning_out() -> bool:
        return await delivered(watch) >= 20

    await wait_for(fanning_out, within=40)
    first = await leader(watch)
    assert first is not None
    assert first.replica in replicas.running
    assert await replicas.kill(first.replica) == -signal.SIGKILL
    assert await delivered(watch) < len(CHATS), "the kill should land mid fan-out"

    async def new_leader() -> bool:
        info = await leader(watch)
        return info is not None and info.replica != first.replica

    await wait_for(new_leader, within=15)  # the bound; it takes about LEADER_RETRY
    second = await leader(watch)
    assert second is not None
    assert second.replica in replicas.running
    await _check_endpoints(replicas, second.replica)

    async def all_delivered() -> bool:
        return await delivered(watch) == len(CHATS)

    await wait_for(all_delivered, within=40)
    per_chat = {c: len(emu.calls_to("sendDocument", chat_id=c, ok=True)) for c in CHATS}
    assert all(n >= 1 for n in per_chat.values()), "a chat never got the alert"
    twice = [c for c, n in per_chat.items() if n > 1]
    assert len(twice) <= 1, f"repeated to {twice} (only the send cut off may repeat)"
    return first.replica


async def _roll_all(
    replicas: Replicas, watch: storage.Database, emu: TelegramEmulator, killed: str
) -> None:
    """Phase 2: queue an alert, replace every replica in turn; nothing lost, nothing twice."""
    now = datetime.now(UTC)
    await storage.record_poll(watch, tasks=[], alerts=[failed_alert(LATER, "rolled", now)], now=now)
    await replicas.start(killed + "b")  # the killed one comes back under a new name
    await replicas.healthy(killed + "b")
    for old in [r for r in replicas.running if r != killed + "b"]:
        await replicas.healthy(old)  # each new one healthy before the next one stops
        assert await replicas.stop(old) == 0
        await replicas.start(old + "b")
        await replicas.healthy(old + "b")

    async def both_delivered() -> bool:
        return await delivered(watch) == 2 * len(CHATS)

    await wait_for(both_delivered, within=40)
    failed = {c: len(emu.calls_to("sendMessage", chat_id=c, ok=True)) for c in CHATS}
    assert failed == dict.fromkeys(CHATS, 1)


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
        replicas = Replicas(
            procs, url, emu_url=emu.url, sim_url=sim_url, chats=CHATS, root=tmp_path
        )
        for replica in ("r1", "r2", "r3"):
            await replicas.start(replica)
        killed = await _kill_the_leader_mid_fan_out(replicas, watch, emu)
        await _roll_all(replicas, watch, emu, killed)
        final = await leader(watch)
        assert final is not None
        assert final.replica.endswith("b")
        # /status (polling: the leader takes the updates) names the leader and since when.
        asker = CHATS[0]
        emu.send_message(asker, "/status", user_id=asker)
        calls = await emu.wait_for("sendMessage", chat_id=asker, count=2, ok=True, timeout=30)
        assert f"Leader: this replica ({final.replica}) since " in str(calls[-1].params["text"])
        for replica in list(replicas.running):
            assert await replicas.stop(replica) == 0
    assert identical_bursts(sim) == []  # never more than 2 identical requests in 60 s
