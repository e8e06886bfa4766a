"""`python -m bot demo` as a visitor runs it: no environment, one URL printed, exit 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from tests.fakes.rig import REPO


def demo_env() -> dict[str, str]:
    """The environment of someone who never configured the bot."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PYTHONPATH"] = str(REPO)
    return env


async def start_demo(cwd: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "demo",
        *args,
        env=demo_env(),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_demo_serves_the_page_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=not-a-token\nWEBHOOK_URL=nonsense\n")
    proc = await start_demo(tmp_path, "--port", "0")
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode()
        assert "http://127.0.0.1:" in line, line
        url = line.split("open ", 1)[1].split()[0]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            async with http.get(url) as resp:
                assert resp.status == 200
                assert "SMSC Tasks bot" in await resp.text()
            async with http.get(f"{url}/api/state") as resp:
                state = await resp.json()
                assert len(state["smsc"]["tasks"]) >= 11  # the demo account, with an Older page
            async with http.get(f"{url}/healthz") as resp:
                assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=15) == 0
        assert proc.stderr is not None
        stderr = (await proc.stderr.read()).decode()
        assert "Traceback" not in stderr
        assert "bot stopped" in stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_busy_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = await start_demo(tmp_path, "--port", str(port))
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in stderr.decode()
    assert "Traceback" not in stderr.decode()


async def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    for args in (["--port", "70000"], ["--port", "eighty"], ["--colour"]):
        proc = await start_demo(tmp_path, *args)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 2, args
        assert "port" in stderr.decode() or "unrecognized" in stderr.decode()
