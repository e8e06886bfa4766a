"""Build the application and run its lifetime: one HTTP session, one database, one SMSC client.

`build_application(settings)` constructs everything lazily. `Runtime.start`/`Runtime.stop`
open and close the shared resources exactly once: `run_polling` calls them as PTB's post-init
and post-shutdown hooks, while tests and the webhook transport, which drive the application
themselves, go through `start_application`/`stop_application`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
import aiosqlite
from telegram import BotCommand
from telegram.error import TelegramError
from telegram.ext import ApplicationBuilder, ContextTypes, JobQueue

import handlers
import storage
from bot import __version__
from bot.clock import Clock, SystemClock
from bot.context import App, BotData, Context, Services
from bot.delivery import Deliverer
from bot.documents import TaskFiles
from bot.metrics import Metrics
from bot.render import COMMANDS
from bot.settings import Settings
from bot.shutdown import GracefulStop, Inflight, TrackedUpdateProcessor
from bot.smsc.client import SmscClient, SmscClientConfig, SmscCredentials
from bot.telegram_limits import TelegramRateLimiter
from bot.watcher import Watcher
from bot.web import WebhookRoute, WebServer, create_web_app

log = logging.getLogger(__name__)

WATCHER_JOB = "smsc-watcher"
PRUNE_JOB = "outbox-prune"
FIRST_POLL_DELAY = 2.0  # seconds after start: let the bot finish starting first
PRUNE_EVERY = 24 * 3600.0
KEEP_DELIVERED = timedelta(days=30)


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
    schedule_watcher: bool = True  # tests call `services.watcher.poll()` themselves
    run_delivery: bool = True
    delivery_grace: float = 10.0  # seconds a stop waits for deliveries in flight
    serve_http: bool = True  # health/readiness/metrics (and the webhook) on settings.port
    http_host: str = "0.0.0.0"  # noqa: S104 - a container's server listens on all interfaces
    http_port: int | None = None  # None: settings.port; tests use 0
    handle_signals: bool = False  # polling mode: SIGTERM/SIGINT start a bounded graceful stop
    shutdown_grace: float = 8.0  # seconds work in flight may take after the signal (<10 s)


class Runtime:
    """Opens and closes the application's shared resources."""

    def __init__(self, settings: Settings, clock: Clock, options: RuntimeOptions) -> None:
        self.settings = settings
        self.clock = clock
        self.options = options
        self._delivery: asyncio.Task[None] | None = None
        self._services: Services | None = None
        self.inflight = Inflight()
        self.graceful = GracefulStop(
            self.inflight, options.shutdown_grace, on_cancel=self._cut_off_delivery
        )

    async def start(self, app: App) -> None:
        """Open the HTTP session and the database, wire the services, start the watcher."""
        if app.bot_data.running:
            return
        settings = self.settings
        config = self.options.smsc_config or SmscClientConfig(base_url=str(settings.smsc_api_url))
        db = await storage.open_database(settings.database_path)
        http = aiohttp.ClientSession(
            trust_env=True, headers={"User-Agent": f"smsc-tasks-bot/{__version__}"}
        )
        try:
            files_dir = settings.files_dir
            # Leftovers of a download interrupted by a crash: never needed again.
            shutil.rmtree(files_dir, ignore_errors=True)
            files_dir.mkdir(parents=True, exist_ok=True)
            smsc = SmscClient(http, smsc_credentials(settings), config=config, clock=self.clock)
            metrics = Metrics()
            metrics.watch_smsc(smsc.stats)
            smsc.add_listener(metrics)
            files = TaskFiles(smsc, db, files_dir, self.clock)
            deliverer = Deliverer(app.bot, db, files, self.clock, metrics=metrics)
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
        except BaseException:
            await http.close()
            await db.close()
            raise
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
            started_at=now,
            started_mono=self.clock.monotonic(),
        )
        app.bot_data.services = services
        self._services = services
        if self.options.serve_http:
            await self._start_web(app, services)
        await self._register_commands(app)
        if self.options.run_delivery:
            # Owned here rather than by `app.create_task`: post-init runs before the
            # application starts, and stop() must finish deliveries before the DB closes.
            self._delivery = asyncio.get_running_loop().create_task(
                deliverer.run(), name="alert-delivery"
            )
        if self.options.handle_signals:
            self.graceful.install(then=lambda: self.request_stop(app.stop_running))
        if self.options.schedule_watcher and app.job_queue is not None:
            app.job_queue.run_repeating(
                _poll_job, interval=settings.poll_interval, first=FIRST_POLL_DELAY, name=WATCHER_JOB
            )
            app.job_queue.run_repeating(
                _prune_job, interval=PRUNE_EVERY, first=PRUNE_EVERY, name=PRUNE_JOB
            )
            services.watching = True
            window = config.window_seconds + config.window_margin
            if settings.poll_interval < window / config.identical_limit:
                log.warning(
                    "POLL_INTERVAL %.0f s is shorter than SMSC's budget of %d identical requests "
                    "a minute allows: some polls will reuse the previous list",
                    settings.poll_interval,
                    config.identical_limit,
                )
        log.info("bot started", extra={"event": "started"})

    async def _start_web(self, app: App, services: Services) -> None:
        route = webhook_route(self.settings)
        port = self.settings.port if self.options.http_port is None else self.options.http_port
        server = WebServer(create_web_app(app, route), self.options.http_host, port)
        try:
            await server.start()
        except OSError:
            await self.stop(app)
            raise
        services.web = server

    async def _register_commands(self, app: App) -> None:
        commands = [BotCommand(name, description) for name, description in COMMANDS]
        try:
            await app.bot.set_my_commands(commands)
        except TelegramError as err:  # the menu is a convenience; the bot works without it
            log.warning("could not register the command menu: %s", err)

    def request_stop(self, then: Callable[[], None]) -> None:
        """Begin a bounded graceful stop: no new deliveries; `then` stops the application."""
        if self._services is not None:
            self._services.deliverer.request_stop()
        self.graceful.request(then)

    def _cut_off_delivery(self) -> None:
        if self._services is not None:
            self._services.deliverer.cancel_pass()

    async def stop(self, app: App) -> None:
        """Finish in-flight deliveries (bounded), then close what start() opened; idempotent."""
        await self.graceful.close()
        if not app.bot_data.running:
            return
        services = app.bot_data.services
        if app.job_queue is not None:
            for name in (WATCHER_JOB, PRUNE_JOB):
                for job in app.job_queue.get_jobs_by_name(name):
                    job.schedule_removal()
        if services.web is not None:
            await services.web.stop()
        # After a signal the grace period has been running since; otherwise give it now.
        grace = 0.5 if self.graceful.requested else self.options.delivery_grace
        await services.deliverer.stop(grace=grace)
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
            self._delivery = None
        app.bot_data.services = None
        self._services = None
        if self.options.handle_signals:
            self.graceful.uninstall()
        await services.http.close()
        await storage.close_database(services.db)
        log.info("bot stopped", extra={"event": "stopped"})


