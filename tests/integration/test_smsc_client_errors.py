"""SmscClient's errors: every SMSC code in every format, transport faults, odd answers,
redirects, timeouts and refused connections.
"""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.clock import FakeClock
from bot.smsc.client import SmscClient
from bot.smsc.errors import (
    SmscBadResponseError,
    SmscConnectionError,
    SmscError,
    SmscHttpError,
    SmscIpBlockedError,
    SmscTimeoutError,
)
from bot.smsc.simulator import Fault
from tests.fakes.rig import serve
from tests.fakes.smsc_support import ERRORS, Sim, add_tasks, fake_smsc, make_client


@pytest.mark.parametrize("fmt", [0, 1, 2, 3])
@pytest.mark.parametrize("code", sorted(ERRORS))
async def test_every_error_in_every_format_on_a_list(
    client: SmscClient, sim: Sim, code: int, fmt: int
) -> None:
    sim.state.inject(Fault("error", code=code, fmt=fmt))

    with pytest.raises(ERRORS[code]) as info:
        await client.list_tasks()

    assert info.value.code == code
    assert client.stats.errors_by_code == {str(code): 1}
    assert client.stats.last_error is info.value
    if code in (2, 4, 9):
        assert info.value.retry_after is not None
        assert ("min" in str(info.value)) or (" s" in str(info.value))


@pytest.mark.parametrize("fmt", [0, 1, 2, 3])
@pytest.mark.parametrize("code", sorted(ERRORS))
async def test_every_error_in_every_format_on_a_file(
    client: SmscClient, sim: Sim, code: int, fmt: int, tmp_path: Any
) -> None:
    add_tasks(sim.state, 1)
    sim.state.inject(Fault("error", code=code, fmt=fmt))

    with pytest.raises(ERRORS[code]):
        await client.download(tmp_path, task_id=1)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        (Fault("garbage"), SmscBadResponseError, "could not understand"),
        (Fault("html"), SmscBadResponseError, "web page"),
        (Fault("http_500"), SmscHttpError, "HTTP 500"),
        (Fault("disconnect"), SmscConnectionError, "connect"),
    ],
)
async def test_transport_faults_on_a_list(
    client: SmscClient, sim: Sim, fault: Fault, error: type[SmscError], text: str
) -> None:
    sim.state.inject(fault)

    with pytest.raises(error, match=text) as info:
        await client.list_tasks()

    assert info.value.__cause__ is not None or isinstance(
        info.value, SmscHttpError | SmscBadResponseError
    )


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault("garbage"), SmscBadResponseError),
        (Fault("html"), SmscBadResponseError),
        (Fault("http_500"), SmscHttpError),
        (Fault("disconnect"), SmscConnectionError),
    ],
)
async def test_transport_faults_on_a_file(
    client: SmscClient, sim: Sim, fault: Fault, error: type[SmscError], tmp_path: Any
) -> None:
    add_tasks(sim.state, 1)
    sim.state.inject(fault)

    with pytest.raises(error):
        await client.download(tmp_path, task_id=1)

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b'[{"id": 1, "name": "cut', 200, SmscBadResponseError),
        (b'{"balance": "12.50"}', 200, SmscBadResponseError),
        (b"", 200, SmscBadResponseError),
        (b"ERROR = 4 (IP is temporarily blocked)", 403, SmscIpBlockedError),
        (b"<html>Bad gateway</html>", 502, SmscHttpError),
    ],
)
async def test_odd_list_answers(
    session: aiohttp.ClientSession, clock: FakeClock, body: bytes, status: int, error: type
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, status=status, content_type="application/json")

    async with serve(fake_smsc(answer)) as url:
        with pytest.raises(error):
            await make_client(session, url, clock).list_tasks()


async def test_redirects_are_not_followed(session: aiohttp.ClientSession, clock: FakeClock) -> None:
    followed = 0

    async def redirect(request: web.Request) -> web.Response:
        nonlocal followed
        if request.path == "/elsewhere":
            followed += 1
            return web.json_response([])
        raise web.HTTPTemporaryRedirect("/elsewhere")

    app = fake_smsc(redirect)
    app.router.add_route("*", "/elsewhere", redirect)
    async with serve(app) as url:
        with pytest.raises(SmscHttpError, match="307"):
            await make_client(session, url, clock).list_tasks()

    assert followed == 0


async def test_list_timeout(session: aiohttp.ClientSession, sim: Sim, clock: FakeClock) -> None:
    client = make_client(session, sim.url, clock, request_timeout=0.2)
    sim.state.inject(Fault("slow", seconds=30))

    with pytest.raises(SmscTimeoutError, match="in time") as info:
        await client.list_tasks()

    assert isinstance(info.value.__cause__, TimeoutError)
    assert client.stats.errors_by_code == {"timeout": 1}


async def test_connection_refused(session: aiohttp.ClientSession, clock: FakeClock) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(session, f"http://127.0.0.1:{port}", clock)

    with pytest.raises(SmscConnectionError, match="connect") as info:
        await client.list_tasks()

    assert isinstance(info.value.__cause__, aiohttp.ClientConnectionError)
