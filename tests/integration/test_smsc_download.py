# ruff: noqa: RUF001 - Cyrillic sample data on purpose
"""Downloading task files: exact bytes, safe unique names, nothing partial left behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.clock import FakeClock
from bot.smsc.client import SmscClient
from bot.smsc.errors import (
    SmscBadResponseError,
    SmscConnectionError,
    SmscNotFoundError,
    SmscTimeoutError,
)
from bot.smsc.files import MAX_NAME_BYTES
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import Fault, SimTask
from tests.fakes.rig import serve
from tests.fakes.smsc_support import (
    Sim,
    fake_smsc,
    make_client,
    until,
)


def names_in(folder: Path) -> list[str]:
    """List a folder's entries, hidden (partial) files included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def read(path: Path) -> bytes:
    """Read a downloaded file."""
    return path.read_bytes()


async def test_download_by_id_is_byte_exact(client: SmscClient, sim: Sim, tmp_path: Path) -> None:
    sim.state.add_task(
        SimTask(7, "Рассылка", TaskStatus.COMPLETED, file="rassylka.csv", size_bytes=3_000_000)
    )

    saved = await client.download(tmp_path / "downloads", task_id=7)

    assert saved.path.parent == tmp_path / "downloads"
    assert saved.filename == "rassylka.csv"
    assert saved.path.name.endswith("-rassylka.csv")
    assert saved.size == len(sim.state.file_bytes(7)) == saved.path.stat().st_size
    assert read(saved.path) == sim.state.file_bytes(7)
    assert names_in(tmp_path / "downloads") == [saved.path.name]
    (rec,) = sim.state.requests
    assert rec.query == {}
    assert rec.form["get_file"] == "1"
    assert rec.form["id"] == "7"
    assert "name" not in rec.form


async def test_download_by_name(client: SmscClient, sim: Sim, tmp_path: Path) -> None:
    sim.state.add_task(SimTask(3, "Отчёт", TaskStatus.COMPLETED, file="otchet.csv", rows=50))

    saved = await client.download(tmp_path, name="otchet.csv")

    assert read(saved.path) == sim.state.file_bytes(3)
    assert saved.filename == "otchet.csv"
    assert sim.state.requests[0].form["name"] == "otchet.csv"
    assert "id" not in sim.state.requests[0].form


async def test_windows_1251_bytes_pass_through(
    client: SmscClient, sim: Sim, tmp_path: Path
) -> None:
    sim.state.add_task(
        SimTask(4, "cp", TaskStatus.COMPLETED, file="cp.csv", rows=300, encoding="cp1251")
    )
    expected = sim.state.file_bytes(4)

    saved = await client.download(tmp_path, task_id=4)

    assert read(saved.path) == expected
    with pytest.raises(UnicodeDecodeError):
        expected.decode("utf-8")
    assert "Доставлено".encode("cp1251") in expected


async def test_exact_content_with_a_bom_passes_through(
    client: SmscClient, sim: Sim, tmp_path: Path
) -> None:
    content = "\ufeffтелефон;текст\r\n79990001122;привет\r\n".encode()
    sim.state.add_task(SimTask(5, "bom", TaskStatus.COMPLETED, content=content))

    saved = await client.download(tmp_path, task_id=5)

    assert read(saved.path) == content


