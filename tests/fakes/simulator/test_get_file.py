"""Downloads: get_file by id or name, charsets, streaming and its errors, CSV generation."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re

import pytest
from aiohttp import web

from bot.clock import FakeClock
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import PATH, SimTask, SimulatorState, create_app, iter_csv
from tests.fakes.simulator.support import AUTH, Sim
from tests.fakes.smsc_support import until

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
