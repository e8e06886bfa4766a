"""The aiohttp app serving SMSC's `/sys/downloads.php` from a `SimulatorState`.

Checks run in this order, each answering with SMSC's error in the request's `fmt`:
injected fault, IP block (4), credentials (2), too many concurrent requests (9), neither
get_list nor get_file (1), identical request (9), bad parameters (1), missing or unfinished
task (5). SMSC answers its numbered errors with HTTP 200, and so do we.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import quote

from aiohttp import web

from bot.smsc.models import TaskStatus
from bot.smsc.simulator.csvgen import iter_csv
from bot.smsc.simulator.render import (
    CONCURRENT_DESCRIPTION,
    CONTENT_TYPES,
    GARBAGE_BODY,
    HTML_500_PAGE,
    HTML_LOGIN_PAGE,
    render_error,
    render_list,
)
from bot.smsc.simulator.state import CONCURRENT_LIMIT, Fault, SimTask, SimulatorState

PATH = "/sys/downloads.php"
STATE_KEY = web.AppKey("smsc_simulator_state", SimulatorState)
_DOWNLOADS_KEY: web.AppKey[set[asyncio.Transport]] = web.AppKey("smsc_simulator_downloads")
DEFAULT_CNT = 100
STREAM_CHUNK = 256 * 1024
# How often a parked "slow" request checks whether its client hung up. This watches the
# socket, which lives in real time whatever the injected clock says.
DISCONNECT_POLL_SECONDS = 0.02

_CHARSETS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "windows-1251": "windows-1251",
    "cp1251": "windows-1251",
    "koi8-r": "koi8-r",
}


def create_app(state: SimulatorState) -> web.Application:
    """Build the web app answering SMSC's deferred-tasks API from `state`."""
    app = web.Application()
    app[STATE_KEY] = state
    downloads: set[asyncio.Transport] = set()
    app[_DOWNLOADS_KEY] = downloads
    app.router.add_route("GET", PATH, _handle)
    app.router.add_route("POST", PATH, _handle)

    async def release(_: web.Application) -> None:
        # Runs before the runner waits for handlers, so neither a parked request nor a download
        # whose client stopped reading (but kept the socket open) stalls shutdown.
        state.release_parked()
        for transport in list(downloads):
            transport.abort()

    app.on_shutdown.append(release)
    return app


def _fmt(params: dict[str, str]) -> int:
    try:
        fmt = int(params.get("fmt", "0"))
    except ValueError:
        return 0
    return fmt if fmt in (0, 1, 2, 3) else 0


def _charset(params: dict[str, str]) -> str:
    # SMSC's default is windows-1251, but a simulator poked at with curl reads better in UTF-8.
    return _CHARSETS.get(params.get("charset", "utf-8").strip().lower(), "utf-8")


def _flag(params: dict[str, str], name: str) -> bool:
    return params.get(name, "") not in ("", "0")


def _account(params: dict[str, str]) -> str:
    if params.get("login"):
        return params["login"]
    if params.get("apikey"):
        return "apikey:" + params["apikey"]
    return ""


def _text(body: str, fmt: int, charset: str) -> web.Response:
    return web.Response(
        body=body.encode(charset, errors="replace"),
        content_type=CONTENT_TYPES[fmt],
        charset=charset,
    )


def _http_charset(encoding: str) -> str:
    name = encoding.lower().replace("_", "-")
    return "windows-1251" if name in ("cp1251", "windows-1251") else name


def _content_disposition(filename: str) -> str:
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def _read_form(request: web.Request) -> dict[str, str]:
    if not request.body_exists:
        return {}
    post = await request.post()
    return {k: v for k, v in post.items() if isinstance(v, str)}


