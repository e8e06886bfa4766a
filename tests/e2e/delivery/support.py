"""What the delivery-fault tests share: two chats, what Telegram got, /healthz, the faults.

The faults are real: a read-only connection (`PRAGMA query_only`), a full tmpfs, a deleted
database file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import storage
from bot.tg_emulator import Call
from tests.fakes.endpoints import get_endpoint
from tests.fakes.rig import ADMIN_CHAT, TEAM_GROUP, Rig

CHATS = (ADMIN_CHAT, TEAM_GROUP)


async def subscribe(rig: Rig, *chat_ids: int) -> None:
    for chat_id in chat_ids:
        await storage.subscribe(rig.services.db, chat_id, None, rig.clock.now())


def sent(rig: Rig, method: str = "sendMessage") -> list[Call]:
    """Sends Telegram accepted (tests here send no commands, so all are alerts)."""
    return [c for c in rig.emu.calls_to(method) if c.status == 200]


def per_chat(calls: list[Call]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for call in calls:
        chat = int(call.params["chat_id"])
        counts[chat] = counts.get(chat, 0) + 1
    return counts


def downloads(rig: Rig) -> int:
    return sum(1 for r in rig.sim.requests if r.params.get("get_file"))


async def set_read_only(rig: Rig, *, on: bool) -> None:
    """Make the bot's own connection refuse writes (SQLITE_READONLY), as a bad disk does."""
    await rig.services.db.execute(f"PRAGMA query_only={'ON' if on else 'OFF'}")


async def healthz(rig: Rig) -> tuple[int, str]:
    return await get_endpoint(rig, "/healthz")


async def metrics_text(rig: Rig) -> str:
    return (await get_endpoint(rig, "/metrics"))[1]


async def step_until(
    rig: Rig, condition: Callable[[], bool], *, step: float = 1.0, steps: int = 3000
) -> None:
    """Move the fake clock in steps, letting the bot run between them, until `condition`."""
    for _ in range(steps):
        if condition():
            return
        rig.clock.advance(step)
        await asyncio.sleep(0.002)
    if condition is not never:
        raise AssertionError("condition never held")


def never() -> bool:
    return False


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """Mount a small tmpfs at `path`; skip the test where mounting is not permitted."""
    path.mkdir()
    try:
        subprocess.run(  # noqa: S603 - fixed arguments
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],  # noqa: S607
            check=True,
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {err}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=10)  # noqa: S603, S607


def fill(folder: Path) -> Path:
    """Write a file until the filesystem is full; return it (delete it to free the space)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 512, 1):  # big blocks, then the last few bytes: no page fits
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


def delete_database_files(path: Path) -> None:
    """What an operator's stray `rm` does: the file and its WAL go, the bot keeps its handle."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
