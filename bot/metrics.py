"""Prometheus metrics, on a registry of the application's own (tests run many apps at once).

Labels are bounded sets only (outcomes, error codes, command names, statuses): never chat ids
or task names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.smsc.observer import SmscEvent, SmscRequest
from bot.telegram.errors import error_kind
from bot.texts.commands import metric_label

if TYPE_CHECKING:
    from telegram.error import TelegramError

    from bot.telegram.updates import LoopStats
    from handlers.access import RefusalStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# The SMSC client's local decisions, one counter each ("sent" is counted by smsc_requests).
_SMSC_EVENTS: tuple[tuple[SmscEvent, str, str], ...] = (
    ("cache_hit", "smsc_cache_hits", "Task lists served from the short cache"),
    ("stale_hit", "smsc_stale_hits", "Task lists served stale because SMSC's window was full"),
    ("coalesced", "smsc_coalesced_calls", "Calls that joined an identical request in flight"),
    ("throttled", "smsc_throttled_calls", "Calls refused locally (backoff or window), none sent"),
    ("wait", "smsc_waits", "Calls that waited on the clock for a free SMSC slot"),
    (
        "budget_unavailable",
        "smsc_budget_unavailable",
        "SMSC requests sent on the in-process limits alone (durable budget down)",
    ),
)


class _DatabaseCollector(Collector):
    """Exports whether the database takes writes (and is still the file opened) at scrape time."""

    def __init__(self, problem: Callable[[], str | None], failures: Callable[[], int]) -> None:
        self._problem = problem
        self._failures = failures

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        writable = 0 if self._problem() else 1
        yield GaugeMetricFamily(
            "bot_database_writable",
            "1 while the database file is in place and takes writes, 0 otherwise",
            value=writable,
        )
        yield CounterMetricFamily(
            "bot_database_write_failures",
            "Database writes that failed because the disk was full, read-only or broken",
            value=self._failures(),
        )


class _RefusalCollector(Collector):
    """Exports what the allowlist gate did with strangers' updates, at scrape time."""

    def __init__(self, stats: RefusalStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(
            "access_refusals",
            "Updates from chats outside the allowlist, by what the gate did with them",
            labels=["outcome"],
        )
        for outcome, count in sorted(asdict(self._stats).items()):
            family.add_metric([outcome], count)
        yield family


class _UpdateStatsCollector(Collector):
    """Exports the update loop's counters (bot/telegram/updates.py) at scrape time."""

    def __init__(self, stats: LoopStats) -> None:
        self._stats = stats

    def collect(self) -> Iterable[CounterMetricFamily]:
        stats = self._stats
        unparseable = CounterMetricFamily(
            "telegram_updates_unparseable",
            "Updates skipped because the library cannot parse them",
            labels=["type"],
        )
        for kind, count in sorted(stats.unparseable.items()):
            unparseable.add_metric([kind], count)
        yield unparseable
        refused = CounterMetricFamily(
            "webhook_requests_refused", "Webhook requests refused", labels=["reason"]
        )
        for reason, count in sorted(stats.refused.items()):
            refused.add_metric([reason], count)
        yield refused
        yield CounterMetricFamily(
            "telegram_get_updates_failures",
            "getUpdates round trips that failed (each followed by a backoff)",
            value=stats.get_updates_failures,
        )
        yield CounterMetricFamily(
            "telegram_get_updates_round_trips",
            "getUpdates round trips answered with a batch",
            value=stats.round_trips,
        )


class Metrics:
    """Every metric the bot exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.smsc_requests = Counter(
            "smsc_requests", "Requests sent to SMSC", ["kind", "outcome", "code"], registry=r
        )
        self.smsc_latency = Histogram(
            "smsc_request_seconds",
            "SMSC request latency",
            ["kind"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )
        # Every SMSC event once, as the client's observer reports it (the one channel).
        self.smsc_events: dict[SmscEvent, Counter] = {
            event: Counter(name, doc, registry=r) for event, name, doc in _SMSC_EVENTS
        }
        self.polls = Counter("watcher_polls", "Watcher polls", ["outcome"], registry=r)
        self.tasks = Gauge("smsc_tasks", "Tasks by status at the last poll", ["status"], registry=r)
        self.alerts_queued = Gauge(
            "alerts_queued", "Alert deliveries waiting to be sent", registry=r
        )
        self.alerts_delivered = Counter(
            "alerts_delivered", "Alert deliveries sent", ["kind"], registry=r
        )
        self.alerts_failed = Counter(
            "alerts_failed", "Alert delivery attempts that failed", ["reason"], registry=r
        )
        self.telegram_errors = Counter(
            "telegram_api_errors", "Errors from the Telegram Bot API", ["kind"], registry=r
        )
        self.commands = Counter("bot_commands", "Commands received", ["command"], registry=r)
        self.items_skipped = Counter(
            "smsc_items_skipped",
            "SMSC list items the watcher skipped as unusable (bad id or status), summed per poll",
            registry=r,
        )
        self.last_poll_skipped = Gauge(
            "watcher_last_poll_items_skipped",
            "SMSC list items skipped as unusable in the watcher's last poll",
            registry=r,
        )

    def watch_database(
        self, problem: Callable[[], str | None], failures: Callable[[], int]
    ) -> None:
        """Export the database's health: `problem()` says why it is unhealthy, or None."""
        self.registry.register(_DatabaseCollector(problem, failures))

    def watch_updates(self, stats: LoopStats) -> None:
        """Export the update loop's counters (unparseable updates, getUpdates failures)."""
        self.registry.register(_UpdateStatsCollector(stats))

    def watch_refusals(self, stats: RefusalStats) -> None:
        """Export the allowlist gate's counters (refused, replied, suppressed, dropped)."""
        self.registry.register(_RefusalCollector(stats))

    def on_request(self, request: SmscRequest) -> None:
        """SmscObserver: count one upstream request and its latency."""
        code = "" if request.code is None else str(request.code)
        self.smsc_requests.labels(request.kind, request.outcome, code).inc()
        self.smsc_latency.labels(request.kind).observe(request.seconds)

    def on_event(self, event: SmscEvent) -> None:
        """SmscObserver: count one of the client's local decisions ("sent" is smsc_requests)."""
        counter = self.smsc_events.get(event)
        if counter is not None:
            counter.inc()

    def command(self, name: str) -> None:
        """Count a command; unknown ones share one label so users cannot grow the label set."""
        self.commands.labels(metric_label(name)).inc()

    def telegram_error(self, err: TelegramError) -> None:
        """Count an error from the Bot API under its kind (`bot.telegram.errors.error_kind`)."""
        self.telegram_errors.labels(error_kind(err)).inc()

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
