"""SmscClient over real HTTP on loopback, against the SMSC simulator (and a few tiny fakes)."""

from __future__ import annotations

import asyncio
import logging
import socket
import traceback
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.clock import FakeClock
from bot.smsc.client import SmscClient, SmscClientConfig, SmscCredentials
from bot.smsc.errors import (
    SmscApiError,
    SmscAuthError,
    SmscBadResponseError,
    SmscConnectionError,
    SmscError,
    SmscHttpError,
    SmscIpBlockedError,
    SmscNotFoundError,
    SmscParameterError,
    SmscRateLimitedError,
    SmscTimeoutError,
    SmscUnknownApiError,
)
from bot.smsc.models import TaskStatus
from bot.smsc.observer import SmscEvent, SmscRequest
from bot.smsc.simulator import Fault, SimTask
from tests.fakes.rig import serve
from tests.fakes.smsc_support import (
    APIKEY,
    LOGIN,
    PASSWORD,
    WRONG_PASSWORD,
    Sim,
    add_tasks,
    fake_smsc,
    make_client,
)

ERRORS: dict[int, type[SmscApiError]] = {
    1: SmscParameterError,
    2: SmscAuthError,
    4: SmscIpBlockedError,
    5: SmscNotFoundError,
    9: SmscRateLimitedError,
    7: SmscUnknownApiError,
}


# -- requests and credentials -------------------------------------------------------------------


async def test_list_is_a_post_with_credentials_only_in_the_body(
    client: SmscClient, sim: Sim
) -> None:
    add_tasks(sim.state, 3)

    await client.list_tasks()

    (rec,) = sim.state.requests
    assert rec.method == "POST"
    assert rec.query == {}
    assert rec.form == {
        "login": LOGIN,
        "psw": PASSWORD,
        "fmt": "3",
        "charset": "utf-8",
        "get_list": "1",
        "cnt": "200",
    }


async def test_api_key_replaces_login_and_password(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 1)
    client = make_client(session, sim.url, clock, credentials=SmscCredentials(apikey=APIKEY))

    await client.list_tasks()

    (rec,) = sim.state.requests
    assert rec.query == {}
    assert rec.form["apikey"] == APIKEY
    assert "login" not in rec.form
    assert "psw" not in rec.form


def test_config_strips_the_trailing_slash() -> None:
    assert SmscClientConfig().url == "https://smscentre.com/sys/downloads.php"
    assert SmscClientConfig(base_url="http://x:1/").url == "http://x:1/sys/downloads.php"


