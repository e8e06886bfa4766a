"""The bot's one HTTP server: health, readiness, metrics, and (in webhook mode) the webhook.

python-telegram-bot's custom-webhook pattern: the application runs without its own updater
and this server feeds it the updates Telegram posts, so one port serves everything.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

import storage
from bot.context import App
from bot.metrics import CONTENT_TYPE
from bot.telegram.updates import UpdateIntake
from storage import health as db_health

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
MAX_UPDATE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class WebhookRoute:
    """Where Telegram posts updates, and the secret it must present."""

    path: str
    secret: str


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BOT_APP: web.AppKey[App] = web.AppKey("bot_app")
WEBHOOK = web.AppKey("webhook", WebhookRoute)


def _bot_app(request: web.Request) -> App:
    return request.app[BOT_APP]


async def healthz(request: web.Request) -> web.Response:
    """200 while the application runs and the database answers and takes writes; else 503, why."""
    app = _bot_app(request)
    if not app.running or not app.bot_data.running:
        return web.Response(status=503, text="application not running\n")
    problem = update_loop_problem(app)
    if problem is not None:
        return web.Response(status=503, text=f"update loop: {problem}\n")
    try:
        await asyncio.wait_for(storage.ping(app.bot_data.services.db), timeout=3.0)
    except (storage.StorageError, TimeoutError) as err:
        return web.Response(status=503, text=f"database not answering: {err}\n")
    # A stat and a flag: the file still being the one opened, and the last write having worked.
    problem = db_health.database_problem(app.bot_data.services.db)
    if problem is not None:
        return web.Response(status=503, text=f"{problem}\n")
    return web.Response(text="ok\n")


def update_loop_problem(app: App) -> str | None:
    """Why updates no longer reach the handlers (dead or wedged loop), or None."""
    leadership = app.bot_data.services.leadership
    polling = leadership is None or leadership.leading  # only the leader calls getUpdates
    return app.bot_data.updates.problem(app, polling=polling)


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
    """Accept an update from Telegram, checking its secret token first.

    Anything authentic gets 200, even an update the library cannot parse (logged, counted):
    Telegram resends whatever is refused, over and over. Only a body that is no JSON object
    at all gets 400. Refusals are logged at most once a minute per reason.
    """
    route = request.app[WEBHOOK]
    app = _bot_app(request)
    intake = app.bot_data.updates
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), route.secret.encode()):
        # The body is not read, let alone logged: it is not from Telegram.
        _refused(intake, "forbidden", "wrong or missing secret token", request)
        return web.Response(status=403, text="forbidden\n")
    if not app.running:
        return web.Response(status=503, text="not running\n")  # Telegram retries later
    try:
        data = json.loads(await request.read())
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        _refused(intake, "not_json", "the body is not JSON", request)
        return web.Response(status=400, text="bad update: not JSON\n")
    if not isinstance(data, dict):
        _refused(intake, "not_object", "the body is JSON but not an object", request)
        return web.Response(status=400, text="bad update: not a JSON object\n")
    update = intake.decode(data, app.bot)
    if update is not None:
        await app.update_queue.put(update)
    return web.Response(text="ok\n")


def _refused(intake: UpdateIntake, reason: str, why: str, request: web.Request) -> None:
    intake.count_refusal(reason)
    intake.logs.warning(
        "webhook request refused: %s (from %s)",
        why,
        request.remote or "?",
        key="refused:" + reason,
        event="webhook_refused",
    )


def webhook_path_key(path: str) -> str:
    """The form two spellings of one URL path share (%-escapes decoded, any case)."""
    return unquote(path, errors="surrogateescape")


def _webhook_dispatch(route: WebhookRoute) -> Handler:
    """Route POSTs to the webhook by decoded path, so non-ASCII and %-escaped paths match.

    aiohttp's router would take `{` in a path for a variable and compares its own decoding
    of the request with the path as written; both sides are decoded the same way here.
    """
    expected = webhook_path_key(route.path)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        if webhook_path_key(request.raw_path.split("?", 1)[0]) != expected:
            raise web.HTTPNotFound
        return await webhook(request)

    return dispatch


def create_web_app(bot_app: App, route: WebhookRoute | None = None) -> web.Application:
    """The aiohttp application serving health, readiness, metrics and the webhook."""
    web_app = web.Application(client_max_size=MAX_UPDATE_BYTES)
    web_app[BOT_APP] = bot_app
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics)
    if route is not None:
        web_app[WEBHOOK] = route
        web_app.router.add_post("/{tail:.*}", _webhook_dispatch(route))
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
