"""The bot's one HTTP server: health, readiness, metrics, and (in webhook mode) the webhook.

python-telegram-bot's custom-webhook pattern: the application runs without its own updater
and this server feeds it the updates Telegram posts, so one port serves everything.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from dataclasses import dataclass

from aiohttp import web
from telegram import Update

import storage
from bot.context import App
from bot.metrics import CONTENT_TYPE
from storage import health as db_health

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_UPDATE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class WebhookRoute:
    """Where Telegram posts updates, and the secret it must present."""

    path: str
    secret: str


BOT_APP: web.AppKey[App] = web.AppKey("bot_app")
WEBHOOK = web.AppKey("webhook", WebhookRoute)


def _bot_app(request: web.Request) -> App:
    return request.app[BOT_APP]


async def healthz(request: web.Request) -> web.Response:
    """200 while the application runs and the database answers and takes writes; else 503, why."""
    app = _bot_app(request)
    if not app.running or not app.bot_data.running:
        return web.Response(status=503, text="application not running\n")
    try:
        await asyncio.wait_for(storage.ping(app.bot_data.services.db), timeout=3.0)
    except (storage.StorageError, TimeoutError) as err:
        return web.Response(status=503, text=f"database not answering: {err}\n")
    # A stat and a flag: the file still being the one opened, and the last write having worked.
    problem = db_health.database_problem(app.bot_data.services.db)
    if problem is not None:
        return web.Response(status=503, text=f"{problem}\n")
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    """200 once an SMSC poll has succeeded in this process; 503 saying why not otherwise."""
    app = _bot_app(request)
    if not app.bot_data.running:
        return web.Response(status=503, text="application not running\n")
    services = app.bot_data.services
    leadership = services.leadership
    if leadership is not None and not leadership.leading:
        # A replica standing by polls nothing, and serves commands: ready for the balancer.
        return web.Response(text=f"standby: ready to serve commands ({leadership.replica})\n")
    # Only this process's polls: a poll recorded in the database by an earlier process says
    # nothing about whether this one can reach SMSC (wrong password since, IP blocked, ...).
    if services.watcher.polls > 0:
        return web.Response(text="ready\n")
    error = services.smsc.stats.last_error
    reason = f"no successful SMSC poll yet; last error: {error}" if error else "no SMSC poll yet"
    return web.Response(status=503, text=reason + "\n")


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition."""
    app = _bot_app(request)
    if not app.bot_data.running:
        return web.Response(status=503, text="application not running\n")
    services = app.bot_data.services
    services.metrics.alerts_queued.set(await storage.count_pending(services.db))
    return web.Response(body=services.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


async def webhook(request: web.Request) -> web.Response:
    """Accept an update from Telegram, checking its secret token first."""
    route = request.app[WEBHOOK]
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), route.secret.encode()):
        # The body is not read, let alone logged: it is not from Telegram.
        log.warning(
            "webhook request refused: wrong or missing secret token",
            extra={"event": "webhook_forbidden", "remote": request.remote or "?"},
        )
        return web.Response(status=403, text="forbidden\n")
    app = _bot_app(request)
    if not app.running:
        return web.Response(status=503, text="not running\n")  # Telegram retries later
    try:
        data = json.loads(await request.read())
        update = Update.de_json(data, app.bot)
    except (ValueError, TypeError, KeyError) as err:
        log.warning(
            "webhook: not an update (%s)", type(err).__name__, extra={"event": "webhook_bad"}
        )
        return web.Response(status=400, text="bad update\n")
    await app.update_queue.put(update)
    return web.Response(text="ok\n")


def create_web_app(bot_app: App, route: WebhookRoute | None = None) -> web.Application:
    """The aiohttp application serving health, readiness, metrics and the webhook."""
    web_app = web.Application(client_max_size=MAX_UPDATE_BYTES)
    web_app[BOT_APP] = bot_app
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics)
    if route is not None:
        web_app[WEBHOOK] = route
        web_app.router.add_post(route.path, webhook)
    return web_app


class WebServer:
    """Runs the aiohttp application on a port for the bot's lifetime."""

    def __init__(self, web_app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(web_app, handle_signals=False, access_log=None)
        self._host = host
        self._port = port
        self.port: int | None = None

    async def start(self) -> None:
        """Bind and serve; `port` tells the real port (when 0 was asked)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self._port
        log.info("HTTP server on %s:%s", self._host, self.port, extra={"event": "http_started"})

    async def stop(self) -> None:
        """Stop serving."""
        await self._runner.cleanup()
