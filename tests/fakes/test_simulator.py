"""The SMSC simulator over real HTTP on loopback, with time moved by FakeClock."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.clock import FakeClock
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import (
    PATH,
    Fault,
    SimTask,
    SimulatorState,
    create_app,
    demo_state,
    iter_csv,
)

ROOT = Path(__file__).resolve().parents[2]
AUTH = {"login": "demo", "psw": "demo"}


@dataclass
class Sim:
    state: SimulatorState
    clock: FakeClock
    url: str
    session: aiohttp.ClientSession

    async def get(self, **params: Any) -> tuple[int, str]:
        """GET with the demo credentials plus `params`; return status and text."""
        query = {**AUTH, **{k: str(v) for k, v in params.items()}}
        async with self.session.get(self.url, params=query) as resp:
            return resp.status, await resp.text()

    async def post(self, **params: Any) -> tuple[int, str]:
        """POST the demo credentials plus `params` as a urlencoded form."""
        form = {**AUTH, **{k: str(v) for k, v in params.items()}}
        async with self.session.post(self.url, data=form) as resp:
            return resp.status, await resp.text()


@contextlib.asynccontextmanager
async def serve(state: SimulatorState) -> AsyncIterator[str]:
    """Run the app on a free loopback port; yield the endpoint URL."""
    runner = web.AppRunner(create_app(state), shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}{PATH}"
    finally:
        await runner.cleanup()


def seed(state: SimulatorState) -> None:
    """Add the five tasks most tests list and download."""
    for task in (
        SimTask(
            1,
            "Рассылка октябрь",
            TaskStatus.COMPLETED,
            "01.11.2026 10:00:00",
            "01.11.2026 10:01:00",
            rows=10,
        ),
        SimTask(
            2,
            "Export 2026-11 <weekly> & co",
            TaskStatus.COMPLETED,
            "02.11.2026 10:00:00",
            "02.11.2026 10:02:00",
            file="weekly.csv",
        ),
        SimTask(
            3, "Выгрузка, часть 2", TaskStatus.RUNNING, "03.11.2026 10:00:00", "03.11.2026 10:03:00"
        ),
        SimTask(4, "Pending", TaskStatus.PENDING, "04.11.2026 10:00:00"),
        SimTask(
            5,
            'Отчёт "VIP"',
            TaskStatus.COMPLETED,
            "05.11.2026 10:00:00",
            "05.11.2026 10:05:00",
            file="vip.csv",
            encoding="cp1251",
            rows=20,
        ),
    ):
        state.add_task(task)


MakeSim = Callable[..., Awaitable[Sim]]


@pytest.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    """Build seeded simulators with custom options; everything is torn down after the test."""
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def make(*, seeded: bool = True, **options: Any) -> Sim:
            clock = FakeClock()
            state = SimulatorState(clock, **options)
            if seeded:
                seed(state)
            url = await stack.enter_async_context(serve(state))
            return Sim(state, clock, url, session)

        yield make


@pytest.fixture
async def sim(make_sim: MakeSim) -> Sim:
    return await make_sim()


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait for the server side to reach a state (I/O, not a time window) for up to 5 s."""
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


# --- list formats --------------------------------------------------------------------------------

LINE0 = "id = {0}, name = {1}, status = {2}, created = {3}, time = {4}, file = {5}"


async def test_list_fmt0_newest_first(sim: Sim) -> None:
    status, body = await sim.get(get_list=1)
    assert status == 200
    lines = body.split("\n")
    assert [int(line.split(",")[0].removeprefix("id = ")) for line in lines] == [5, 4, 3, 2, 1]
    assert lines[0] == LINE0.format(
        5, 'Отчёт "VIP"', 2, "05.11.2026 10:00:00", "05.11.2026 10:05:00", "vip.csv"
    )
    assert lines[1] == LINE0.format(4, "Pending", 0, "04.11.2026 10:00:00", "", "task_4.csv")
    assert lines[2] == LINE0.format(
        3, "Выгрузка, часть 2", 1, "03.11.2026 10:00:00", "03.11.2026 10:03:00", "task_3.csv"
    )


