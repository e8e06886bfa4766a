"""The end-to-end rig: the real Application, a Bot API emulator and the SMSC simulator.

Everything talks real HTTP on loopback. One FakeClock (auto-advancing) is shared by the bot,
the simulator and the emulator's flood checks, so windows and backoffs pass without sleeping.
The production poll loop runs too: its timer waits on the fake clock without moving it, so
it polls when a test moves time past POLL_INTERVAL (`Rig.poll` runs its poll in turn with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import httpx._transports.default as httpx_transports
from aiohttp import web

from bot.clock import Clock, FakeClock
from bot.context import App, Services
from bot.runtime.app import RuntimeOptions, build_application, start_application, stop_application
from bot.runtime.lifecycle import StopTimes
from bot.runtime.serving import stop_polling
from bot.settings import Settings
from bot.smsc.client import SmscClientConfig
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask, SimulatorState, create_app
from bot.tg_emulator import Call, TelegramEmulator

REPO = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-token-for-the-rig"
LOGIN = "team"
PASSWORD = "s3cret-Passw0rd"
ADMIN_CHAT = 1001
TEAM_GROUP = -100777
STRANGER = 4242


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve an aiohttp app on a free loopback port; yield its base URL."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_env(emu_url: str, sim_url: str, db_path: Path, **extra: str) -> dict[str, str]:
    """The environment for `python -m bot` in a subprocess, as an operator would set it."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SMSC_"))}
    return {
        **inherited,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "SMSC_LOGIN": LOGIN,
        "SMSC_PASSWORD": PASSWORD,
        "TELEGRAM_API_URL": emu_url,
        "SMSC_API_URL": sim_url,
        "DATABASE_URL": f"sqlite:///{db_path}",
        "PORT": str(free_port()),
        "PYTHONPATH": str(REPO),
        **extra,
    }


@contextlib.asynccontextmanager
async def bot_process(
    env: dict[str, str], cwd: Path, *, capture_stderr: bool = True, capture_stdout: bool = False
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run `python -m bot` as an operator would; kill it on the way out if it still runs."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE if capture_stdout else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE if capture_stderr else asyncio.subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@dataclass
class Rig:
    """A running bot with its two fake peers."""

    app: App
    emu: TelegramEmulator
    sim: SimulatorState
    sim_url: str
    clock: Any  # a FakeClock in tests; benchmarks pass the real clock
    settings: Settings
    options: dict[str, Any]
    running: bool = False

    @property
    def services(self) -> Services:
        """The bot's shared services."""
        return self.app.bot_data.services

    async def say(
        self, chat_id: int, text: str, *, wait: str | None = "sendMessage", **kwargs: Any
    ) -> Call | None:
        """Send a message as a user; wait for the bot's next `wait` call to that chat."""
        before = len(self.emu.calls_to(wait, chat_id=chat_id)) if wait else 0
        self.emu.send_message(chat_id, text, **kwargs)
        if wait is None:
            return None
        calls = await self.emu.wait_for(
            wait, predicate=lambda c: _chat(c) == chat_id, count=before + 1, timeout=10.0
        )
        return calls[-1]

    async def reply_text(self, chat_id: int, text: str, **kwargs: Any) -> str:
        """Send a command; return the bot's reply as the user sees it (entities parsed)."""
        call = await self.say(chat_id, text, **kwargs)
        assert call is not None
        assert call.status == 200, call.response
        return str(call.response["result"]["text"])

    async def poll(self) -> Any:
        """Run one watcher poll after SMSC's windows and our list cache have passed.

        In turn with the poll loop: the loop's tick that the 61 s would make due is this poll.
        """
        self.clock.advance(61)
        return await self.app.bot_data.runtime.poll_now(self.app)

    async def finish_task(self, task: SimTask, status: TaskStatus) -> Any:
        """Show SMSC `task` to the watcher, then move it to `status`; return the second diff."""
        self.sim.add_task(task)
        await self.poll()
        self.sim.set_status(task.id, status)
        return await self.poll()

    async def deliver(self) -> int:
        """Run one delivery pass (tests that drive delivery by hand)."""
        return await self.services.deliverer.deliver_due()

    async def restart(self) -> None:
        """Stop the application and start a new one on the same database (a redeploy)."""
        await self.stop()
        options = _options(self.sim_url, **self.options)
        self.app = build_rig_application(self.settings, self.clock, options)
        await start_with_updater(self.app)
        self.running = True

    async def stop(self) -> None:
        """Stop the application if it runs."""
        if self.running:
            self.running = False
            await stop_application_with_updater(self.app)


@functools.cache
def _default_ssl_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """One context per SSL_CERT_FILE, SSL_CERT_DIR (the key: httpx reads them itself)."""
    return _create_ssl_context(verify=True, trust_env=True)


_create_ssl_context = httpx_transports.create_ssl_context


def _shared_ssl_context(
    verify: Any = True, cert: Any = None, trust_env: bool = True
) -> ssl.SSLContext:
    """httpx's default TLS context, made once: ~50 ms of CPU per PTB request object otherwise."""
    if verify is True and cert is None and trust_env:
        # Keyed by what httpx reads from the environment for it.
        env = os.environ
        return _default_ssl_context(env.get("SSL_CERT_FILE"), env.get("SSL_CERT_DIR"))
    return _create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)