async def _handle(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    query = dict(request.query)
    form = await _read_form(request)
    params = {**query, **form}
    index = state.record_arrival(request.method, query, form, params)
    state.tick()
    fault = state.take_fault()
    account = _account(params)
    crowded = state.enter_flight(account) >= CONCURRENT_LIMIT
    error: int | None = None
    try:
        if fault is not None and fault.kind == "slow":
            if not await _park(state, request, fault.seconds):
                return _hang_up(request)
            state.tick()
        elif fault is not None:
            resp, error = _fault_answer(request, fault, params)
            return resp
        resp, error = await _serve(request, state, params, crowded=crowded)
        return resp
    finally:
        state.leave_flight(account)
        state.record_answer(index, error)


def _hang_up(request: web.Request) -> web.Response:
    transport = request.transport
    if transport is not None:
        transport.close()
    # aiohttp fails to write this to the closed transport and drops it quietly.
    return web.Response()


def _fault_answer(
    request: web.Request, fault: Fault, params: dict[str, str]
) -> tuple[web.StreamResponse, int | None]:
    if fault.kind == "http_500":
        return web.Response(status=500, text=HTML_500_PAGE, content_type="text/html"), None
    if fault.kind == "garbage":
        return web.Response(body=GARBAGE_BODY, content_type="text/plain"), None
    if fault.kind == "html":
        return web.Response(text=HTML_LOGIN_PAGE, content_type="text/html"), None
    if fault.kind == "disconnect":
        return _hang_up(request), None
    fmt = fault.fmt if fault.fmt is not None else _fmt(params)
    return _text(render_error(fault.code, fmt), fmt, _charset(params)), fault.code


async def _park(state: SimulatorState, request: web.Request, seconds: float) -> bool:
    """Wait `seconds` on the state's clock; return False if the client hung up meanwhile."""
    sleeper = asyncio.ensure_future(state.clock.sleep(seconds))
    state.park(sleeper)
    watcher = asyncio.ensure_future(_client_gone(request))
    try:
        await asyncio.wait({sleeper, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        watcher.cancel()
        # Let both finish so no task outlives the request (nothing pending at loop close).
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({sleeper, watcher})
    # The watcher only ends on its own when the client has gone; otherwise we cancelled it.
    return watcher.cancelled()


async def _client_gone(request: web.Request) -> None:
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(DISCONNECT_POLL_SECONDS)


async def _serve(
    request: web.Request, state: SimulatorState, params: dict[str, str], *, crowded: bool
) -> tuple[web.StreamResponse, int | None]:
    fmt = _fmt(params)
    charset = _charset(params)

    def fail(code: int, description: str | None = None) -> tuple[web.StreamResponse, int]:
        return _text(render_error(code, fmt, description), fmt, charset), code

    ip = request.remote or ""
    if state.is_blocked(ip):
        return fail(4)
    if not state.authenticate(params, ip):
        return fail(2)
    if crowded:
        return fail(9, CONCURRENT_DESCRIPTION)
    wants_list = _flag(params, "get_list")
    if not wants_list and not _flag(params, "get_file"):
        return fail(1)
    if not state.admit_identical(params):
        return fail(9)

    if wants_list:
        try:
            cnt = int(params.get("cnt", str(DEFAULT_CNT)))
            after_id = int(params["after_id"]) if params.get("after_id", "") != "" else None
        except ValueError:
            return fail(1)
        if cnt < 1:
            return fail(1)
        return _text(
            render_list(
                _page(state, cnt, after_id),
                fmt,
                state.status_as,
                state.raw_items if after_id is None else (),
            ),
            fmt,
            charset,
        ), None

    raw_id, name = params.get("id", ""), params.get("name", "")
    if not raw_id and not name:
        return fail(1)
    try:
        task = _find_task(state, raw_id, name)
    except ValueError:
        return fail(1)
    if task is None or task.status != TaskStatus.COMPLETED:
        return fail(5)
    return await _stream(request, task), None


def _page(state: SimulatorState, cnt: int, after_id: int | None) -> list[SimTask]:
    newest = state.order == "newest"
    tasks = sorted(state.tasks.values(), key=lambda t: t.id, reverse=newest)
    if after_id is not None:
        # For an existing id "the tasks that follow it" in list order is exactly this filter.
        tasks = [t for t in tasks if (t.id < after_id if newest else t.id > after_id)]
    return tasks[:cnt]


def _find_task(state: SimulatorState, raw_id: str, name: str) -> SimTask | None:
    """Look a task up by id (which wins when both are given) or by file name."""
    if raw_id:
        return state.tasks.get(int(raw_id))
    return next((t for _, t in sorted(state.tasks.items()) if t.file == name), None)


async def _stream(request: web.Request, task: SimTask) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.content_type = "text/csv"
    resp.charset = _http_charset(task.encoding)
    resp.headers["Content-Disposition"] = _content_disposition(task.file)
    if task.content is not None:
        resp.content_length = len(task.content)
    else:
        # Generated files are never materialised, so their length is not known up front.
        resp.enable_chunked_encoding()
    downloads = request.app[_DOWNLOADS_KEY]
    transport = request.transport
    if transport is not None:
        downloads.add(transport)
    try:
        await resp.prepare(request)
        for chunk in iter_csv(task, STREAM_CHUNK):
            await resp.write(chunk)
        await resp.write_eof()
    except ConnectionError:
        pass  # the client went away (or shutdown cut it off); nothing of ours to clean up
    finally:
        if transport is not None:
            downloads.discard(transport)
    return resp