async def test_list_fmt1(sim: Sim) -> None:
    _, body = await sim.get(get_list=1, fmt=1, cnt=3)
    assert body.split("\n") == [
        '5,Отчёт "VIP",2,05.11.2026 10:00:00,05.11.2026 10:05:00,vip.csv',
        "4,Pending,0,04.11.2026 10:00:00,,task_4.csv",
        "3,Выгрузка, часть 2,1,03.11.2026 10:00:00,03.11.2026 10:03:00,task_3.csv",
    ]


async def test_list_fmt2_escapes_xml(sim: Sim) -> None:
    _, body = await sim.get(get_list=1, fmt=2, after_id=3, cnt=1)
    assert body == (
        "<list>\n<task>\n<id>2</id>\n<name>Export 2026-11 &lt;weekly&gt; &amp; co</name>\n"
        "<status>2</status>\n<created>02.11.2026 10:00:00</created>\n"
        "<time>02.11.2026 10:02:00</time>\n<file>weekly.csv</file>\n</task>\n</list>"
    )


async def test_list_fmt3_json(sim: Sim) -> None:
    _, body = await sim.get(get_list=1, fmt=3, cnt=2)
    assert json.loads(body) == [
        {
            "id": 5,
            "name": 'Отчёт "VIP"',
            "status": 2,
            "created": "05.11.2026 10:00:00",
            "time": "05.11.2026 10:05:00",
            "file": "vip.csv",
        },
        {
            "id": 4,
            "name": "Pending",
            "status": 0,
            "created": "04.11.2026 10:00:00",
            "time": "",
            "file": "task_4.csv",
        },
    ]


async def test_list_fmt3_status_as_string(make_sim: MakeSim) -> None:
    sim = await make_sim(status_as="string")
    _, body = await sim.get(get_list=1, fmt=3)
    assert [t["status"] for t in json.loads(body)] == ["2", "0", "1", "2", "2"]


@pytest.mark.parametrize(("fmt", "expected"), [(0, ""), (1, ""), (2, "<list>\n</list>"), (3, "[]")])
async def test_empty_list(make_sim: MakeSim, fmt: int, expected: str) -> None:
    sim = await make_sim(seeded=False)
    status, body = await sim.get(get_list=1, fmt=fmt)
    assert (status, body) == (200, expected)


async def test_unknown_status_number_is_printed(sim: Sim) -> None:
    sim.state.add_task(SimTask(9, "Odd", 7))
    _, body = await sim.get(get_list=1, fmt=1, cnt=1)
    assert body.startswith("9,Odd,7,")


async def test_cyrillic_names_in_utf8(sim: Sim) -> None:
    async with sim.session.get(
        sim.url, params={**AUTH, "get_list": "1", "charset": "utf-8"}
    ) as resp:
        assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
        raw = await resp.read()
    assert "Рассылка октябрь".encode() in raw


async def test_answer_charset_windows_1251(sim: Sim) -> None:
    params = {**AUTH, "get_list": "1", "fmt": "1", "cnt": "1", "after_id": "2"}
    async with sim.session.get(sim.url, params={**params, "charset": "windows-1251"}) as resp:
        assert resp.headers["Content-Type"] == "text/plain; charset=windows-1251"
        assert await resp.read() == "1,Рассылка октябрь,2,01.11.2026 10:00:00,".encode("cp1251") + (
            b"01.11.2026 10:01:00,task_1.csv"
        )


# --- error formats -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (0, "ERROR = 2 (authorise error)"),
        (1, "0,-2"),
        (2, "<result>\n<error>authorise error</error>\n<error_code>2</error_code>\n</result>"),
        (3, '{"error": "authorise error", "error_code": 2}'),
    ],
)
async def test_error_formats(sim: Sim, fmt: int, expected: str) -> None:
    status, body = await sim.get(get_list=1, psw="wrong", fmt=fmt)
    assert (status, body) == (200, expected)


async def test_error_fmt3_is_json(sim: Sim) -> None:
    _, body = await sim.get(fmt=3)
    assert json.loads(body) == {"error": "parameters error", "error_code": 1}


# --- transport: GET, POST, multipart ------------------------------------------------------------


