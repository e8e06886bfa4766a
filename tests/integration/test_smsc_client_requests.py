"""SmscClient's requests on the wire: POST bodies, credentials, config limits, secrets kept out
of logs and errors, and the listener that hears every request.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import aiohttp
import pytest

from bot.clock import FakeClock
from bot.smsc.client import SmscClient, SmscClientConfig, SmscCredentials
from bot.smsc.errors import (
    SmscAuthError,
    SmscConnectionError,
    SmscError,
    SmscHttpError,
    SmscNotFoundError,
)
from bot.smsc.observer import SmscEvent, SmscRequest
from bot.smsc.simulator import Fault
from tests.fakes.smsc_support import (
    APIKEY,
    LOGIN,
    PASSWORD,
    WRONG_PASSWORD,
    Sim,
    add_tasks,
    make_client,
)

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