async def test_display_name_comes_from_the_listed_task(
    client: SmscClient, sim: Sim, tmp_path: Path
) -> None:
    sim.state.add_task(SimTask(8, "Экспорт за ноябрь", TaskStatus.COMPLETED, file="exp", rows=5))
    await client.list_tasks()

    saved = await client.download(tmp_path, task_id=8)

    assert saved.filename == "exp.csv"
    assert len(sim.state.requests) == 2


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("../../etc/passwd", "etc_passwd.csv"),
        ("a/b\\c", "a_b_c.csv"),
        ("\x00", "DEFAULT"),
        (".hidden", "hidden.csv"),
        ("..", "DEFAULT"),
        ("x" * 300 + ".csv", None),
        ("Выгрузка «Новый год» 25.11.2026", "Выгрузка «Новый год» 25.11.2026.csv"),
    ],
)
@pytest.mark.parametrize("by", ["id", "name", "id_listed"])
async def test_hostile_file_names_stay_inside_the_folder(
    client: SmscClient, sim: Sim, tmp_path: Path, *, file: str, expected: str | None, by: str
) -> None:
    sim.state.add_task(SimTask(9, "t", TaskStatus.COMPLETED, file=file, rows=5))
    dest = tmp_path / "dest"
    if by == "id_listed":
        await client.list_tasks()

    if by == "name":
        saved = await client.download(dest, name=file)
    else:
        saved = await client.download(dest, task_id=9)

    assert saved.path.parent == dest
    assert names_in(dest) == [saved.path.name]
    assert names_in(tmp_path) == ["dest"]
    assert read(saved.path) == sim.state.file_bytes(9)
    assert "/" not in saved.filename
    assert "\\" not in saved.filename
    assert not saved.filename.startswith(".")
    assert len(saved.filename.encode()) <= MAX_NAME_BYTES
    if expected == "DEFAULT":
        assert saved.filename == ("smsc-export.csv" if by == "name" else "task-9.csv")
    elif expected is not None:
        assert saved.filename == expected
    else:
        assert saved.filename.endswith(".csv")


async def test_concurrent_downloads_of_one_task_do_not_clobber(
    client: SmscClient, sim: Sim, tmp_path: Path
) -> None:
    sim.state.add_task(SimTask(2, "t", TaskStatus.COMPLETED, file="same.csv", size_bytes=2_000_000))

    first, second = await asyncio.gather(
        client.download(tmp_path, task_id=2), client.download(tmp_path, task_id=2)
    )

    assert first.path != second.path
    assert first.filename == second.filename == "same.csv"
    assert read(first.path) == read(second.path) == sim.state.file_bytes(2)
    assert names_in(tmp_path) == sorted([first.path.name, second.path.name])


async def test_unfinished_task_is_not_found(client: SmscClient, sim: Sim, tmp_path: Path) -> None:
    sim.state.add_task(SimTask(1, "t", TaskStatus.RUNNING))

    with pytest.raises(SmscNotFoundError, match="no such task"):
        await client.download(tmp_path, task_id=1)

    assert names_in(tmp_path) == []


@pytest.mark.parametrize(
    ("task_id", "name"), [(None, None), (1, "a.csv"), (None, ""), (None, "  ")]
)
async def test_download_needs_exactly_one_of_id_and_name(
    client: SmscClient, tmp_path: Path, task_id: int | None, name: str | None
) -> None:
    with pytest.raises(ValueError, match=r"task_id or name|empty"):
        await client.download(tmp_path, task_id=task_id, name=name)


async def test_partial_file_is_removed_when_the_connection_breaks(
    session: aiohttp.ClientSession, clock: FakeClock, tmp_path: Path
) -> None:
    async def half_then_hang_up(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": str(8 * 1024 * 1024)})
        await resp.prepare(request)
        await resp.write(b"phone;message\r\n" + b"7;x\r\n" * 500_000)
        assert request.transport is not None
        request.transport.close()
        return resp

    async with serve(fake_smsc(half_then_hang_up)) as url:
        with pytest.raises(SmscConnectionError) as info:
            await make_client(session, url, clock).download(tmp_path, task_id=1)

    assert isinstance(info.value.__cause__, aiohttp.ClientError)
    assert names_in(tmp_path) == []


async def test_partial_file_is_removed_on_a_read_timeout(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock, tmp_path: Path
) -> None:
    gate = asyncio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"phone;message\r\n" + b"7;x\r\n" * 300_000)
        await gate.wait()
        return resp

    async with serve(fake_smsc(stall)) as url:
        client = make_client(session, url, clock, download_read_timeout=0.2)
        with pytest.raises(SmscTimeoutError):
            await client.download(tmp_path, task_id=1)
        gate.set()

    assert names_in(tmp_path) == []


