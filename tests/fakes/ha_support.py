"""Several real `python -m bot` replicas on one PostgreSQL database (the HA test and benchmark)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

import storage
from storage.election import LeaderInfo, current_leader
from tests.fakes.pg_support import PgServer, admin_execute
from tests.fakes.rig import bot_env, bot_process, free_port


@contextlib.asynccontextmanager
async def ha_database(server: PgServer) -> AsyncIterator[str]:
    """A database of its own (the leader lock is per database), dropped afterwards."""
    name = f"ha_{uuid.uuid4().hex[:12]}"
    await admin_execute(server, f"CREATE DATABASE {name}")
    url = server.url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        await admin_execute(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def replica_env(
    url: str, emu_url: str, sim_url: str, replica: str, chats: list[int], **extra: str
) -> dict[str, str]:
    """One replica's environment: short election retries so a failover takes a second or two."""
    env = bot_env(emu_url, sim_url, Path("unused"), **extra)
    env.update(
        DATABASE_URL=url,
        REPLICA_ID=replica,
        LEADER_RETRY=extra.get("LEADER_RETRY", "0.5"),
        ALLOWED_CHAT_IDS=",".join(map(str, chats)),
        PORT=str(free_port()),
        POLL_INTERVAL="20",
    )
    return env


async def seed_subscribers(url: str, chats: list[int], *, in_progress: list[int]) -> None:
    """Subscribe the chats and record a baseline where the given tasks are still running."""
    now = datetime.now(UTC)
    conn = await storage.open_url(url)
    try:
        for chat in chats:
            await storage.subscribe(conn, chat, None, now)
        tasks = [storage.TaskSnapshot(t, 1, f"Task {t}") for t in in_progress]
        await storage.record_poll(conn, tasks=tasks, alerts=[], now=now)
    finally:
        await storage.close_database(conn)


async def delivered(conn: storage.Database) -> int:
    """Deliveries marked delivered."""
    rows = await conn.execute_fetchall("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'")
    return int(rows[0][0])


async def leader(conn: storage.Database) -> LeaderInfo | None:
    """The replica holding the lock now."""
    return await current_leader(conn)


async def wait_for(predicate: object, *, within: float, every: float = 0.05) -> float:
    """Await `predicate()` (an async callable) until true; return the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        if await predicate():  # type: ignore[operator]
            return loop.time() - start
        if loop.time() - start > within:
            raise AssertionError(f"condition not reached within {within} s")
        await asyncio.sleep(every)


async def replica_get(port: int, path: str) -> tuple[int, str] | None:
    """GET one of the replica's HTTP endpoints: (status, body); None while it does not listen."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(total=5)
            ) as response,
        ):
            return response.status, await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return None


async def replica_health(port: int) -> int | None:
    """/healthz status of the replica on `port` (None while it does not listen yet)."""
    got = await replica_get(port, "/healthz")
    return None if got is None else got[0]


class Replicas:
    """Bot processes on one database, each in its own folder (its own node), by replica id."""

    def __init__(
        self,
        stack: contextlib.AsyncExitStack,
        url: str,
        *,
        emu_url: str,
        sim_url: str,
        chats: list[int],
        root: Path,
        **extra: str,
    ) -> None:
        self._stack = stack
        self._env = (url, emu_url, sim_url)
        self._chats = chats
        self._root = root
        self._extra = extra
        self.running: dict[str, asyncio.subprocess.Process] = {}
        self.ports: dict[str, int] = {}
        # More settings for one replica; "{port}" in a value becomes its PORT (e.g. WEBHOOK_URL).
        self.extra_env: dict[str, dict[str, str]] = {}

    async def start(self, replica: str) -> None:
        """Start one more replica."""
        folder = self._root / replica
        folder.mkdir(exist_ok=True)
        url, emu_url, sim_url = self._env
        env = replica_env(url, emu_url, sim_url, replica, self._chats, **self._extra)
        for key, value in self.extra_env.get(replica, {}).items():
            env[key] = value.replace("{port}", env["PORT"])
        self.running[replica] = await self._stack.enter_async_context(
            bot_process(env, folder, capture_stderr=False)
        )
        self.ports[replica] = int(env["PORT"])

    async def healthy(self, replica: str) -> None:
        """Wait until the replica's /healthz answers 200."""

        async def answers() -> bool:
            return await replica_health(self.ports[replica]) == 200

        await wait_for(answers, within=30, every=0.1)

    async def kill(self, replica: str) -> int:
        """kill -9 the replica; return its exit status."""
        proc = self.running.pop(replica)
        proc.send_signal(signal.SIGKILL)
        return await proc.wait()

    async def stop(self, replica: str) -> int:
        """SIGTERM the replica; return its exit status (within 15 s)."""
        proc = self.running.pop(replica)
        proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(proc.wait(), 15)