@contextlib.contextmanager
def _one_ssl_context() -> Iterator[None]:
    """Build the application's HTTP clients (PTB's HTTPXRequest) on one shared TLS context.

    The rig builds an application per test and per restart, each with two HTTPX clients, and
    talks plain http to loopback anyway. An SSLContext is safe to share; only the
    application built here sees the patch (httpx makes the context when a client is built).
    """
    with mock.patch.object(httpx_transports, "create_ssl_context", _shared_ssl_context):
        yield


def build_rig_application(settings: Settings, clock: Clock, options: RuntimeOptions) -> App:
    """`build_application` for the rig, on the shared TLS context."""
    with _one_ssl_context():
        return build_application(settings, clock=clock, options=options)


def _chat(call: Call) -> int | None:
    value = call.params.get("chat_id")
    return int(value) if value is not None else None


def _options(sim_url: str, **overrides: Any) -> RuntimeOptions:
    values: dict[str, Any] = {
        "smsc_config": SmscClientConfig(base_url=sim_url, request_timeout=5.0),
        # Work in flight gets 0.5 s after a stop: a test's hung request ends the stop quickly.
        "stop_times": StopTimes(deadline=1.5, closing=1.0),
        "http_host": "127.0.0.1",
        "http_port": 0,
    }
    values.update(overrides)
    return RuntimeOptions(**values)


async def start_with_updater(app: App) -> None:
    """Start the application and long polling, as `run_polling` would."""
    await start_application(app)
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1, drop_pending_updates=False)


async def stop_application_with_updater(app: App) -> None:
    """Stop long polling, then the application (as production does: bounded)."""
    await stop_polling(app)
    await stop_application(app)


def make_settings(tmp_path: Path, emu_url: str, sim_url: str, **overrides: Any) -> Settings:
    """Settings as an operator would give them, pointed at the local peers."""
    values: dict[str, Any] = {
        "telegram_bot_token": TOKEN,
        "telegram_api_url": emu_url,
        "smsc_api_url": sim_url,
        "smsc_login": LOGIN,
        "smsc_password": PASSWORD,
        "allowed_chat_ids": f"{ADMIN_CHAT},{TEAM_GROUP}",
        "database_url": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def running_rig(
    tmp_path: Path,
    *,
    sim_options: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    clock: Clock | None = None,
    **overrides: Any,
) -> AsyncIterator[Rig]:
    """A started bot on fresh peers; everything is stopped on exit."""
    clock = clock or FakeClock(autoadvance=True)
    state = SimulatorState(clock, login=LOGIN, password=PASSWORD, **(sim_options or {}))
    async with TelegramEmulator(token=TOKEN, bot_username="smsc_tasks_bot") as emu:
        emu.clock = clock
        async with serve(create_app(state)) as sim_url:
            settings = make_settings(tmp_path, emu.url, sim_url, **overrides)
            app = build_rig_application(settings, clock, _options(sim_url, **(options or {})))
            rig = Rig(app, emu, state, sim_url, clock, settings, dict(options or {}))
            await start_with_updater(app)
            rig.running = True
            try:
                yield rig
            finally:
                await rig.stop()