async def test_partial_file_is_removed_when_the_caller_gives_up(
    session: aiohttp.ClientSession, clock: FakeClock, tmp_path: Path
) -> None:
    gate = asyncio.Event()
    started = asyncio.Event()

    async def stall(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"phone;message\r\n" + b"7;x\r\n" * 400_000)
        started.set()
        await gate.wait()
        return resp

    async with serve(fake_smsc(stall)) as url:
        client = make_client(session, url, clock)
        download = asyncio.ensure_future(client.download(tmp_path, task_id=1))
        await started.wait()
        await until(lambda: any(n.endswith(".part") for n in names_in(tmp_path)))
        download.cancel()
        with pytest.raises(asyncio.CancelledError):
            await download
        gate.set()

    assert names_in(tmp_path) == []


async def test_too_large_file_is_refused_and_removed(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock, tmp_path: Path
) -> None:
    sim.state.add_task(SimTask(1, "big", TaskStatus.COMPLETED, size_bytes=3_000_000))
    client = make_client(session, sim.url, clock, max_download_bytes=1_000_000)

    with pytest.raises(SmscBadResponseError, match="larger"):
        await client.download(tmp_path, task_id=1)

    assert names_in(tmp_path) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"\r\n", "empty"),
        (b'[{"id": 1}]', "JSON"),
        (b"<!DOCTYPE html><html><body>Login</body></html>", "web page"),
        (b"{" + b" " * 100_000, "larger"),
    ],
)
async def test_odd_file_answers(
    session: aiohttp.ClientSession, clock: FakeClock, tmp_path: Path, body: bytes, message: str
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/csv")

    async with serve(fake_smsc(answer)) as url:
        with pytest.raises(SmscBadResponseError, match=message):
            await make_client(session, url, clock).download(tmp_path, name="x.csv")

    assert names_in(tmp_path) == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="unterminated', "task-3.csv"),
        ("attachment; filename*=bogus%ZZ", "task-3.csv"),
        ("attachment; filename=a.csv; filename=b.csv", "task-3.csv"),
        ("attachment; filename*=UTF-8''%D0%B0%2F..%2F.x.txt", "а_.x.txt"),
        ('attachment; filename=".."', "task-3.csv"),
    ],
)
async def test_untrusted_content_disposition(
    session: aiohttp.ClientSession, clock: FakeClock, tmp_path: Path, header: str, expected: str
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=b"a;b\r\n", headers={"Content-Disposition": header})

    async with serve(fake_smsc(answer)) as url:
        saved = await make_client(session, url, clock).download(tmp_path / "d", task_id=3)

    assert saved.filename == expected
    assert names_in(tmp_path / "d") == [saved.path.name]


async def test_csv_labelled_text_html_is_still_a_file(
    session: aiohttp.ClientSession, clock: FakeClock, tmp_path: Path
) -> None:
    body = "телефон;текст\r\n79990001122;ERROR = 5 в тексте\r\n".encode("cp1251")

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/html")

    async with serve(fake_smsc(answer)) as url:
        saved = await make_client(session, url, clock).download(tmp_path, task_id=3)

    assert read(saved.path) == body
    assert saved.filename == "task-3.csv"


async def test_slow_simulator_times_out_a_download(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock, tmp_path: Path
) -> None:
    sim.state.add_task(SimTask(1, "t", TaskStatus.COMPLETED))
    sim.state.inject(Fault("slow", seconds=60))
    client = make_client(session, sim.url, clock, download_read_timeout=0.2)

    with pytest.raises(SmscTimeoutError):
        await client.download(tmp_path, task_id=1)

    assert names_in(tmp_path) == []
