"""How updates reach the application: long polling (default) or a webhook.

Polling is PTB's own `run_polling`. The webhook is PTB's custom-webhook pattern: the
application runs without an updater, our aiohttp server (which also serves health and
metrics) feeds it the updates, and the lifecycle, which PTB's hooks do not cover here, goes
through `start_application`/`stop_application` so resources open and close exactly once.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Update

from bot.app import RuntimeOptions, build_application, start_application, stop_application
from bot.context import App
from bot.settings import Settings
from bot.shutdown import STOP_SIGNALS

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER]


def run_polling(settings: Settings) -> None:
    """Long polling in the foreground until SIGTERM/SIGINT (deletes any webhook first)."""
    app = build_application(settings, options=RuntimeOptions(handle_signals=True))
    app.run_polling(
        allowed_updates=ALLOWED_UPDATES,
        # PTB's handlers cover start-up; the start hook replaces them with ours (a bounded
        # graceful stop, bot.shutdown) once there is something to stop gracefully.
        stop_signals=STOP_SIGNALS,
        drop_pending_updates=False,
    )


async def run_webhook(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve the webhook until SIGTERM/SIGINT (or `stop` is set)."""
    stop = stop or asyncio.Event()
    app: App = build_application(settings)
    runtime = app.bot_data.runtime
    runtime.graceful.install(then=lambda: runtime.request_stop(stop.set))
    try:
        await start_application(app)
        try:
            await set_webhook(app, settings)
            log.info("webhook mode: waiting for updates", extra={"event": "webhook_ready"})
            await stop.wait()
        finally:
            await stop_application(app)
    finally:
        runtime.graceful.uninstall()


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
