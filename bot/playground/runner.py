"""Start and stop the playground: simulator, emulator, the production bot, the web chat.

Nothing here re-implements the bot: the application comes from `build_application` with
ordinary `Settings`, polls the emulator with long polling as `run_polling` does, and talks to
the simulator over HTTP through the production SMSC client, watcher, outbox and pacing.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

import storage
from bot.clock import Clock, SystemClock
from bot.context import App, Services
from bot.playground import world
from bot.playground.api import add_routes
from bot.playground.controls import SmscControls
from bot.playground.feed import Feed
from bot.runtime.app import RuntimeOptions, build_application, start_application, stop_application
from bot.runtime.serving import ALLOWED_UPDATES
from bot.runtime.web import create_web_app
from bot.settings import Settings
from bot.smsc.client import SmscClientConfig
from bot.smsc.models import SMSC_TIME_FORMAT, SMSC_TZ, TaskStatus
from bot.smsc.simulator import SimTask, SimulatorState, create_app, demo_state
from bot.smsc.simulator.scenario import FIRST_ID
from bot.tg_emulator import TelegramEmulator

log = logging.getLogger(__name__)

# Fast enough that a task finished in the panel is announced within a minute, and slow enough
# that every poll stays within SMSC's budget of identical requests (no reused lists).
POLL_INTERVAL = 31.0


class DemoSettings(Settings):
    """Settings from code only: the playground must not pick up a production `.env`."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read the values given to the constructor, and nothing else."""
        return (init_settings,)


@dataclass
class PlaygroundOptions:
    """Where to serve, and the knobs tests turn (production-like defaults)."""

    host: str = "127.0.0.1"
    port: int = 8080
    database: Path | None = None  # None: a throwaway file in a temporary folder
    clock: Clock | None = None
    state: SimulatorState | None = None  # None: the scripted demo account
    schedule_watcher: bool = True  # tests poll by hand
    poll_interval: float = POLL_INTERVAL
    log_level: str = "INFO"


def _older_tasks(state: SimulatorState, clock: Clock) -> None:
    """A few old exports below the demo account's, so /tasks has an "Older" page."""
    now = clock.now()
    for n in range(6):
        created = now - timedelta(days=40 + 7 * n, hours=2)
        started = created + timedelta(minutes=2)
        task_id = FIRST_ID - 1 - n
        state.add_task(
            SimTask(
                task_id,
                f"Weekly export {created:%Y-%m-%d}",
                TaskStatus.COMPLETED if n != 2 else TaskStatus.CANCELED,
                created=created.astimezone(SMSC_TZ).strftime(SMSC_TIME_FORMAT),
                time=started.astimezone(SMSC_TZ).strftime(SMSC_TIME_FORMAT),
                file=f"weekly_{created:%Y_%m_%d}.csv",
                rows=150 + 40 * n,
            )
        )


def demo_settings(database: Path, sim_url: str, emu_url: str, **overrides: Any) -> Settings:
    """The bot's settings for the playground, as an operator would write them."""
    values: dict[str, Any] = {
        "telegram_bot_token": world.BOT_TOKEN,
        "telegram_api_url": emu_url,
        "smsc_api_url": sim_url,
        "smsc_login": world.SMSC_LOGIN,
        "smsc_password": world.SMSC_PASSWORD,
        "allowed_chat_ids": world.ALLOWED_CHAT_IDS,
        "database_url": f"sqlite:///{database}",
        "poll_interval": POLL_INTERVAL,
    }
    values.update(overrides)
    return DemoSettings(**values)


