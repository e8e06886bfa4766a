"""The durable SMSC budget's rules on an in-memory store: reservations, wall-clock steps,
failed logins and lost probes, errors 9 and 4.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.smsc.budget import MemoryBudgetStore, Ticket, next_login_at
from bot.smsc.etiquette import RequestKey, Throttle
from tests.fakes.budget_support import LIST, RULES, budget


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
