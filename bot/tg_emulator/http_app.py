"""The HTTP side: the aiohttp app and its routes, start/stop, and one request's way through.

A request is routed (token, method), decoded against api.json, checked against injected faults,
chat state and flood limits, then handed to the method's handler; every call is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from types import TracebackType
from typing import Any, Self

import aiohttp
from aiohttp import web

from .calls import CallsMixin
from .failures import ApiFailure
from .faults import FaultsMixin
from .records import Call, JSONDict
from .request_params import read_params
from .spec import ApiError, MethodSpec, UploadedFile
from .webhook import WebhookMixin

__all__ = ["HttpMixin"]

_LOGGER = logging.getLogger(__name__)
_TOKEN_RE = re.compile(r"\d+:[A-Za-z0-9_-]+")


class HttpMixin(FaultsMixin, CallsMixin, WebhookMixin):
    """Serves the Bot API on host:port; `TelegramEmulator` supplies the method handlers."""

    async def start(self) -> None:
        """Serve on host:port (port 0: a free one)."""
        if self._runner is not None:
            raise RuntimeError("already started")
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        addresses = runner.addresses
        self.port = addresses[0][1] if addresses else self.port  # a restart keeps the port
        self._url = f"http://{self.host}:{self.port}"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._webhook_task = asyncio.create_task(self._webhook_worker(), name="tg-emu-webhook")

    async def stop(self) -> None:
        """Release long polls and held requests at once, then shut the server down."""
        self._stopping.set()
        self._notify()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        path = request.match_info["path"]
        for stored in self._files.values():
            if stored.file_path == path:
                return web.Response(body=stored.content, content_type=stored.mime_type)
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        started = self.clock.monotonic()
        token = request.match_info["token"]
        method_spec = self.spec.method(request.match_info["method"])
        method = method_spec.name if method_spec else request.match_info["method"]
        params: JSONDict = {}
        files: dict[str, UploadedFile] = {}
        ignored: JSONDict = {}
        try:
            method_spec = self._route(token, method_spec)
            raw, files = await read_params(request, self.max_upload_bytes)
            params, files, ignored = self.spec.decode_params(method_spec, raw, files)
            failure = self._take_failure(method, params)
            if failure is not None and failure.hang:
                self._record(Call(method, params, files, 0, {}, started, ignored))
                waiters = [
                    asyncio.ensure_future(self._stopping.wait()),
                    asyncio.ensure_future(self._release.wait()),
                ]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                return web.json_response(ApiFailure.server_error(503).error().body(), status=503)
            self._check_chat_state(method, params, failure)
            self._check_flood(method, params)
            handler = self._handlers.get(method, self._true)
            result = await handler(params, files)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as exc:
            status, body = exc.status, exc.body()
        except Exception:  # an emulator bug: answer 500 and keep a trace, like a real outage
            _LOGGER.exception("the Bot API emulator failed on %s", method)
            status, body = 500, ApiFailure.server_error(500).error().body()
        self._record(Call(method, params, files, status, body, started, ignored))
        return web.json_response(body, status=status)

    async def _true(self, params: JSONDict, files: dict[str, UploadedFile]) -> Any:
        """The answer to a method the emulator accepts without modelling it."""
        return True

    def _route(self, token: str, method_spec: MethodSpec | None) -> MethodSpec:
        """401 for a well-formed wrong token, 404 for a malformed one or an unknown method."""
        if token != self.token:
            if _TOKEN_RE.fullmatch(token):
                raise ApiError(401, "Unauthorized")
            raise ApiError(404, "Not Found")
        if method_spec is None:
            raise ApiError(404, "Not Found")
        return method_spec