class Playground:
    """Everything `python -m bot demo` runs, started and stopped as one."""

    def __init__(self, options: PlaygroundOptions | None = None) -> None:
        self.options = options or PlaygroundOptions()
        self.clock: Clock = self.options.clock or SystemClock()
        self.emu = TelegramEmulator(
            token=world.BOT_TOKEN,
            bot_username=world.BOT_USERNAME,
            bot_first_name=world.BOT_NAME,
            clock=self.clock,
        )
        if self.options.state is not None:
            self.sim = self.options.state
        else:
            self.sim = demo_state(self.clock, login=world.SMSC_LOGIN, password=world.SMSC_PASSWORD)
            _older_tasks(self.sim, self.clock)
        self.controls = SmscControls(self.sim)
        self.feed = Feed(self.emu)
        self._app: App | None = None
        self._stack = contextlib.AsyncExitStack()
        self._url: str | None = None
        self.settings: Settings | None = None

    @property
    def url(self) -> str:
        """The web chat's address, once started."""
        if self._url is None:
            raise RuntimeError("the playground is not started")
        return self._url

    @property
    def app(self) -> App:
        """The bot's application, once started."""
        if self._app is None:
            raise RuntimeError("the playground is not started")
        return self._app

    @property
    def services(self) -> Services:
        """The bot's shared services."""
        return self.app.bot_data.services

    async def start(self) -> None:
        """Start the stand-ins, then the bot, then the page; undo everything if a step fails."""
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise

    async def _start(self) -> None:
        stack = self._stack
        await self.emu.start()
        stack.push_async_callback(self.emu.stop)
        for conv in world.CONVERSATIONS:
            self.emu.add_chat(
                conv.chat_id,
                chat_type=conv.chat_type,
                title=world.GROUP_TITLE if conv.chat_type != "private" else None,
                first_name=conv.user.first_name if conv.chat_type == "private" else None,
                username=conv.user.username if conv.chat_type == "private" else None,
                is_forum=conv.thread_id is not None,
            )
        sim_url = await self._serve(create_app(self.sim), "127.0.0.1", 0)

        database = self.options.database
        if database is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="smsc-playground-"))
            database = Path(folder) / "bot.sqlite3"
        await _subscribe_alerts_topic(database, self.clock)
        self.settings = demo_settings(
            database,
            sim_url,
            self.emu.url,
            poll_interval=self.options.poll_interval,
            log_level=self.options.log_level,
        )
        options = RuntimeOptions(
            smsc_config=SmscClientConfig(base_url=sim_url),
            schedule_watcher=self.options.schedule_watcher,
            serve_http=False,  # health, readiness and metrics are on the playground's own port
        )
        app = build_application(self.settings, clock=self.clock, options=options)
        self.feed.start()
        stack.push_async_callback(self.feed.stop)
        await start_application(app)
        self._app = app
        stack.push_async_callback(self._stop_bot, app)
        assert app.updater is not None  # noqa: S101 - build_application makes one for polling
        await app.updater.start_polling(allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)

        page = create_web_app(app)
        add_routes(page, self)
        self._url = await self._serve(page, self.options.host, self.options.port)
        log.info("playground on %s", self._url, extra={"event": "playground_started"})

    async def _serve(self, app: web.Application, host: str, port: int) -> str:
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - only for the URL
        return f"http://[{shown}]:{bound}" if ":" in shown else f"http://{shown}:{bound}"

    async def _stop_bot(self, app: App) -> None:
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        await stop_application(app)
        self._app = None

    def begin_stop(self) -> None:
        """A stop signal arrived: finish work in flight for a bounded time, as production does."""
        if self._app is not None:
            self._app.bot_data.runtime.lifecycle.request_stop("signal")

    async def stop(self) -> None:
        """Stop the page, the bot, then the stand-ins; the temporary database goes too."""
        # A request held by the "hang" fault is answered now: a stop never waits 30 s for it.
        self.sim.release_parked()
        await self._stack.aclose()
        self._url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def _subscribe_alerts_topic(database: Path, clock: Clock) -> None:
    """Subscribe the group's forum topic, as /subscribe typed there would.

    ALERT_CHAT_IDS names whole chats; a topic is subscribed the way people do it in Telegram.
    """
    db = await storage.open_database(database)
    try:
        await storage.subscribe(db, world.TEAM_GROUP, world.ALERTS_TOPIC, clock.now())
    finally:
        await storage.close_database(db)
