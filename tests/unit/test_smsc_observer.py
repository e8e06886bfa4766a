"""The SMSC client's figures leave through one channel, each event counted exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bot.clock import FakeClock
from bot.metrics import Metrics
from bot.smsc.client import SmscClient
from bot.smsc.errors import SmscBudgetError, SmscHttpError
from bot.smsc.observer import SmscEvent, SmscRequest
from bot.smsc.simulator import Fault
from tests.fakes.smsc_support import Sim, add_tasks


class Recorder:
    """Writes down every event and request it hears."""

    def __init__(self) -> None:
        self.events: Counter[SmscEvent] = Counter()
        self.requests: list[SmscRequest] = []

    def on_request(self, request: SmscRequest) -> None:
        self.requests.append(request)

    def on_event(self, event: SmscEvent) -> None:
        self.events[event] += 1


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


async def test_each_event_is_counted_once_by_every_observer(
    client: SmscClient, sim: Sim, clock: FakeClock
) -> None:
    recorder, metrics = Recorder(), Metrics()
    client.add_observer(recorder)
    client.add_observer(metrics)
    add_tasks(sim.state, 3)

    # 50 callers at once: one request sent, 49 joined it.
    await asyncio.gather(*(client.list_tasks() for _ in range(50)))
    await client.list_tasks()  # from the short cache
    await client.task_listing()  # from the short cache too
    clock.advance(20)
    sim.state.inject(Fault("http_500"))
    with pytest.raises(SmscHttpError):
        await client.list_page(cnt=7)
    await client.list_page(cnt=7)
    with pytest.raises(SmscBudgetError):  # the 3rd identical request in a minute: not sent
        await client.list_page(cnt=7)

    assert recorder.events == {"sent": 3, "coalesced": 49, "cache_hit": 2, "throttled": 1}
    assert len(sim.state.requests) == 3 == len(recorder.requests)
    assert [(r.kind, r.outcome, r.code) for r in recorder.requests] == [
        ("list", "ok", None),
        ("list", "http_error", 500),
        ("list", "ok", None),
    ]
    # The stats for /status, and Prometheus, heard the very same events, once each.
    stats = client.stats
    assert (stats.upstream_requests, stats.coalesced, stats.cache_hits, stats.throttled) == (
        3,
        49,
        2,
        1,
    )
    assert stats.errors_by_code == {"http_500": 1}
    assert _sample(metrics, "smsc_coalesced_calls_total") == 49
    assert _sample(metrics, "smsc_cache_hits_total") == 2
    assert _sample(metrics, "smsc_throttled_calls_total") == 1
    assert _sample(metrics, "smsc_stale_hits_total") == 0
    ok = _sample(metrics, "smsc_requests_total", kind="list", outcome="ok", code="")
    failed = _sample(metrics, "smsc_requests_total", kind="list", outcome="http_error", code="500")
    assert (ok, failed) == (2, 1)
    assert _sample(metrics, "smsc_request_seconds_count", kind="list") == 3


async def test_a_failing_observer_breaks_neither_requests_nor_other_observers(
    client: SmscClient, sim: Sim
) -> None:
    class Broken:
        def on_request(self, request: SmscRequest) -> None:
            raise RuntimeError("metrics down")

        def on_event(self, event: SmscEvent) -> None:
            raise RuntimeError("metrics down")

    recorder = Recorder()
    client.add_observer(Broken())
    client.add_observer(recorder)
    add_tasks(sim.state, 1)

    assert [t.id for t in await client.list_tasks()] == [1]
    assert recorder.events == {"sent": 1}
    assert client.stats.upstream_requests == 1