async def test_post_form_and_query_are_merged_and_recorded(sim: Sim) -> None:
    async with sim.session.post(
        sim.url,
        params={"login": "demo", "fmt": "1"},
        data={"psw": "demo", "get_list": "1", "cnt": "1"},
    ) as resp:
        assert (
            await resp.text() == '5,Отчёт "VIP",2,05.11.2026 10:00:00,05.11.2026 10:05:00,vip.csv'
        )
    rec = sim.state.requests[-1]
    assert rec.method == "POST"
    assert rec.query == {"login": "demo", "fmt": "1"}
    assert rec.form == {"psw": "demo", "get_list": "1", "cnt": "1"}
    assert rec.params == {"login": "demo", "fmt": "1", "psw": "demo", "get_list": "1", "cnt": "1"}
    assert rec.at == sim.clock.monotonic()
    assert rec.response_error is None


async def test_post_multipart(sim: Sim) -> None:
    form = aiohttp.FormData()
    for key, value in {**AUTH, "get_list": "1", "fmt": "3", "cnt": "1"}.items():
        form.add_field(key, value)
    async with sim.session.post(sim.url, data=form) as resp:
        assert [t["id"] for t in json.loads(await resp.text())] == [5]
    assert sim.state.requests[-1].form["get_list"] == "1"


async def test_other_methods_are_not_allowed(sim: Sim) -> None:
    async with sim.session.put(sim.url) as resp:
        assert resp.status == 405


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


# --- get_file ------------------------------------------------------------------------------------


async def test_get_file_by_id_streams_chunked(sim: Sim) -> None:
    async with sim.session.get(sim.url, params={**AUTH, "get_file": "1", "id": "1"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert resp.headers["Content-Disposition"].startswith('attachment; filename="task_1.csv"')
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in resp.headers
        body = await resp.read()
    assert body == sim.state.file_bytes(1)
    rows = list(csv.reader(io.StringIO(body.decode(), newline=""), delimiter=";"))
    assert rows[0] == ["phone", "message", "status", "sent_at", "cost"]
    assert len(rows) == 11
    assert all(
        re.fullmatch(r"79\d{9}", r[0]) and re.fullmatch(r"\d+\.\d\d", r[4]) for r in rows[1:]
    )


async def test_get_file_by_name(sim: Sim) -> None:
    async with sim.session.post(
        sim.url, data={**AUTH, "get_file": "1", "name": "weekly.csv"}
    ) as resp:
        assert resp.headers["Content-Disposition"].startswith('attachment; filename="weekly.csv"')
        assert await resp.read() == sim.state.file_bytes(2)


async def test_get_file_with_given_content_has_length(sim: Sim) -> None:
    sim.state.add_task(
        SimTask(7, "Exact", TaskStatus.COMPLETED, file="Отчёт 1.csv", content=b"a;b\r\n1;2\r\n")
    )
    async with sim.session.get(sim.url, params={**AUTH, "get_file": "1", "id": "7"}) as resp:
        assert resp.headers["Content-Length"] == "10"
        assert resp.headers["Content-Disposition"] == (
            'attachment; filename="_____ 1.csv"; '
            "filename*=UTF-8''%D0%9E%D1%82%D1%87%D1%91%D1%82%201.csv"
        )
        assert await resp.read() == b"a;b\r\n1;2\r\n"


async def test_get_file_cp1251(sim: Sim) -> None:
    async with sim.session.get(sim.url, params={**AUTH, "get_file": "1", "id": "5"}) as resp:
        assert resp.headers["Content-Type"] == "text/csv; charset=windows-1251"
        body = await resp.read()
    assert body == sim.state.file_bytes(5)
    text = body.decode("cp1251")
    assert re.search("[\u0410-\u044f]", text)  # Cyrillic survived the round trip
    utf8_task = SimTask(5, "same id", rows=20)
    assert body != b"".join(iter_csv(utf8_task))
    assert text == b"".join(iter_csv(utf8_task)).decode()  # same rows, other encoding


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"id": "99"}, 5),
        ({"name": "nope.csv"}, 5),
        ({"id": "3"}, 5),  # running
        ({"id": "4"}, 5),  # pending
        ({"name": "task_4.csv"}, 5),
        ({}, 1),
        ({"id": "abc"}, 1),
    ],
)
async def test_get_file_errors(sim: Sim, params: dict[str, str], code: int) -> None:
    assert await sim.get(get_file=1, fmt=1, **params) == (200, f"0,-{code}")
    assert sim.state.requests[-1].response_error == code


