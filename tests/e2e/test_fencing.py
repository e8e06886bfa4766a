"""The fencing token end to end on PostgreSQL: a superseded leader sends nothing more.

Two deliverers on one database, as two replicas would be: the old leader is mid fan-out (its
send to one chat hangs, like a stalled process) when a new term begins and the new leader
delivers everything still pending. When the old one resumes, its next claim fails: no chat gets
the alert twice, and the one send that was in flight was never accepted twice either.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import storage
from bot.alerts.delivery import Deliverer
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask
from bot.tg_emulator import ApiFailure
from storage.fencing import begin_term
from tests.fakes.ha_support import ha_database
from tests.fakes.pg_support import PgServer
from tests.fakes.rig import running_rig

CHATS = tuple(range(9001, 9009))
STALLED = CHATS[3]  # the old leader's send to this chat hangs until the new leader is done


async def test_a_superseded_leader_stops_mid_fan_out_and_no_chat_gets_it_twice(
    pg_server: PgServer, tmp_path: Path
) -> None:
    async with (
        ha_database(pg_server) as url,
        running_rig(tmp_path, options={"run_delivery": False}, database_url=url) as rig,
    ):
        for chat in CHATS:
            rig.emu.add_chat(chat)
            await storage.subscribe(rig.services.db, chat, None, rig.clock.now())
        await rig.finish_task(SimTask(120, "fenced", TaskStatus.RUNNING), TaskStatus.FAILED)
        old_db, new_db = await storage.open_url(url), await storage.open_url(url)
        try:
            # One chat at a time, as a fan-out cut anywhere would be.
            old = Deliverer(rig.app.bot, old_db, rig.services.files, rig.clock, concurrency=1)
            new = Deliverer(rig.app.bot, new_db, rig.services.files, rig.clock)
            old.fence(await begin_term(old_db, "old", rig.clock.now()))
            rig.emu.fail("sendMessage", ApiFailure.timeout(), chat_id=STALLED)
            old_pass = asyncio.ensure_future(old.deliver_due())
            await rig.emu.wait_for("sendMessage", chat_id=STALLED, timeout=30)  # in flight

            new.fence(await begin_term(new_db, "new", rig.clock.now()))  # the failover
            assert await new.deliver_due() == len(CHATS) - 3
            assert not new.superseded
            rig.emu.release_held()  # the old leader wakes up and carries on
            await asyncio.wait_for(old_pass, timeout=30)

            assert old.superseded
            assert new.delivered == len(CHATS) - 3
            assert old.delivered == 3  # the chats before the stall, none after it
            accepted = [int(c.params["chat_id"]) for c in rig.emu.calls_to("sendMessage", ok=True)]
            assert sorted(accepted) == sorted(CHATS)  # every chat once, not one of them twice
            assert await storage.count_pending(rig.services.db) == 0
            assert await old.deliver_due() == 0  # and it never tries again
            assert len(rig.emu.calls_to("sendMessage", ok=True)) == len(CHATS)
        finally:
            await storage.close_database(old_db)
            await storage.close_database(new_db)
