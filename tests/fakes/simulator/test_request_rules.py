"""Who gets an answer: credentials and the IP block, paging parameters, the error-9 rate rules."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.smsc.simulator import Fault, SimTask
from tests.fakes.simulator.support import MakeSim, Sim
from tests.fakes.smsc_support import until

# --- auth and IP block ---------------------------------------------------------------------------


async def test_apikey(make_sim: MakeSim) -> None:
    sim = await make_sim(apikey="K3Y")
    async with sim.session.get(
        sim.url, params={"apikey": "K3Y", "get_list": "1", "fmt": "1"}
    ) as resp:
        assert (await resp.text()).startswith("5,")
    async with sim.session.get(
        sim.url, params={"apikey": "nope", "get_list": "1", "fmt": "1"}
    ) as resp:
        assert await resp.text() == "0,-2"


async def test_apikey_rejected_when_none_configured(sim: Sim) -> None:
    async with sim.session.get(
        sim.url, params={"apikey": "x", "get_list": "1", "fmt": "1"}
    ) as resp:
        assert await resp.text() == "0,-2"


async def test_wrong_login_is_error_2_and_recorded(sim: Sim) -> None:
    assert await sim.get(get_list=1, login="eve", fmt=1) == (200, "0,-2")
    assert [(f.ip, f.login) for f in sim.state.failed_logins] == [("127.0.0.1", "eve")]
    assert sim.state.requests[-1].response_error == 2


async def test_no_credentials_is_error_2_without_strike(sim: Sim) -> None:
    async with sim.session.get(sim.url, params={"get_list": "1", "fmt": "1"}) as resp:
        assert await resp.text() == "0,-2"
    assert sim.state.failed_logins == []


async def test_five_failed_logins_block_the_ip_for_30_minutes(sim: Sim) -> None:
    for attempt in range(5):
        assert await sim.get(get_list=1, psw=f"guess{attempt}", fmt=1) == (200, "0,-2")
    assert await sim.get(get_list=1, fmt=1) == (200, "0,-4")
    sim.clock.advance(30 * 60 - 1)
    assert await sim.get(get_list=1, fmt=1) == (200, "0,-4")
    sim.clock.advance(1)
    _, body = await sim.get(get_list=1, fmt=1)
    assert body.startswith("5,")


async def test_failed_logins_spread_over_30_minutes_do_not_block(sim: Sim) -> None:
    for attempt in range(5):
        await sim.get(get_list=1, psw=f"guess{attempt}", fmt=1)
        sim.clock.advance(8 * 60)
    _, body = await sim.get(get_list=1, fmt=1)
    assert body.startswith("5,")


# --- paging --------------------------------------------------------------------------------------


async def ids(sim: Sim, **params: Any) -> list[int]:
    _, body = await sim.get(get_list=1, fmt=3, **params)
    return [t["id"] for t in json.loads(body)]


async def test_cnt_and_after_id_newest(sim: Sim) -> None:
    assert await ids(sim, cnt=2) == [5, 4]
    assert await ids(sim, cnt=2, after_id=4) == [3, 2]
    assert await ids(sim, cnt=2, after_id=2) == [1]
    assert await ids(sim, after_id=1) == []
    assert await ids(sim, after_id=100) == [5, 4, 3, 2, 1]  # not a task id: ids below it


async def test_cnt_and_after_id_oldest(make_sim: MakeSim) -> None:
    sim = await make_sim(order="oldest")
    assert await ids(sim, cnt=2) == [1, 2]
    assert await ids(sim, cnt=2, after_id=2) == [3, 4]
    assert await ids(sim, after_id=4) == [5]
    assert await ids(sim, after_id=0) == [1, 2, 3, 4, 5]  # not a task id: ids above it


async def test_default_cnt_is_100(make_sim: MakeSim) -> None:
    sim = await make_sim(seeded=False)
    for task_id in range(1, 131):
        sim.state.add_task(SimTask(task_id, f"t{task_id}"))
    assert len(await ids(sim)) == 100


@pytest.mark.parametrize("params", [{"cnt": "0"}, {"cnt": "-1"}, {"cnt": "abc"}, {"after_id": "x"}])
async def test_bad_paging_params_are_error_1(sim: Sim, params: dict[str, str]) -> None:
    assert await sim.get(get_list=1, fmt=1, **params) == (200, "0,-1")


async def test_neither_get_list_nor_get_file_is_error_1(sim: Sim) -> None:
    assert await sim.get(fmt=1) == (200, "0,-1")
    assert await sim.get(get_list=0, fmt=1) == (200, "0,-1")


# --- the rate rules (error 9) --------------------------------------------------------------------


async def test_fourth_identical_request_within_a_minute_is_error_9(sim: Sim) -> None:
    for _ in range(3):
        assert (await sim.get(get_list=1, fmt=1))[1].startswith("5,")
    assert await sim.get(get_list=1, fmt=1) == (200, "0,-9")
    assert await sim.post(get_list=1, fmt=1) == (200, "0,-9")  # the method is not part of it
    assert [r.response_error for r in sim.state.requests] == [None, None, None, 9, 9]
    assert (await sim.get(get_list=1, fmt=1, cnt=100))[1].startswith("5,")  # different params
    sim.clock.advance(59)
    assert await sim.get(get_list=1, fmt=1) == (200, "0,-9")
    sim.clock.advance(1)
    assert (await sim.get(get_list=1, fmt=1))[1].startswith("5,")
    assert sim.state.upstream_count(get_list=1, fmt=1) == 8


async def test_identical_rule_applies_to_get_file(sim: Sim) -> None:
    for _ in range(3):
        assert (await sim.get(get_file=1, id=1))[1].startswith("phone;")
    assert await sim.get(get_file=1, id=1) == (200, "ERROR = 9 (duplicate request, wait a minute)")
    assert (await sim.get(get_file=1, name="task_1.csv"))[1].startswith("phone;")  # other params


async def test_15_in_flight_for_a_login_make_the_next_one_error_9(sim: Sim) -> None:
    sim.state.inject(Fault("slow", seconds=5), count=15)
    slow = [asyncio.create_task(sim.get(get_list=1, fmt=1, cnt=100 + i)) for i in range(15)]
    await until(lambda: sim.clock.sleepers == 15, "15 parked requests")
    assert await sim.get(get_list=1, fmt=1) == (200, "0,-9")
    assert sim.state.max_concurrent_seen == 16
    sim.clock.advance(5)
    answers = await asyncio.gather(*slow)
    assert all(status == 200 and body.startswith("5,") for status, body in answers)
    assert sim.state.in_flight == 0
    assert (await sim.get(get_list=1, fmt=1))[1].startswith("5,")


async def test_concurrency_is_counted_per_login(make_sim: MakeSim) -> None:
    sim = await make_sim(apikey="K")
    sim.state.inject(Fault("slow", seconds=5), count=15)
    slow = [asyncio.create_task(sim.get(get_list=1, fmt=1, cnt=100 + i)) for i in range(15)]
    await until(lambda: sim.clock.sleepers == 15, "15 parked requests")
    async with sim.session.get(
        sim.url, params={"apikey": "K", "get_list": "1", "fmt": "1"}
    ) as resp:
        assert (await resp.text()).startswith("5,")
    sim.clock.advance(5)
    await asyncio.gather(*slow)