async def test_large_file_streams_with_exact_size(sim: Sim) -> None:
    size = 20_000_000
    task = sim.state.add_task(SimTask(8, "Big", TaskStatus.COMPLETED, size_bytes=size))
    total = 0
    async with sim.session.get(sim.url, params={**AUTH, "get_file": "1", "id": "8"}) as resp:
        async for chunk in resp.content.iter_chunked(1 << 20):
            total += len(chunk)
    expected = sum(len(c) for c in iter_csv(task, 1 << 20))
    assert total == expected
    assert size <= total < size + 1_000


async def test_client_leaving_mid_download_is_harmless(sim: Sim) -> None:
    sim.state.add_task(SimTask(8, "Big", TaskStatus.COMPLETED, size_bytes=50_000_000))
    async with sim.session.get(sim.url, params={**AUTH, "get_file": "1", "id": "8"}) as resp:
        await resp.content.read(1000)
        resp.close()
    await until(lambda: sim.state.in_flight == 0, "the download handler to stop")


async def test_stalled_download_does_not_stall_shutdown() -> None:
    state = SimulatorState(FakeClock())
    state.add_task(SimTask(1, "Big", TaskStatus.COMPLETED, size_bytes=200_000_000))
    runner = web.AppRunner(create_app(state))  # the default 60 s shutdown timeout
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {PATH}?login=demo&psw=demo&get_file=1&id=1 HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n\r\n".encode()
        )
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        # Stop reading with the socket open: the server's writes back up and block.
        await until(lambda: state.in_flight == 1, "the download to start")
        await asyncio.wait_for(runner.cleanup(), 5)
        assert state.in_flight == 0
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


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


# --- faults --------------------------------------------------------------------------------------


async def test_fault_http_500(sim: Sim) -> None:
    sim.state.inject(Fault("http_500"))
    status, body = await sim.get(get_list=1)
    assert status == 500
    assert "Internal Server Error" in body
    assert (await sim.get(get_list=1, fmt=1))[0] == 200  # only the next request


async def test_fault_garbage(sim: Sim) -> None:
    sim.state.inject(Fault("garbage"))
    async with sim.session.get(sim.url, params={**AUTH, "get_list": "1", "fmt": "3"}) as resp:
        assert resp.status == 200
        body = await resp.read()
    with pytest.raises(ValueError):  # noqa: PT011 - JSON or UTF-8, either way not an answer
        json.loads(body)
    assert not body.startswith((b"ERROR", b"0,-", b"<", b"[", b"{", b"id ="))


async def test_fault_html(sim: Sim) -> None:
    sim.state.inject(Fault("html"))
    async with sim.session.get(sim.url, params={**AUTH, "get_list": "1"}) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert "<form" in await resp.text()


@pytest.mark.parametrize(
    ("fault", "fmt", "expected"),
    [
        (Fault("error", code=4), 1, "0,-4"),
        (
            Fault("error", code=9),
            3,
            '{"error": "duplicate request, wait a minute", "error_code": 9}',
        ),
        (Fault("error", code=5, fmt=0), 3, "ERROR = 5 (task or file not found)"),
        (
            Fault("error", code=77, fmt=2),
            0,
            "<result>\n<error>unknown error</error>\n<error_code>77</error_code>\n</result>",
        ),
    ],
)
async def test_fault_error(sim: Sim, fault: Fault, fmt: int, expected: str) -> None:
    sim.state.inject(fault)
    assert await sim.get(get_list=1, fmt=fmt) == (200, expected)
    assert sim.state.requests[-1].response_error == fault.code


