"""How updates reach the application: long polling (default) or a webhook.

Both run the same way (`serve`): start the application, begin receiving updates, wait for a
stop signal, then stop everything within the lifecycle's one deadline (`bot.runtime.lifecycle`).
Polling is PTB's updater, driven by us rather than by `run_polling`, whose stop waits for
the updater's network back-off (up to 30 s after the Bot API refused connections). The
webhook is PTB's custom-webhook pattern: no updater, our aiohttp server (which also serves
health and metrics) feeds the application the updates Telegram posts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from telegram import Update

from bot.context import App
from bot.runtime.app import build_application, start_application, stop_application
from bot.settings import Settings

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER]
GET_UPDATES_TIMEOUT = 10  # seconds a long poll waits for updates (PTB's run_polling default)
UPDATER_STOP = 1.0  # seconds: a long poll stops at once; a back-off sleep is cancelled after this

Step = Callable[[App], Awaitable[None]]


def run_polling(settings: Settings) -> None:
    """Long polling in the foreground until SIGTERM/SIGINT (deletes any webhook first)."""

    async def main() -> None:
        app = build_application(settings)
        if settings.is_postgres:
            # Replicas: only the leader may call getUpdates (Telegram answers the others 409).
            async def poll_updates(duties: contextlib.AsyncExitStack) -> None:
                duties.push_async_callback(stop_polling, app)
                await start_polling(app)

            app.bot_data.runtime.leader_duties.append(poll_updates)
            await serve(app, begin=_standing_by)
            return
        await serve(app, begin=start_polling, end=stop_polling)

    asyncio.run(main())


async def run_webhook(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve the webhook until SIGTERM/SIGINT (or `stop` is set)."""

    async def begin(app: App) -> None:
        await set_webhook(app, settings)
        log.info("webhook mode: waiting for updates", extra={"event": "webhook_ready"})

    await serve(build_application(settings), begin=begin, stop=stop)


async def serve(
    app: App, *, begin: Step, end: Step | None = None, stop: asyncio.Event | None = None
) -> None:
    """Start `app`, `begin` receiving updates, run until a stop signal (or `stop`), stop it.

    A signal during start-up cancels the start-up; what it opened closes in reverse.
    """
    lifecycle = app.bot_data.runtime.lifecycle
    with lifecycle.handling_signals():
        async with contextlib.AsyncExitStack() as stack:

            async def start_up() -> None:
                await start_application(app)
                stack.push_async_callback(stop_application, app)
                if end is not None:
                    stack.push_async_callback(end, app)  # also undoes a half-done `begin`
                await begin(app)

            if await lifecycle.start_up(start_up()):
                await lifecycle.wait_for_stop(also=stop)


async def _standing_by(app: App) -> None:
    """Polling on PostgreSQL: getUpdates starts when this replica becomes the leader."""
    del app


async def start_polling(app: App) -> None:
    """Begin long polling (PTB's updater)."""
    if app.updater is None:
        raise RuntimeError("polling needs the application's updater")
    await app.updater.start_polling(
        timeout=GET_UPDATES_TIMEOUT,
        allowed_updates=ALLOWED_UPDATES,
        drop_pending_updates=False,
    )


async def stop_polling(app: App) -> None:
    """Stop long polling, bounded: PTB's back-off sleep between failed polls ignores a stop."""
    if app.updater is None or not app.updater.running:
        return
    lifecycle = app.bot_data.runtime.lifecycle
    await lifecycle.bounded(app.updater.stop(), within=UPDATER_STOP, what="the updater")


async def set_webhook(app: App, settings: Settings) -> None:
    """Point Telegram at our webhook URL with the secret it must echo."""
    if settings.webhook_url is None or settings.webhook_secret is None:
        raise ValueError("webhook mode needs WEBHOOK_URL and WEBHOOK_SECRET")
    await app.bot.set_webhook(
        url=str(settings.webhook_url),
        secret_token=settings.webhook_secret.get_secret_value(),
        allowed_updates=ALLOWED_UPDATES,
        drop_pending_updates=False,
    )
