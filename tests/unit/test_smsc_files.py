"""Safe file names and streaming a file to disk without leaving partial files."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.smsc import files
from bot.smsc.errors import SmscBadResponseError
from bot.smsc.files import MAX_NAME_BYTES, safe_filename, save_stream, with_default_extension
from tests.fakes.smsc_support import until


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.csv", "report.csv"),
        ("Выгрузка за сентябрь.csv", "Выгрузка за сентябрь.csv"),
        ("../../etc/passwd", "etc_passwd"),
        ("/etc/passwd", "etc_passwd"),
        ("a/b\\c", "a_b_c"),
        ("..\\..\\windows\\system.ini", "windows_system.ini"),
        ("\x00", "task-1.csv"),
        ("nul\x00byte.csv", "nulbyte.csv"),
        (".hidden", "hidden"),
        ("...", "task-1.csv"),
        ("..", "task-1.csv"),
        ("", "task-1.csv"),
        ("   ", "task-1.csv"),
        ("line\nbreak\ttab.csv", "line break tab.csv"),
        ("rtl\u202eosc.exe", "rtlosc.exe"),
        ('what?<>:"|*.csv', "what_.csv"),
        ("CON", "_CON"),
        ("trailing. . ", "trailing"),
    ],
)
def test_safe_filename(raw: str, expected: str) -> None:
    assert safe_filename(raw, default="task-1.csv") == expected


@pytest.mark.parametrize("raw", ["x" * 300 + ".csv", "я" * 300 + ".csv", "ж" * 400])
def test_long_names_are_cut_keeping_the_extension(raw: str) -> None:
    name = safe_filename(raw, default="d.csv")

    assert len(name.encode()) <= MAX_NAME_BYTES
    assert name.endswith(".csv") == raw.endswith(".csv")
    assert name[0] == raw[0]


def test_default_is_sanitised_too() -> None:
    assert safe_filename("", default="../x") == "x"
    assert safe_filename("", default="") == "file"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report", "report.csv"),
        ("report.csv", "report.csv"),
        ("archive.zip", "archive.zip"),
        ("Выгрузка 25.11.2026", "Выгрузка 25.11.2026.csv"),
        ("v1.0", "v1.0.csv"),
    ],
)
def test_with_default_extension(name: str, expected: str) -> None:
    assert with_default_extension(name, ".csv") == expected


def names_in(folder: Path) -> list[str]:
    """List a folder's entries, hidden ones included."""
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


async def _chunks(parts: list[bytes], fail_after: int | None = None) -> AsyncIterator[bytes]:
    for index, part in enumerate(parts):
        if fail_after is not None and index == fail_after:
            raise ConnectionResetError("peer went away")
        await asyncio.sleep(0)
        yield part


async def test_save_stream_writes_all_bytes_under_a_unique_name(tmp_path: Path) -> None:
    parts = [bytes([i]) * 300_000 for i in range(10)]

    first = await save_stream(_chunks(parts), tmp_path / "new", "out.csv", buffer_bytes=1 << 20)
    second = await save_stream(_chunks(parts), tmp_path / "new", "out.csv")

    assert first.path != second.path
    for saved in (first, second):
        assert saved.path.parent == tmp_path / "new"
        assert saved.path.name.endswith("-out.csv")
        assert saved.filename == "out.csv"
        assert saved.size == 3_000_000
        assert saved.path.read_bytes() == b"".join(parts)
    assert names_in(tmp_path / "new") == sorted([first.path.name, second.path.name])


async def test_save_stream_removes_the_partial_file_on_failure(tmp_path: Path) -> None:
    parts = [b"x" * 400_000] * 10

    with pytest.raises(ConnectionResetError):
        await save_stream(_chunks(parts, fail_after=6), tmp_path, "out.csv")

    assert names_in(tmp_path) == []


async def test_save_stream_enforces_max_bytes(tmp_path: Path) -> None:
    with pytest.raises(SmscBadResponseError, match="larger"):
        await save_stream(_chunks([b"x" * 1000] * 5), tmp_path, "out.csv", max_bytes=2500)

    assert names_in(tmp_path) == []


async def test_save_stream_cancelled_at_any_point_leaves_nothing(tmp_path: Path) -> None:
    gate = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"y" * 2_000_000
        await gate.wait()
        yield b"never"

    for steps in range(30):
        folder = tmp_path / str(steps)
        saving = asyncio.ensure_future(save_stream(endless(), folder, "out.csv"))
        for _ in range(steps):
            await asyncio.sleep(0)
        saving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await saving
        # A worker thread may finish its part after the cancel; its cleanup follows it.
        await until(lambda folder=folder: names_in(folder) == [])  # type: ignore[misc]


async def test_a_failed_disk_write_is_never_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real_write = files._write_all

    def full_disk_on_third_write(file: Any, chunks: list[bytes]) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(28, "No space left on device")
        real_write(file, chunks)

    monkeypatch.setattr(files, "_write_all", full_disk_on_third_write)

    with pytest.raises(OSError, match="No space"):
        # One chunk per hand-off to the writer thread, so the third write is the third chunk.
        await save_stream(_chunks([b"z" * 1000] * 5), tmp_path, "out.csv", batch_bytes=1)

    assert names_in(tmp_path) == []


async def test_written_chunks_are_freed_on_the_event_loops_thread(tmp_path: Path) -> None:
    """Memory freed on the writer thread came back to the network reads as fresh pages."""
    freed_on: list[int] = []

    class Chunk(bytes):
        """A chunk that says on which thread it was freed."""

        def __del__(self) -> None:
            freed_on.append(threading.get_ident())

    async def stream() -> AsyncIterator[bytes]:
        for i in range(12):
            chunk = Chunk(bytes([i]) * 300_000)
            yield chunk
            del chunk
            await asyncio.sleep(0)

    saved = await save_stream(
        stream(), tmp_path, "out.csv", batch_bytes=600_000, buffer_bytes=1_200_000
    )

    assert saved.size == 3_600_000
    assert saved.path.read_bytes() == b"".join(bytes([i]) * 300_000 for i in range(12))
    assert freed_on == [threading.get_ident()] * 12