async def test_fault_disconnect_post(sim: Sim) -> None:
    sim.state.inject(Fault("disconnect"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await sim.post(get_list=1)
    assert (await sim.post(get_list=1, fmt=1))[1].startswith("5,")
    assert len(sim.state.requests) == 2


async def test_fault_disconnect_get_needs_two_because_aiohttp_retries(sim: Sim) -> None:
    sim.state.inject(Fault("disconnect"), count=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await sim.get(get_list=1)
    assert sim.state.upstream_count(get_list=1) == 2


async def test_fault_slow_parks_until_the_clock_moves(sim: Sim) -> None:
    sim.state.inject(Fault("slow", seconds=30))
    pending = asyncio.create_task(sim.get(get_list=1, fmt=1))
    await until(lambda: sim.clock.sleepers == 1, "the parked request")
    sim.clock.advance(29)
    await asyncio.sleep(0.05)  # give a wrongly early answer the chance to show up
    assert not pending.done()
    sim.clock.advance(1)
    status, body = await pending
    assert status == 200
    assert body.startswith("5,")


async def test_fault_slow_is_dropped_when_the_client_gives_up(sim: Sim) -> None:
    sim.state.inject(Fault("slow", seconds=30))
    with pytest.raises(TimeoutError):
        async with sim.session.get(
            sim.url, params={**AUTH, "get_list": "1"}, timeout=aiohttp.ClientTimeout(total=0.2)
        ) as resp:
            await resp.read()
    await until(lambda: sim.state.in_flight == 0, "the dropped request to finish")
    assert sim.clock.sleepers == 0
    assert sim.state.requests[-1].response_error is None


async def test_parked_requests_do_not_stall_shutdown() -> None:
    clock = FakeClock()
    state = SimulatorState(clock)
    seed(state)
    state.inject(Fault("slow", seconds=3600))
    async with aiohttp.ClientSession() as session:
        async with serve(state) as url:
            pending = asyncio.create_task(session.get(url, params={**AUTH, "get_list": "1"}))
            await until(lambda: clock.sleepers == 1, "the parked request")
        # Leaving serve() ran runner.cleanup(): the parked request was released and answered.
        resp = await pending
        resp.release()
    assert clock.sleepers == 0
    assert state.in_flight == 0


def test_fault_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("teapot")  # type: ignore[arg-type]


# --- CSV generation ------------------------------------------------------------------------------


def test_iter_csv_is_deterministic_and_chunked() -> None:
    task = SimTask(42, "x", rows=1500)
    first = b"".join(iter_csv(task))
    assert first == b"".join(iter_csv(SimTask(42, "other name", rows=1500)))
    chunks = list(iter_csv(task, chunk_size=1000))
    assert b"".join(chunks) == first
    assert all(len(c) == 1000 for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= 1000
    assert first != b"".join(iter_csv(SimTask(43, "x", rows=1500)))
    rows = list(csv.reader(io.StringIO(first.decode(), newline=""), delimiter=";"))
    assert len(rows) == 1501
    assert any("\n" in r[1] or '"' in r[1] or ";" in r[1] for r in rows[1:])  # quoting matters


def test_iter_csv_size_bytes_and_content() -> None:
    task = SimTask(1, "x", rows=5, size_bytes=300_000)
    data = b"".join(iter_csv(task))
    assert 300_000 <= len(data) < 300_000 + 500
    assert data.endswith(b"\r\n")
    assert b"".join(iter_csv(SimTask(1, "x", rows=0))) == b"phone;message;status;sent_at;cost\r\n"
    assert list(iter_csv(SimTask(1, "x", content=b"abcdef"), chunk_size=4)) == [b"abcd", b"ef"]


# --- lifecycle -----------------------------------------------------------------------------------


async def test_schedule_and_tick(sim: Sim) -> None:
    sim.state.schedule(30, 4, TaskStatus.RUNNING)
    sim.state.schedule(90, 4, TaskStatus.COMPLETED)
    sim.clock.advance(29)
    sim.state.tick()
    assert sim.state.tasks[4].status == TaskStatus.PENDING
    sim.clock.advance(1)
    sim.state.tick()
    assert sim.state.tasks[4].status == TaskStatus.RUNNING
    assert sim.state.tasks[4].time == "25.11.2026 12:00:30"  # FakeClock starts 09:00 UTC
    sim.clock.advance(100)
    # No tick: the request itself applies due transitions.
    assert (await sim.get(get_file=1, id=4))[1].startswith("phone;")
    assert sim.state.tasks[4].time == "25.11.2026 12:00:30"


async def test_late_transitions_keep_their_due_time(sim: Sim) -> None:
    sim.state.schedule(10, 4, TaskStatus.RUNNING)
    sim.clock.advance(600)
    sim.state.tick()
    assert sim.state.tasks[4].time == "25.11.2026 12:00:10"


def test_add_task_fills_defaults() -> None:
    state = SimulatorState(FakeClock())
    task = state.add_task(SimTask(10, "x", TaskStatus.RUNNING))
    assert (task.created, task.time, task.file) == (
        "25.11.2026 12:00:00",
        "25.11.2026 12:00:00",
        "task_10.csv",
    )
    with pytest.raises(ValueError, match="already exists"):
        state.add_task(SimTask(10, "again"))


async def test_demo_state_lifecycle() -> None:
    clock = FakeClock()
    state = demo_state(clock)
    by_name = {t.name: t for t in state.tasks.values()}
    assert len(state.tasks) == 8
    assert "Export 2026-11 <weekly> & co" in by_name
    friday, new_year, test = (
        by_name["Black Friday campaign"],
        by_name["Акция «Новый год»"],
        by_name["Тестовая выгрузка"],
    )
    assert {friday.status, new_year.status, test.status} == {TaskStatus.PENDING}
    clock.advance(30)
    state.tick()
    assert (friday.status, new_year.status) == (TaskStatus.RUNNING, TaskStatus.RUNNING)
    clock.advance(60)
    state.tick()
    assert (friday.status, new_year.status, test.status) == (
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELED,
    )
    clock.advance(90)  # 180 s: the first recurring export appears
    state.tick()
    assert len(state.tasks) == 9
    spawned = state.tasks[max(state.tasks)]
    assert spawned.status == TaskStatus.PENDING
    clock.advance(3600)  # an hour with nobody asking: caught up on the next tick
    state.tick()
    assert len(state.tasks) == 9 + 20
    assert spawned.status == TaskStatus.COMPLETED
    assert {t.status for t in state.tasks.values() if t.id > spawned.id} >= {
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
    }
    assert state.file_bytes(spawned.id).startswith(b"phone;")


async def test_demo_state_serves(make_sim: MakeSim) -> None:
    clock = FakeClock()
    state = demo_state(clock, login="u", password="p", apikey="k")
    async with aiohttp.ClientSession() as session, serve(state) as url:
        async with session.get(url, params={"apikey": "k", "get_list": "1", "fmt": "3"}) as resp:
            listed = json.loads(await resp.text())
        assert len(listed) == 8
        assert listed[0]["id"] > listed[-1]["id"]
        async with session.get(
            url,
            params={"login": "u", "psw": "p", "get_file": "1", "name": "vygruzka_sentyabr_2.csv"},
        ) as resp:
            assert resp.charset == "windows-1251"
            assert (await resp.read()).decode("cp1251").startswith("phone;")


# --- CLI -----------------------------------------------------------------------------------------


async def test_cli_serves_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from bot.smsc.simulator.cli import main; sys.exit(main(sys.argv[1:]))",
        "--port",
        "0",
        "--login",
        "cli",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        assert int(match[1]) > 0
        assert "login=cli psw=demo" in line
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                match[0] + PATH, params={"login": "cli", "psw": "demo", "get_list": "1", "fmt": "3"}
            ) as resp,
        ):
            assert len(json.loads(await resp.text())) == 8
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        assert proc.stderr is not None
        assert await proc.stderr.read() == b""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_request_log_can_be_bounded_for_long_runs() -> None:
    """The CLI demo may run for days: its request log keeps only the newest records."""
    from bot.clock import FakeClock
    from bot.smsc.simulator import SimulatorState

    state = SimulatorState(FakeClock())
    state.keep_requests = 10
    indices = [state.record_arrival("POST", {}, {"n": str(i)}, {"n": str(i)}) for i in range(25)]
    assert len(state.requests) <= 10
    assert state.requests[-1].params == {"n": "24"}
    state.record_answer(indices[-1], 9)
    assert state.requests[-1].response_error == 9
    state.record_answer(indices[0], 9)  # long forgotten: ignored, not an error
