"""What the application runs on: the shared resources and the background work, opened in order.

`Runtime.start` opens one database, one HTTP session and one SMSC client, wires the services,
and starts the delivery loop and the poll and prune schedules (or the leader election that runs
them), each as an async context manager on one `AsyncExitStack`: closed in reverse, on a failed
start as on a stop. `bot.runtime.app` builds PTB's application around it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
from telegram import BotCommand
from telegram.error import TelegramError

import storage
from bot import __version__
from bot.alerts.delivery import Deliverer
from bot.alerts.watcher import Diff, Watcher
from bot.clock import Clock
from bot.context import App, Services
from bot.metrics import Metrics
from bot.runtime.leadership import Duty, Leadership
from bot.runtime.lifecycle import Lifecycle, StopTimes
from bot.runtime.periodic import Periodic
from bot.runtime.web import WebhookRoute, WebServer, create_web_app
from bot.settings import Settings
from bot.smsc.client import SmscClient, SmscClientConfig, SmscCredentials
from bot.telegram.documents import TaskFiles
from bot.telegram.updates import GET_UPDATES_BACKOFF
from bot.texts.commands import menu
from bot.texts.i18n import Translator, check_catalogs, translator
from handlers.access import gate_of
from storage.election import PgLeaderLock
from storage.smsc_budget import SqliteBudgetStore

log = logging.getLogger(__name__)

WATCHER_JOB = "smsc-watcher"
PRUNE_JOB = "outbox-prune"
FIRST_POLL_DELAY = 2.0  # seconds after start: let the bot finish starting first
PRUNE_EVERY = 24 * 3600.0
KEEP_DELIVERED = timedelta(days=30)
# Test-only: the end-to-end tests run the real `python -m bot` and shorten, through these, the
# waits they would otherwise sit through in real time. Unset (production): the defaults.
TEST_FIRST_POLL_DELAY = "BOT_TEST_FIRST_POLL_DELAY"  # seconds, e.g. "0"
TEST_GET_UPDATES_BACKOFF = "BOT_TEST_GET_UPDATES_BACKOFF"  # seconds, e.g. "0.05,0.1,60"


def smsc_credentials(settings: Settings) -> SmscCredentials:
    """The SMSC credentials from settings (the API key wins when both are set)."""
    if settings.smsc_apikey is not None:
        apikey = settings.smsc_apikey.get_secret_value()
        return SmscCredentials(login=None, password=None, apikey=apikey)
    password = settings.smsc_password.get_secret_value() if settings.smsc_password else None
    return SmscCredentials(login=settings.smsc_login, password=password, apikey=None)


@dataclass
class RuntimeOptions:
    """Knobs tests turn; production uses the defaults."""

    smsc_config: SmscClientConfig | None = None
    schedule_watcher: bool = True  # the poll loop; off only for tests that poll by hand alone
    run_delivery: bool = True
    serve_http: bool = True  # health/readiness/metrics (and the webhook) on settings.port
    http_host: str = "0.0.0.0"  # noqa: S104 - a container's server listens on all interfaces
    http_port: int | None = None  # None: settings.port; tests use 0
    stop_times: StopTimes | None = None  # the one stop deadline; None: STOP_TIMEOUT's
    first_poll_delay: float = FIRST_POLL_DELAY
    get_updates_backoff: tuple[float, ...] = GET_UPDATES_BACKOFF  # after 1, 2, ... failures

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> RuntimeOptions:
        """The defaults, but for the test-only waits `environ` sets (see TEST_FIRST_POLL_DELAY)."""
        options = cls()
        delay = environ.get(TEST_FIRST_POLL_DELAY)
        if delay:
            options.first_poll_delay = _seconds(TEST_FIRST_POLL_DELAY, delay)
        backoff = environ.get(TEST_GET_UPDATES_BACKOFF)
        if backoff:
            waits = backoff.split(",")
            options.get_updates_backoff = tuple(
                _seconds(TEST_GET_UPDATES_BACKOFF, w) for w in waits
            )
        return options


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise ValueError(f"{name} must be seconds (comma-separated where several), not {text!r}")
    return value


class Runtime:
    """Opens the application's shared resources in order, and closes them in reverse."""

    def __init__(self, settings: Settings, clock: Clock, options: RuntimeOptions) -> None:
        self.settings = settings
        self.clock = clock
        self.options = options
        self.lifecycle = Lifecycle(options.stop_times or StopTimes(settings.stop_timeout))
        self.poller: Periodic[Diff | None] | None = None
        self.pruner: Periodic[None] | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        # More work only the leader does (PostgreSQL replicas), e.g. getUpdates in polling mode.
        self.leader_duties: list[Duty] = []

    async def start(self, app: App) -> None:
        """Open the database and HTTP session, wire the services, start the background work."""
        check_catalogs()  # before anything is said: a missing catalog is an install error
        if self._stack is not None:
            return
        async with contextlib.AsyncExitStack() as stack:
            services = await self._open_services(app, stack)
            if self.options.serve_http:
                services.web = await stack.enter_async_context(self._web_server(app))
            await self._register_commands(app)
            if self.settings.is_postgres:
                # Replicas: the watcher and the delivery loop run only while this one leads.
                self._elect(stack, services)
            else:
                if self.options.run_delivery:
                    await stack.enter_async_context(self._delivery(services.deliverer))
                if self.options.schedule_watcher:
                    await self._schedule(stack, services)
            self._stack = stack.pop_all()
        log.info("bot started", extra={"event": "started"})

    async def stop(self, app: App) -> None:
        """Close what start() opened, in reverse, within the lifecycle's deadline; idempotent."""
        stack, self._stack = self._stack, None
        if stack is None:
            return
        self.lifecycle.request_stop("application stop")
        await stack.aclose()

    async def poll_now(self, app: App) -> Diff | None:
        """One watcher poll now, taking turns with the scheduled ones (tests, benchmarks)."""
        if self.poller is None:
            return await app.bot_data.services.watcher.poll()
        return await self.poller.run_now()

    def _elect(self, stack: contextlib.AsyncExitStack, services: Services) -> None:
        """Start the leader election; the duties (delivery, watcher, polling) follow the lock."""
        leadership = Leadership(
            PgLeaderLock(self.settings.database_url, self.settings.replica),
            services.db,
            clock=self.clock,
            lifecycle=self.lifecycle,
            retry=self.settings.leader_retry,
            registry=services.metrics.registry,
        )

        async def delivery(duties: contextlib.AsyncExitStack) -> None:
            if leadership.epoch is not None:
                services.deliverer.fence(leadership.epoch)  # every send claimed for this term
            await duties.enter_async_context(self._delivery(services.deliverer))

        async def watcher(duties: contextlib.AsyncExitStack) -> None:
            await self._schedule(duties, services)

        if self.options.run_delivery:
            leadership.duties.append(delivery)
        if self.options.schedule_watcher:
            leadership.duties.append(watcher)
        leadership.duties.extend(self.leader_duties)
        services.leadership = leadership
        leadership.start()
        stack.push_async_callback(leadership.stop)

    async def _open_services(self, app: App, stack: contextlib.AsyncExitStack) -> Services:
        settings = self.settings
        config = self.options.smsc_config or SmscClientConfig(base_url=str(settings.smsc_api_url))
        db = await stack.enter_async_context(_database(settings))
        http = await stack.enter_async_context(
            aiohttp.ClientSession(
                trust_env=True, headers={"User-Agent": f"smsc-tasks-bot/{__version__}"}
            )
        )
        smsc = SmscClient(
            http,
            smsc_credentials(settings),
            config=config,
            clock=self.clock,
            budget=SqliteBudgetStore(db),  # SMSC's limits hold across restarts
        )
        metrics = Metrics()
        smsc.add_observer(metrics)
        metrics.watch_updates(app.bot_data.updates.stats)
        metrics.watch_refusals(gate_of(app).stats)
        files = TaskFiles(smsc, db, settings.files_dir, self.clock)
        await files.clean_start()  # keeps only the CSVs that pending alerts still need
        deliverer = Deliverer(
            app.bot, db, files, self.clock, metrics=metrics, language=settings.bot_language
        )
        watcher = Watcher(
            smsc,
            db,
            self.clock,
            notify_canceled=settings.notify_canceled,
            on_alerts=deliverer.wake,
            metrics=metrics,
        )
        now = self.clock.now()
        await sync_subscriptions(db, settings, now)
        services = Services(
            settings=settings,
            clock=self.clock,
            http=http,
            smsc=smsc,
            db=db,
            files=files,
            watcher=watcher,
            deliverer=deliverer,
            metrics=metrics,
            started_mono=self.clock.monotonic(),
        )
        app.bot_data.services = services
        stack.callback(_forget_services, app)  # closed before the session and the database
        return services

    @contextlib.asynccontextmanager
    async def _web_server(self, app: App) -> AsyncIterator[WebServer]:
        route = webhook_route(self.settings)
        port = self.settings.port if self.options.http_port is None else self.options.http_port
        server = WebServer(create_web_app(app, route), self.options.http_host, port)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()

    async def _register_commands(self, app: App) -> None:
        try:
            # One table, two menus: English for everyone, Russian for Russian-speaking users.
            await app.bot.set_my_commands(_menu(translator("en")))
            await app.bot.set_my_commands(_menu(translator("ru")), language_code="ru")
        except TelegramError as err:  # the menu is a convenience; the bot works without it
            log.warning("could not register the command menu: %s", err)

    @contextlib.asynccontextmanager
    async def _delivery(self, deliverer: Deliverer) -> AsyncIterator[None]:
        """The delivery loop: no new pass once a stop is asked for; the one in flight is bounded."""
        lifecycle = self.lifecycle

        async def run() -> None:
            with lifecycle.inflight.tracking():
                await deliverer.run()

        task = lifecycle.spawn(run(), name="alert-delivery")
        lifecycle.on_stop(deliverer.request_stop)
        try:
            yield
        finally:
            await deliverer.stop(grace=lifecycle.work_remaining())
            task.cancel()
            await lifecycle.bounded(task, within=lifecycle.remaining(), what="the delivery loop")

    async def _schedule(self, stack: contextlib.AsyncExitStack, services: Services) -> None:
        """The watcher's poll and the daily prune, on the monotonic clock."""
        settings = self.settings
        self.poller = await stack.enter_async_context(
            Periodic(
                WATCHER_JOB,
                services.watcher.poll,
                clock=self.clock,
                lifecycle=self.lifecycle,
                interval=settings.poll_interval,
                first=self.options.first_poll_delay,
            )
        )
        stack.callback(setattr, self, "poller", None)
        self.pruner = await stack.enter_async_context(
            Periodic(
                PRUNE_JOB,
                lambda: _prune(services),
                clock=self.clock,
                lifecycle=self.lifecycle,
                interval=PRUNE_EVERY,
                first=PRUNE_EVERY,
            )
        )
        stack.callback(setattr, self, "pruner", None)
        services.watching = True
        config = self.options.smsc_config or SmscClientConfig(base_url=str(settings.smsc_api_url))
        window = config.window_seconds + config.window_margin
        if settings.poll_interval < window / config.identical_limit:
            log.warning(
                "POLL_INTERVAL %.0f s is shorter than SMSC's budget of %d identical requests "
                "a minute allows: some polls will reuse the previous list",
                settings.poll_interval,
                config.identical_limit,
            )


