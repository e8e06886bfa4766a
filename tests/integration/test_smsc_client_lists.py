"""SmscClient's task lists against the simulator: paging, raw pages, status text, the cache."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web

from bot.clock import FakeClock
from bot.smsc.client import SmscClient
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask
from tests.fakes.rig import serve
from tests.fakes.smsc_support import Sim, add_tasks, fake_smsc, make_client


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("page_size", [1, 2, 3, 7, 8, 50])
async def test_paging_collects_every_task_newest_first(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock, order: str, page_size: int
) -> None:
    sim.state.order = "newest" if order == "newest" else "oldest"
    add_tasks(sim.state, 7)
    client = make_client(session, sim.url, clock, page_size=page_size)

    tasks = await client.list_tasks()

    assert [t.id for t in tasks] == [7, 6, 5, 4, 3, 2, 1]
    sent = [rec.form for rec in sim.state.requests]
    assert all(form["cnt"] == str(page_size) for form in sent)
    assert "after_id" not in sent[0]
    # after_id is the last id of the previous page in SMSC's own order.
    in_smsc_order = [7, 6, 5, 4, 3, 2, 1] if order == "newest" else [1, 2, 3, 4, 5, 6, 7]
    expected_after = in_smsc_order[page_size - 1 :: page_size]
    assert [int(form["after_id"]) for form in sent[1:]] == expected_after[: len(sent) - 1]
    # A short page ends the list; a full last page costs one more (empty) request.
    assert len(sent) == 7 // page_size + 1


async def test_list_page_is_one_raw_page_in_smsc_order(client: SmscClient, sim: Sim) -> None:
    sim.state.order = "oldest"
    add_tasks(sim.state, 5)

    page = await client.list_page(cnt=2, after_id=1)
    everything = await client.list_page()

    assert [t.id for t in page] == [2, 3]
    assert [t.id for t in everything] == [1, 2, 3, 4, 5]
    assert sim.state.requests[0].form["after_id"] == "1"
    assert "cnt" not in sim.state.requests[1].form


async def test_status_sent_as_text(client: SmscClient, sim: Sim) -> None:
    sim.state.status_as = "string"
    sim.state.add_task(SimTask(1, "a", TaskStatus.RUNNING))
    sim.state.add_task(SimTask(2, "b", TaskStatus.FAILED))

    tasks = await client.list_tasks()

    assert [(t.id, t.status) for t in tasks] == [(2, TaskStatus.FAILED), (1, TaskStatus.RUNNING)]
    assert tasks[0].created is not None
    assert tasks[0].created.utcoffset() is not None


async def test_invalidate_cache_refreshes_but_keeps_the_stale_fallback(
    client: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 2)
    await client.list_tasks()
    sim.state.add_task(SimTask(3, "new", TaskStatus.PENDING))

    client.invalidate_cache()
    refreshed = await client.list_tasks()
    client.invalidate_cache()
    sim.state.add_task(SimTask(4, "newer", TaskStatus.PENDING))
    stale = await client.list_tasks()  # a third request would fill the window: cache instead

    assert [t.id for t in refreshed] == [3, 2, 1]
    assert [t.id for t in stale] == [3, 2, 1]
    assert len(sim.state.requests) == 2
    assert client.stats.stale_hits == 1


async def test_list_is_cached_briefly(client: SmscClient, sim: Sim, clock: FakeClock) -> None:
    add_tasks(sim.state, 2)

    await client.list_tasks()
    clock.advance(14)
    sim.state.add_task(SimTask(3, "new", TaskStatus.PENDING))
    cached = await client.list_tasks()
    clock.advance(1)
    fresh = await client.list_tasks()

    assert [t.id for t in cached] == [2, 1]
    assert [t.id for t in fresh] == [3, 2, 1]
    assert len(sim.state.requests) == 2
    assert client.stats.cache_hits == 1


async def test_fifty_concurrent_lists_cost_one_request(client: SmscClient, sim: Sim) -> None:
    add_tasks(sim.state, 5)

    results = await asyncio.gather(*(client.list_tasks() for _ in range(50)))

    assert len(sim.state.requests) == 1
    assert all([t.id for t in r] == [5, 4, 3, 2, 1] for r in results)
    assert client.stats.upstream_requests == 1
    assert client.stats.coalesced == 49


async def test_paging_stops_at_max_pages(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    add_tasks(sim.state, 10)
    client = make_client(session, sim.url, clock, page_size=2, max_pages=3)

    with caplog.at_level(logging.WARNING, logger="bot.smsc.client"):
        tasks = await client.list_tasks()

    assert [t.id for t in tasks] == [10, 9, 8, 7, 6, 5]
    assert len(sim.state.requests) == 3
    assert "after 3 pages" in caplog.text


async def test_paging_stops_when_smsc_ignores_after_id(
    session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    page = [{"id": i, "name": f"t{i}", "status": 2} for i in (3, 2)]
    hits = 0

    async def same_page(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        return web.json_response(page)

    async with serve(fake_smsc(same_page)) as url:
        client = make_client(session, url, clock, page_size=2)
        tasks = await client.list_tasks()

    assert [t.id for t in tasks] == [3, 2]
    assert hits == 2


# -- errors ---------------------------------------------------------------------------------------