async def _poll_job(context: Context) -> None:
    """The JobQueue's watcher tick (tracked: a stop may cut a slow poll short)."""
    with context.bot_data.runtime.inflight.tracking():
        await context.bot_data.services.watcher.poll()


async def _prune_job(context: Context) -> None:
    """Daily housekeeping: forget alerts delivered long ago, so the database stays small."""
    services = context.bot_data.services
    removed = await storage.prune_delivered(services.db, services.clock.now() - KEEP_DELIVERED)
    log.info("pruned %d old outbox rows", removed, extra={"event": "outbox_pruned"})


async def sync_subscriptions(db: aiosqlite.Connection, settings: Settings, now: datetime) -> None:
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


def build_application(
    settings: Settings,
    *,
    clock: Clock | None = None,
    options: RuntimeOptions | None = None,
) -> App:
    """Construct the Telegram application with its handlers; resources open in the start hook."""
    clock = clock or SystemClock()
    runtime = Runtime(settings, clock, options or RuntimeOptions())
    api = str(settings.telegram_api_url).rstrip("/")
    context_types = ContextTypes(context=Context, bot_data=BotData)
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .context_types(context_types)
        .job_queue(JobQueue[Context]())
        # Concurrent: a slow /get never holds up another chat's /tasks; tracked: a stop can
        # cut a handler short instead of waiting for it.
        .concurrent_updates(TrackedUpdateProcessor(64, runtime.inflight))
        .rate_limiter(TelegramRateLimiter(clock))
        .connect_timeout(10)
        .read_timeout(30)
        .write_timeout(30)
        .pool_timeout(10)
        .media_write_timeout(300)
        .get_updates_read_timeout(30)
        .post_init(runtime.start)
        .post_shutdown(runtime.stop)
    )
    if settings.webhook_url is not None:
        builder = builder.updater(None)  # updates arrive through our web server
    app: App = builder.build()
    app.bot_data.runtime = runtime
    handlers.register(app)
    return app


async def start_application(app: App) -> None:
    """Initialise PTB, open our resources, start processing updates (no updater)."""
    await app.initialize()
    try:
        await app.bot_data.runtime.start(app)
        await app.start()
    except BaseException:
        await app.bot_data.runtime.stop(app)
        await app.shutdown()
        raise


async def stop_application(app: App) -> None:
    """Stop processing, close our resources, shut PTB down; the reverse of start_application."""
    try:
        if app.running:
            await app.stop()
    finally:
        try:
            await app.bot_data.runtime.stop(app)
        finally:
            await app.shutdown()