@contextlib.asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[storage.Database]:
    db = await storage.open_url(settings.database_url)  # SQLite or PostgreSQL
    try:
        yield db
    finally:
        await storage.close_database(db)
        # The first resource opened, the last closed: on a stop and a failed start alike.
        log.info("bot stopped", extra={"event": "stopped"})


def _forget_services(app: App) -> None:
    app.bot_data.services = None


async def _prune(services: Services) -> None:
    """Daily housekeeping: forget alerts delivered long ago, so the database stays small."""
    removed = await storage.prune_delivered(services.db, services.clock.now() - KEEP_DELIVERED)
    log.info("pruned %d old outbox rows", removed, extra={"event": "outbox_pruned"})


async def sync_subscriptions(db: storage.Database, settings: Settings, now: datetime) -> None:
    """Subscribe ALERT_CHAT_IDS; drop subscriptions of chats no longer allowed.

    A chat removed from ALLOWED_CHAT_IDS must stop getting task data, alerts included.
    """
    # A configured group that became a supergroup lives on under its new id (chat_migrations).
    moved = await storage.migration_targets(db)
    for chat_id in settings.alert_chat_ids:
        await storage.subscribe(db, moved.get(chat_id, chat_id), None, now)
    permitted = set(settings.allowed_chat_ids) | set(settings.alert_chat_ids)
    permitted |= {moved[c] for c in permitted if c in moved}
    for sub in await storage.list_subscriptions(db):
        if sub.chat_id not in permitted:
            await storage.remove_chat(
                db, sub.chat_id, now=now, reason="chat is no longer in ALLOWED_CHAT_IDS"
            )
            log.warning(
                "unsubscribed a chat that is no longer allowed",
                extra={"event": "unsubscribed_not_allowed", "chat_id": sub.chat_id},
            )


def webhook_route(settings: Settings) -> WebhookRoute | None:
    """The webhook's path and secret, when WEBHOOK_URL is set."""
    if settings.webhook_url is None or settings.webhook_secret is None:
        return None
    path = settings.webhook_url.path or "/"
    return WebhookRoute(path=path, secret=settings.webhook_secret.get_secret_value())


def _menu(t: Translator) -> list[BotCommand]:
    """The command menu in `t`'s language."""
    return [BotCommand(name, description) for name, description in menu(t)]
