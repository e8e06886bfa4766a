"""The durable SMSC budget: restarts, shared databases, lost probes and wall-clock steps."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

import storage
from bot.clock import FakeClock
from bot.smsc.budget import (
    BudgetRules,
    BudgetStore,
    MemoryBudgetStore,
    SharedBudget,
    Ticket,
    next_login_at,
    scope_of,
)
from bot.smsc.client import SmscClient, SmscClientConfig, SmscCredentials
from bot.smsc.errors import SmscAuthError, SmscBudgetError
from bot.smsc.etiquette import RequestKey, Throttle
from bot.smsc.simulator import Fault
from storage.smsc_budget import SqliteBudgetStore, budget_rows
from tests.fakes.smsc_support import LOGIN, PASSWORD, WRONG_PASSWORD, Sim, add_tasks, until

RULES = BudgetRules()
LIST = RequestKey.for_list(200, None)


def budget(store: BudgetStore, clock: FakeClock) -> SharedBudget:
    """A fresh process's view of the budget in `store`."""
    return SharedBudget(store, clock, RULES)


async def test_a_request_counts_from_the_moment_it_is_reserved() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    first = await budget(store, clock).reserve(LIST, probe=False)
    assert isinstance(first, Ticket)
    # The process died before the answer: nobody settles it, yet a new process sees it.
    clock.advance(1)
    second = await budget(store, clock).reserve(LIST, probe=False)
    assert isinstance(second, Ticket)
    clock.advance(1)
    third = await budget(store, clock).reserve(LIST, probe=False)

    assert isinstance(third, Throttle)
    assert third.reason == "window"
    # Unsettled requests count until they can no longer reach SMSC, plus the whole window.
    assert third.retry_after == pytest.approx(RULES.arrival_bound + RULES.window - 2)


async def test_a_settled_request_frees_its_slot_a_window_after_it_ended() -> None:
    clock = FakeClock()
    shared = budget(MemoryBudgetStore(), clock)
    for _ in range(2):
        ticket = await shared.reserve(LIST, probe=False)
        assert isinstance(ticket, Ticket)
        clock.advance(0.5)
        await shared.settle(ticket, "ok")
    refused = await shared.reserve(LIST, probe=False)
    assert isinstance(refused, Throttle)
    assert refused.retry_after == pytest.approx(RULES.window - 0.5)
    # Another key has its own budget.
    assert isinstance(await shared.reserve(RequestKey.for_list(200, 7), probe=False), Ticket)
    clock.advance(refused.retry_after)
    assert isinstance(await shared.reserve(LIST, probe=False), Ticket)


@pytest.mark.parametrize("step_back", [30.0, 600.0, 86400.0])
async def test_a_wall_clock_step_back_neither_unlocks_nor_locks_for_ever(step_back: float) -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    shared = budget(store, clock)
    for _ in range(2):
        ticket = await shared.reserve(LIST, probe=False)
        assert isinstance(ticket, Ticket)
        await shared.settle(ticket, "ok")
    # NTP steps the wall clock back: the rows now look like they come from the future.
    clock._wall -= timedelta(seconds=step_back)  # only the wall clock moves
    refused = await shared.reserve(LIST, probe=False)
    assert isinstance(refused, Throttle)  # still counted...
    assert refused.retry_after <= RULES.window  # ...as if sent now, not `step_back` from now
    clock.advance(RULES.window)
    assert isinstance(await shared.reserve(LIST, probe=False), Ticket)


async def test_a_failed_login_holds_every_later_process_for_ten_minutes() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    ticket = await budget(store, clock).reserve(LIST, probe=True)
    assert isinstance(ticket, Ticket)
    wait = await budget(store, clock).settle(ticket, "auth_failed")
    assert wait == pytest.approx(RULES.auth_retry_interval)

    for _ in range(8):  # eight restarts in the next minutes
        clock.advance(60)
        refused = await budget(store, clock).reserve(LIST, probe=True)
        assert isinstance(refused, Throttle)
        assert refused.reason == "auth"
    clock.advance(RULES.auth_retry_interval - 8 * 60)
    assert isinstance(await budget(store, clock).reserve(LIST, probe=True), Ticket)


def test_three_failed_logins_wait_for_the_first_to_leave_the_half_hour() -> None:
    clock = FakeClock()
    now = clock.now()
    failures = [now - timedelta(seconds=1200), now - timedelta(seconds=600), now]

    next_at = next_login_at(failures, now, RULES)

    assert next_at == failures[0] + timedelta(seconds=RULES.auth_failure_span)
    assert next_login_at([now], now, RULES) == now + timedelta(seconds=RULES.auth_retry_interval)


async def test_a_probe_lost_in_a_crash_counts_as_a_failed_login() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    lost = await budget(store, clock).reserve(LIST, probe=True)
    assert isinstance(lost, Ticket)
    # While it may still be in flight in its (other) process: a short, waitable pause.
    in_flight = await budget(store, clock).reserve(LIST, probe=True)
    assert isinstance(in_flight, Throttle)
    assert in_flight.reason == "probe"
    clock.advance(RULES.arrival_bound)
    crashed = await budget(store, clock).reserve(LIST, probe=True)
    assert isinstance(crashed, Throttle)
    assert crashed.reason == "unconfirmed"
    assert crashed.retry_after == pytest.approx(RULES.auth_retry_interval - RULES.arrival_bound)
    # A process whose login is proven is not held up by it.
    assert isinstance(await budget(store, clock).reserve(LIST, probe=False), Ticket)


