"""Task lists and errors in SMSC's four formats, answer charsets, and the HTTP methods accepted."""

from __future__ import annotations

import json

import aiohttp
import pytest

from bot.smsc.simulator import SimTask
from tests.fakes.simulator.support import AUTH, MakeSim, Sim

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