@pytest.mark.parametrize(
    "config",
    [{"identical_limit": 4}, {"identical_limit": 0}, {"max_concurrency": 15}, {"page_size": 0}],
)
def test_config_refuses_numbers_smsc_would_punish(config: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        SmscClientConfig(**config)


def test_credentials_never_show_their_secrets() -> None:
    creds = SmscCredentials(login=LOGIN, password=PASSWORD)
    keyed = SmscCredentials(apikey=APIKEY)

    for text in (repr(creds), str(creds), f"{creds}", repr(keyed), repr([creds, keyed])):
        assert PASSWORD not in text
        assert APIKEY not in text
    assert LOGIN in repr(creds)
    assert creds.form() == {"login": LOGIN, "psw": PASSWORD}
    assert keyed.form() == {"apikey": APIKEY}
    with pytest.raises(ValueError, match="API key"):
        SmscCredentials(login=LOGIN)


async def test_secrets_stay_out_of_logs_errors_and_urls(
    session: aiohttp.ClientSession,
    sim: Sim,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    add_tasks(sim.state, 2)
    good = make_client(session, sim.url, clock, request_timeout=0.3)
    wrong = make_client(
        session, sim.url, clock, credentials=SmscCredentials(login=LOGIN, password=WRONG_PASSWORD)
    )
    keyed = make_client(
        session, sim.url, clock, credentials=SmscCredentials(apikey="bad-" + APIKEY)
    )
    failures: list[BaseException] = []

    await good.list_tasks()
    for fault in (Fault("http_500"), Fault("garbage"), Fault("html"), Fault("slow", seconds=99)):
        sim.state.inject(fault)
        with pytest.raises(SmscError) as info:
            await good.list_page(cnt=int(fault.seconds) + len(failures) + 1)
        failures.append(info.value)
    for bad in (wrong, keyed):
        for _ in range(2):
            with pytest.raises(SmscAuthError) as info:
                await bad.list_tasks()
            failures.append(info.value)
    with pytest.raises(SmscConnectionError) as info:
        await make_client(session, "http://127.0.0.1:1", clock).list_tasks()
    failures.append(info.value)

    secrets = (PASSWORD, WRONG_PASSWORD, APIKEY)
    texts = [caplog.text, *(r.getMessage() for r in caplog.records)]
    texts += ["".join(traceback.format_exception(err)) for err in failures]
    texts += [repr(good), repr(wrong), repr(keyed), str(good.stats), str(wrong.stats)]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert all(rec.query == {} for rec in sim.state.requests)


# -- lists ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("page_size", [1, 2, 3, 7, 8, 50])
async def test_paging_collects_every_task_newest_first(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock, order: str, page_size: int
) -> None:
    sim.state.order = "newest" if order == "newest" else "oldest"
    add_tasks(sim.state, 7)
    client = make_client(session, sim.url, clock, page_size=page_size)

    tasks = await client.list_tasks()

    assert [t.id for t in tasks] == [7, 6, 5, 4, 3, 2, 1]
    sent = [rec.form for rec in sim.state.requests]
    assert all(form["cnt"] == str(page_size) for form in sent)
    assert "after_id" not in sent[0]
    # after_id is the last id of the previous page in SMSC's own order.
    in_smsc_order = [7, 6, 5, 4, 3, 2, 1] if order == "newest" else [1, 2, 3, 4, 5, 6, 7]
    expected_after = in_smsc_order[page_size - 1 :: page_size]
    assert [int(form["after_id"]) for form in sent[1:]] == expected_after[: len(sent) - 1]
    # A short page ends the list; a full last page costs one more (empty) request.
    assert len(sent) == 7 // page_size + 1


async def test_list_page_is_one_raw_page_in_smsc_order(client: SmscClient, sim: Sim) -> None:
    sim.state.order = "oldest"
    add_tasks(sim.state, 5)

    page = await client.list_page(cnt=2, after_id=1)
    everything = await client.list_page()

    assert [t.id for t in page] == [2, 3]
    assert [t.id for t in everything] == [1, 2, 3, 4, 5]
    assert sim.state.requests[0].form["after_id"] == "1"
    assert "cnt" not in sim.state.requests[1].form


async def test_status_sent_as_text(client: SmscClient, sim: Sim) -> None:
    sim.state.status_as = "string"
    sim.state.add_task(SimTask(1, "a", TaskStatus.RUNNING))
    sim.state.add_task(SimTask(2, "b", TaskStatus.FAILED))

    tasks = await client.list_tasks()

    assert [(t.id, t.status) for t in tasks] == [(2, TaskStatus.FAILED), (1, TaskStatus.RUNNING)]
    assert tasks[0].created is not None
    assert tasks[0].created.utcoffset() is not None


async def test_invalidate_cache_refreshes_but_keeps_the_stale_fallback(
    client: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    add_tasks(sim.state, 2)
    await client.list_tasks()
    sim.state.add_task(SimTask(3, "new", TaskStatus.PENDING))

    client.invalidate_cache()
    refreshed = await client.list_tasks()
    client.invalidate_cache()
    sim.state.add_task(SimTask(4, "newer", TaskStatus.PENDING))
    stale = await client.list_tasks()  # a third request would fill the window: cache instead

    assert [t.id for t in refreshed] == [3, 2, 1]
    assert [t.id for t in stale] == [3, 2, 1]
    assert len(sim.state.requests) == 2
    assert client.stats.stale_hits == 1


async def test_list_is_cached_briefly(client: SmscClient, sim: Sim, clock: FakeClock) -> None:
    add_tasks(sim.state, 2)

    await client.list_tasks()
    clock.advance(14)
    sim.state.add_task(SimTask(3, "new", TaskStatus.PENDING))
    cached = await client.list_tasks()
    clock.advance(1)
    fresh = await client.list_tasks()

    assert [t.id for t in cached] == [2, 1]
    assert [t.id for t in fresh] == [3, 2, 1]
    assert len(sim.state.requests) == 2
    assert client.stats.cache_hits == 1


async def test_fifty_concurrent_lists_cost_one_request(client: SmscClient, sim: Sim) -> None:
    add_tasks(sim.state, 5)

    results = await asyncio.gather(*(client.list_tasks() for _ in range(50)))

    assert len(sim.state.requests) == 1
    assert all([t.id for t in r] == [5, 4, 3, 2, 1] for r in results)
    assert client.stats.upstream_requests == 1
    assert client.stats.coalesced == 49


async def test_paging_stops_at_max_pages(
    session: aiohttp.ClientSession, sim: Sim, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    add_tasks(sim.state, 10)
    client = make_client(session, sim.url, clock, page_size=2, max_pages=3)

    with caplog.at_level(logging.WARNING, logger="bot.smsc.client"):
        tasks = await client.list_tasks()

    assert [t.id for t in tasks] == [10, 9, 8, 7, 6, 5]
    assert len(sim.state.requests) == 3
    assert "after 3 pages" in caplog.text


async def test_paging_stops_when_smsc_ignores_after_id(
    session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    page = [{"id": i, "name": f"t{i}", "status": 2} for i in (3, 2)]
    hits = 0

    async def same_page(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        return web.json_response(page)

    async with serve(fake_smsc(same_page)) as url:
        client = make_client(session, url, clock, page_size=2)
        tasks = await client.list_tasks()

    assert [t.id for t in tasks] == [3, 2]
    assert hits == 2


# -- errors ---------------------------------------------------------------------------------------


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


async def test_listener_hears_every_upstream_request(client: SmscClient, sim: Sim) -> None:
    events: list[tuple[str, str, int | None]] = []

    class Recorder:
        def on_request(self, request: SmscRequest) -> None:
            events.append((request.kind, request.outcome, request.code))

        def on_event(self, event: SmscEvent) -> None:
            pass

    class Broken:
        def on_request(self, request: SmscRequest) -> None:
            raise RuntimeError("metrics down")

        def on_event(self, event: SmscEvent) -> None:
            raise RuntimeError("metrics down")

    client.add_observer(Broken())
    client.add_observer(Recorder())
    add_tasks(sim.state, 1)
    await client.list_page(cnt=1)
    sim.state.inject(Fault("http_500"))
    with pytest.raises(SmscHttpError):
        await client.list_page(cnt=2)
    sim.state.inject(Fault("error", code=5))
    with pytest.raises(SmscNotFoundError):
        await client.list_page(cnt=3)

    assert events == [("list", "ok", None), ("list", "http_error", 500), ("list", "api_error", 5)]
    assert client.stats.last_success_at is not None
    assert client.stats.errors_by_code == {"http_500": 1, "5": 1}