async def test_a_success_clears_the_backoffs_and_lost_probes() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    shared = budget(store, clock)
    lost = await shared.reserve(RequestKey.for_list(5, None), probe=True)
    assert isinstance(lost, Ticket)
    clock.advance(RULES.arrival_bound)
    ticket = await shared.reserve(LIST, probe=False)
    assert isinstance(ticket, Ticket)
    await shared.settle(ticket, "ok")

    assert sorted(r.event for r in await shared.snapshot()) == ["login_ok", "sent", "sent"]
    assert isinstance(await shared.reserve(LIST, probe=True), Ticket)


async def test_a_lost_probe_is_not_held_against_a_password_known_to_work() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    proven = await budget(store, clock).reserve(LIST, probe=True)
    assert isinstance(proven, Ticket)
    await budget(store, clock).settle(proven, "ok")
    # The next process is killed before it reads its first answer...
    clock.advance(70)
    assert isinstance(await budget(store, clock).reserve(LIST, probe=True), Ticket)
    clock.advance(70)
    # ...and the one after that may still log in: the last verdict was a working login.
    assert isinstance(await budget(store, clock).reserve(LIST, probe=True), Ticket)


async def test_a_failure_after_a_success_makes_lost_probes_count_again() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    ok = await budget(store, clock).reserve(LIST, probe=True)
    assert isinstance(ok, Ticket)
    await budget(store, clock).settle(ok, "ok")
    clock.advance(70)
    bad = await budget(store, clock).reserve(LIST, probe=True)
    assert isinstance(bad, Ticket)
    await budget(store, clock).settle(bad, "auth_failed")  # the password was changed
    clock.advance(RULES.auth_retry_interval)
    lost = await budget(store, clock).reserve(LIST, probe=True)
    assert isinstance(lost, Ticket)  # its process dies before the answer
    clock.advance(RULES.arrival_bound + 1)
    held = await budget(store, clock).reserve(LIST, probe=True)
    assert isinstance(held, Throttle)
    assert held.reason == "unconfirmed"


async def test_error_9_blocks_the_key_and_pauses_everything_for_every_process() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    ticket = await budget(store, clock).reserve(LIST, probe=False)
    assert isinstance(ticket, Ticket)
    await budget(store, clock).settle(ticket, "rate_limited")
    other = await budget(store, clock).reserve(RequestKey.for_file(3, None), probe=False)
    assert isinstance(other, Throttle)
    assert other.retry_after == pytest.approx(RULES.rate_limit_pause)
    clock.advance(RULES.rate_limit_pause)
    assert isinstance(
        await budget(store, clock).reserve(RequestKey.for_file(3, None), probe=False), Ticket
    )
    same = await budget(store, clock).reserve(LIST, probe=False)
    assert isinstance(same, Throttle)
    assert same.reason == "rate_limited"


async def test_the_table_stays_small() -> None:
    clock = FakeClock()
    shared = budget(MemoryBudgetStore(), clock)
    for n in range(500):
        ticket = await shared.reserve(RequestKey.for_file(n, None), probe=False)
        assert isinstance(ticket, Ticket)
        await shared.settle(ticket, "ok")
        clock.advance(1)
    assert len(await shared.snapshot()) <= RULES.window + 1


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
        client = SmscClient(
            session,
            SmscCredentials(login=LOGIN, password=PASSWORD),
            config=SmscClientConfig(base_url=sim.url),
            clock=clock,
            budget=SqliteBudgetStore(db),
        )
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
    config = SmscClientConfig(base_url=sim.url)
    try:
        for _ in range(8):  # a crash loop: a new client (process) every 7 s
            client = SmscClient(
                session, wrong, config=config, clock=clock, budget=SqliteBudgetStore(db)
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
    client = SmscClient(
        session,
        SmscCredentials(login=LOGIN, password=PASSWORD),
        config=SmscClientConfig(base_url=sim.url),
        clock=clock,
        budget=SqliteBudgetStore(db),
    )
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
        client = SmscClient(
            session,
            SmscCredentials(login=LOGIN, password=PASSWORD),
            config=SmscClientConfig(base_url=sim.url),
            clock=clock,
            budget=SqliteBudgetStore(db),
        )
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
    creds = SmscCredentials(login=LOGIN, password=PASSWORD)
    config = SmscClientConfig(base_url=sim.url)
    try:
        first = SmscClient(session, creds, config=config, clock=clock, budget=SqliteBudgetStore(db))
        with pytest.raises(Exception, match="SMSC answered error 9"):
            await first.list_tasks()
        clock.advance(10)  # past the global pause, inside the key's minute
        second = SmscClient(
            session, creds, config=config, clock=clock, budget=SqliteBudgetStore(db)
        )
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
    client = SmscClient(
        session,
        SmscCredentials(login=LOGIN, password=PASSWORD),
        config=SmscClientConfig(base_url=sim.url),
        clock=clock,
        budget=store,
    )
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


async def test_error_4_holds_every_later_process_for_half_an_hour() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore()
    ticket = await budget(store, clock).reserve(LIST, probe=True)
    assert isinstance(ticket, Ticket)
    assert await budget(store, clock).settle(ticket, "ip_blocked") == RULES.ip_block_backoff
    clock.advance(RULES.ip_block_backoff - 1)
    held = await budget(store, clock).reserve(RequestKey.for_file(1, None), probe=False)
    assert isinstance(held, Throttle)
    assert held.reason == "ip_blocked"
    assert held.retry_after == pytest.approx(1)
    clock.advance(1)
    assert isinstance(await budget(store, clock).reserve(LIST, probe=True), Ticket)
