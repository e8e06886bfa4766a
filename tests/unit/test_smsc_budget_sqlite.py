"""The durable SMSC budget on SQLite: shared by every process on one database, free of
secrets, and not in the way when the store breaks or is locked.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

import storage
from bot.clock import FakeClock
from bot.smsc.budget import MemoryBudgetStore, Ticket, scope_of
from bot.smsc.client import SmscClient, SmscCredentials
from bot.smsc.errors import SmscAuthError, SmscBudgetError
from bot.smsc.etiquette import RequestKey, Throttle
from bot.smsc.simulator import Fault
from storage.smsc_budget import SqliteBudgetStore, budget_rows
from tests.fakes.budget_support import LIST, budget
from tests.fakes.smsc_support import (
    LOGIN,
    PASSWORD,
    WRONG_PASSWORD,
    Sim,
    add_tasks,
    make_client,
    until,
)

# --- SQLite: the same budget for every process on one database ---------------------------------


async def test_two_connections_on_one_file_share_the_budget(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "bot.sqlite3"
    one = await storage.open_database(path)
    two = await storage.open_database(path)
    try:
        a = budget(SqliteBudgetStore(one), clock)
        b = budget(SqliteBudgetStore(two), clock)
        assert isinstance(await a.reserve(LIST, probe=False), Ticket)
        assert isinstance(await b.reserve(LIST, probe=False), Ticket)
        assert isinstance(await a.reserve(LIST, probe=False), Throttle)
        assert isinstance(await b.reserve(LIST, probe=False), Throttle)
        assert len(await budget_rows(one)) == 2
    finally:
        await storage.close_database(one)
        await storage.close_database(two)


def _database_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.glob("bot.sqlite3*"))


async def test_the_table_holds_no_credentials_and_no_file_names(
    tmp_path: Path, session: aiohttp.ClientSession, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 2)
    path = tmp_path / "bot.sqlite3"
    db = await storage.open_database(path)
    try:
        client = make_client(session, sim.url, clock, budget=SqliteBudgetStore(db))
        await client.list_tasks()
        await client.download(tmp_path, name="task_2.csv")
        rows = await budget_rows(db)
    finally:
        await storage.close_database(db)
    assert {r.scope for r in rows} == {
        "*",
        scope_of(LIST),
        scope_of(RequestKey.for_file(None, "task_2.csv")),
    }
    raw = _database_bytes(tmp_path)
    assert b"smsc_budget" in raw
    for secret in (LOGIN, PASSWORD, "task_2.csv"):
        assert secret.encode() not in raw


async def test_a_restarted_client_honours_the_failed_login_of_the_last(
    tmp_path: Path, session: aiohttp.ClientSession, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 1)
    db = await storage.open_database(tmp_path / "bot.sqlite3")
    wrong = SmscCredentials(login=LOGIN, password=WRONG_PASSWORD)
    try:
        for _ in range(8):  # a crash loop: a new client (process) every 7 s
            client = make_client(
                session, sim.url, clock, credentials=wrong, budget=SqliteBudgetStore(db)
            )
            with pytest.raises(SmscAuthError) as info:
                await client.list_tasks()
            assert "next login attempt in" in str(info.value)
            clock.advance(7)
    finally:
        await storage.close_database(db)
    assert len(sim.state.failed_logins) == 1
    assert len(sim.state.requests) == 1


async def test_a_broken_budget_store_falls_back_to_the_in_process_limits(
    tmp_path: Path,
    session: aiohttp.ClientSession,
    sim: Sim,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_tasks(sim.state, 1)
    db = await storage.open_database(tmp_path / "bot.sqlite3")
    client = make_client(session, sim.url, clock, budget=SqliteBudgetStore(db))
    await storage.close_database(db)
    for _ in range(2):
        await client.list_page(cnt=3)
    with pytest.raises(SmscBudgetError):  # the in-process window still holds
        await client.list_page(cnt=3)
    assert client.stats.budget_unavailable == 2
    warnings = [r for r in caplog.records if "in-process SMSC limits alone" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per request


async def test_a_database_locked_by_another_process_does_not_stop_requests(
    tmp_path: Path, session: aiohttp.ClientSession, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 1)
    path = tmp_path / "bot.sqlite3"
    db = await storage.open_database(path)
    await db.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        client = make_client(session, sim.url, clock, budget=SqliteBudgetStore(db))
        assert [t.id for t in await client.list_tasks()] == [1]
        assert client.stats.budget_unavailable == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
        await storage.close_database(db)


async def test_error_9_in_a_fault_leaves_a_backoff_for_the_next_process(
    tmp_path: Path, session: aiohttp.ClientSession, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 1)
    sim.state.inject(Fault("error", code=9))
    db = await storage.open_database(tmp_path / "bot.sqlite3")
    try:
        first = make_client(session, sim.url, clock, budget=SqliteBudgetStore(db))
        with pytest.raises(Exception, match="SMSC answered error 9"):
            await first.list_tasks()
        clock.advance(10)  # past the global pause, inside the key's minute
        second = make_client(session, sim.url, clock, budget=SqliteBudgetStore(db))
        with pytest.raises(Exception, match="waiting out SMSC's error 9") as info:
            await second.list_tasks()
        assert getattr(info.value, "sent", True) is False
    finally:
        await storage.close_database(db)
    assert len(sim.state.requests) == 1


async def test_a_wall_clock_step_forward_unlocks_nothing_early_in_a_process(
    client: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 1)
    for _ in range(2):
        await client.list_page(cnt=3)
    clock._wall += timedelta(hours=1)  # the stored rows now look an hour old
    with pytest.raises(SmscBudgetError):  # the monotonic etiquette still counts them
        await client.list_page(cnt=3)
    assert len(sim.state.requests) == 2


async def test_a_cancelled_request_still_counts_in_the_budget(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock, tmp_path: Path
) -> None:
    add_tasks(sim.state, 1)
    store = MemoryBudgetStore()
    client = make_client(session, sim.url, clock, budget=store)
    sim.state.inject(Fault("slow", seconds=30))
    # A download runs in its caller's task (lists are shielded flights nobody cancels).
    call = asyncio.ensure_future(client.download(tmp_path, task_id=1))
    await until(lambda: clock.sleepers > 0)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await until(lambda: all(r.until <= clock.now() for r in store.rows if r.event == "sent"))

    sent = [r for r in store.rows if r.event == "sent"]
    assert len(sent) == 1  # recorded before it went out, ended when it was abandoned
    assert sent[0].until == clock.now()
    clock.advance(30)
