"""Build PTB's application for the bot, and start and stop it together with its `Runtime`.

`build_application(settings)` constructs everything lazily: the Telegram application with its
defaults, timeouts, update processing and handlers, and the `Runtime`
(`bot.runtime.resources`) that opens the shared resources at start. `start_application` /
`stop_application` drive PTB's application and our runtime together (both transports and the
tests use them); `bot.runtime.lifecycle` owns the stop's deadline.
"""

from __future__ import annotations

import contextlib
import os

from telegram.constants import ParseMode
from telegram.ext import ApplicationBuilder, ContextTypes, Defaults, JobQueue

import handlers
from bot.clock import Clock, SystemClock
from bot.context import App, BotData, Context
from bot.runtime.lifecycle import TrackedUpdateProcessor
from bot.runtime.resources import Runtime, RuntimeOptions
from bot.settings import Settings
from bot.telegram.pacing import TelegramRateLimiter
from bot.telegram.updates import UpdateIntake

__all__ = ["RuntimeOptions", "build_application", "start_application", "stop_application"]


def build_application(
    settings: Settings,
    *,
    clock: Clock | None = None,
    options: RuntimeOptions | None = None,
) -> App:
    """Construct the Telegram application with its handlers; resources open at start."""
    clock = clock or SystemClock()
    options = options or RuntimeOptions.from_environment(os.environ)
    runtime = Runtime(settings, clock, options)
    api = str(settings.telegram_api_url).rstrip("/")
    context_types = ContextTypes(context=Context, bot_data=BotData)
    # Lenient update decoding, getUpdates backoff, loop health.
    intake = UpdateIntake(backoff=options.get_updates_backoff)
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .context_types(context_types)
        # Every text we send is HTML we escaped (bot/texts/markup.py), and a reply is never a quote:
        # said once here, not at each call site. A plain text passes parse_mode=None itself.
        .defaults(Defaults(parse_mode=ParseMode.HTML, do_quote=False))
        .job_queue(JobQueue[Context]())
        # Concurrent: a slow /get never holds up another chat's /tasks; tracked: a stop can
        # cut a handler short instead of waiting for it.
        .concurrent_updates(TrackedUpdateProcessor(64, runtime.lifecycle.inflight))
        .rate_limiter(TelegramRateLimiter(clock))
        .connect_timeout(10)
        .read_timeout(30)
        .write_timeout(30)
        .pool_timeout(10)
        .media_write_timeout(300)
        .get_updates_request(intake.request(connection_pool_size=1, read_timeout=30))
        .update_queue(intake.queue)
    )
    if settings.webhook_url is not None:
        builder = builder.updater(None)  # updates arrive through our web server
    app: App = builder.build()
    app.bot_data.runtime = runtime
    app.bot_data.updates = intake
    handlers.register(app)
    return app


async def start_application(app: App) -> None:
    """Initialise PTB, open our resources, start processing updates (no updater)."""
    runtime = app.bot_data.runtime
    async with contextlib.AsyncExitStack() as stack:
        await app.initialize()
        stack.push_async_callback(app.shutdown)
        await runtime.start(app)
        stack.push_async_callback(runtime.stop, app)
        await app.start()
        stack.pop_all()


async def stop_application(app: App) -> None:
    """Stop processing, close our resources, shut PTB down; the reverse of start_application.

    The stop's deadline runs from the signal, or from here when nothing signalled.
    """
    runtime = app.bot_data.runtime
    runtime.lifecycle.request_stop("application stop")
    try:
        if app.running:
            await app.stop()  # waits for handlers in flight: the lifecycle cuts them off
    finally:
        try:
            await runtime.stop(app)
        finally:
            await app.shutdown()
            runtime.lifecycle.stopped()
