"""Updates as they really arrive: one the library cannot parse never halts the bot.

Telegram and python-telegram-bot sometimes disagree on a required field (it happens at Bot API
upgrades). PTB decodes a whole getUpdates batch at once: one bad update raises, nothing of the
batch is confirmed, and the updater asks again at once, for ever (hundreds of calls and
CRITICAL lines a second, later updates never handled). So the raw batch is checked here, one
update at a time, before PTB sees it: a bad one is replaced by its bare `update_id` (PTB then
confirms it, Telegram drops it, no handler matches an empty update), logged by id and type only
(its content may hold user data) and counted.

The same decoder serves the webhook. Failed getUpdates round trips back off exponentially here
(1 s -> 30 s, `GET_UPDATES_BACKOFF`), inside the polling action, so a stop interrupts the wait;
`UpdateIntake` also keeps what `/healthz` needs to tell a live update loop from a dead or wedged
one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.error import NetworkError
from telegram.request import HTTPXRequest, RequestData

from bot.clock import Clock, SystemClock

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.ext import Application

log = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0  # seconds before the retry after a first failed getUpdates
BACKOFF_CAP = 30.0
# The wait after the 1st, 2nd, ... failed getUpdates in a row (the last one repeats): doubling
# from BACKOFF_FIRST up to BACKOFF_CAP. Tests pass shorter ones (RuntimeOptions).
GET_UPDATES_BACKOFF: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, BACKOFF_CAP)
# A live polling loop finishes a round trip at least every long-poll timeout (plus the read
# timeout of a request that hangs, plus a backoff): 3x the timeout and this margin is "wedged".
STALE_MARGIN = 60.0
QUEUE_STUCK_AFTER = 60.0  # seconds updates may wait in the queue with nobody taking them
CLEANUP_READ_TIMEOUT = 5.0  # the zero-timeout getUpdates of a stop must not hold it long
LOG_PERIOD = 60.0  # one line per reason per minute, with a count of the ones suppressed
_EMPTY_BATCH = b'{"ok":true,"result":[]}'
_UNAUTHORIZED = (401, 404)  # PTB's InvalidToken: let it end the loop, /healthz then says so


class RateLimitedLog:
    """At most one line per key per period, saying how many were suppressed since."""

    def __init__(
        self, logger: logging.Logger, monotonic: Callable[[], float], period: float = LOG_PERIOD
    ) -> None:
        self._log = logger
        self._monotonic = monotonic
        self._period = period
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, msg: str, *args: object, key: str, event: str) -> bool:
        """Log `msg` unless `key` was logged within the period; return whether it was."""
        now = self._monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._period:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg += " (%d more like it suppressed in the last %.0f s)"
            args = (*args, suppressed, now - last if last is not None else 0.0)
        self._log.warning(msg, *args, extra={"event": event})
        return True


def update_kind(data: dict[str, Any]) -> str:
    """The update's top-level type ("message", ...), bounded for logs and metric labels."""
    kinds = [key for key in data if key != "update_id"]
    if not kinds:
        return "none"
    kind = kinds[0]
    return kind if kind in Update.ALL_TYPES else "unknown"


def update_id_of(data: object) -> int | None:
    """The update's id when it has a usable one."""
    if not isinstance(data, dict):
        return None
    value = data.get("update_id")
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


@dataclass
class LoopStats:
    """What the update loop did, for /metrics and /healthz."""

    unparseable: dict[str, int] = field(default_factory=dict)  # by update type
    refused: dict[str, int] = field(default_factory=dict)  # webhook requests, by reason
    get_updates_failures: int = 0
    consecutive_failures: int = 0
    round_trips: int = 0
    started: float | None = None  # monotonic time of the first getUpdates
    last_finished: float | None = None  # monotonic time the last getUpdates ended (any outcome)
    long_poll_timeout: float = 0.0
    last_backoff: float = 0.0


class UpdateIntake:
    """Decodes updates one by one for both transports and watches the update loop."""

    def __init__(
        self, clock: Clock | None = None, *, backoff: tuple[float, ...] = GET_UPDATES_BACKOFF
    ) -> None:
        if not backoff or min(backoff) < 0:
            raise ValueError("the getUpdates backoff needs at least one wait, none negative")
        # Real time by default on purpose: it bounds real network waits, not task windows.
        self.clock: Clock = clock or SystemClock()
        self.backoff = backoff
        self.stats = LoopStats()
        self.queue = WatchedQueue(self)
        # The update paths' rate-limited log (webhook refusals use it too); it follows
        # `clock`, which tests may replace.
        self.logs = RateLimitedLog(log, self._monotonic)

    def _monotonic(self) -> float:
        return self.clock.monotonic()

    def request(self, **kwargs: Any) -> LenientUpdatesRequest:
        """The getUpdates request object for `ApplicationBuilder.get_updates_request`."""
        return LenientUpdatesRequest(self, **kwargs)

    def check(self, data: object) -> bool:
        """Whether PTB can decode `data` as an Update; log and count it when not."""
        kind = update_kind(data) if isinstance(data, dict) else "none"
        update_id = update_id_of(data)
        if update_id is not None:
            try:
                Update.de_json(data, None)  # type: ignore[arg-type]  # a dry run, no bot needed
            except Exception as err:  # noqa: BLE001 - any failure here is "cannot parse"
                reason = type(err).__name__
            else:
                return True
        else:
            reason = "no usable update_id"
        self.stats.unparseable[kind] = self.stats.unparseable.get(kind, 0) + 1
        self.logs.warning(
            "skipped an update the library cannot parse: update_id=%s type=%s (%s)",
            update_id,
            kind,
            reason,
            key="unparseable:" + kind,
            event="update_unparseable",
        )
        return False

    def count_refusal(self, reason: str) -> None:
        """Count a webhook request refused for `reason` (for /metrics)."""
        self.stats.refused[reason] = self.stats.refused.get(reason, 0) + 1

    def decode(self, data: object, bot: Bot) -> Update | None:
        """The Update for `data`, or None (logged, counted) when it cannot be parsed."""
        if not self.check(data):
            return None
        try:
            return Update.de_json(data, bot)  # type: ignore[arg-type]  # check() saw a dict
        except Exception:  # noqa: BLE001 - the bot's defaults can still make it fail
            kind = update_kind(data) if isinstance(data, dict) else "none"
            self.stats.unparseable[kind] = self.stats.unparseable.get(kind, 0) + 1
            return None

    def sanitize_batch(self, body: bytes) -> bytes | None:
        """getUpdates' answer with every bad update reduced to its id; None if not a batch."""
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(payload, dict) or payload.get("ok") is not True:
            return None
        items = payload.get("result")
        if not isinstance(items, list):
            return None
        clean: list[object] = []
        changed = False
        for item in items:
            if self.check(item):
                clean.append(item)
                continue
            changed = True
            update_id = update_id_of(item)
            if update_id is not None:
                # Kept as an empty update so PTB confirms its id: Telegram then drops it.
                clean.append({"update_id": update_id})
        if not changed:
            return body
        return json.dumps({"ok": True, "result": clean}).encode()

    # ---- the polling loop's pace and health ---------------------------------------------

    def next_backoff(self) -> float:
        """Seconds to wait before the next getUpdates (0 after a success)."""
        failures = self.stats.consecutive_failures
        if failures == 0:
            return 0.0
        return self.backoff[min(failures, len(self.backoff)) - 1]

    def round_trip_started(self, long_poll_timeout: float) -> None:
        """Note a getUpdates leaving."""
        if self.stats.started is None:
            self.stats.started = self.clock.monotonic()
        self.stats.long_poll_timeout = long_poll_timeout

    def round_trip_ok(self) -> None:
        """Note a getUpdates answered with a batch."""
        self.stats.round_trips += 1
        self.stats.consecutive_failures = 0
        self.stats.last_finished = self.clock.monotonic()

    def round_trip_failed(self, why: str, retry_after: float | None = None) -> None:
        """Note a failed getUpdates; the next one waits (logged once per backoff step)."""
        stats = self.stats
        stats.get_updates_failures += 1
        stats.consecutive_failures += 1
        stats.last_finished = self.clock.monotonic()
        wait = self.next_backoff()
        if retry_after is not None:
            wait = max(wait, retry_after)
        stats.last_backoff = wait
        log.warning(
            "getUpdates failed (%s, %d in a row); next attempt in %.0f s",
            why,
            stats.consecutive_failures,
            wait,
            extra={"event": "get_updates_failed"},
        )

    def polling_problem(self) -> str | None:
        """Why the polling loop looks wedged, or None while round trips keep finishing."""
        stats = self.stats
        if stats.started is None:
            return None
        last = stats.last_finished if stats.last_finished is not None else stats.started
        limit = 3 * stats.long_poll_timeout + STALE_MARGIN
        idle = self.clock.monotonic() - last
        if idle > limit:
            return f"no getUpdates round trip finished for {idle:.0f} s"
        return None

    def problem(
        self, app: Application[Any, Any, Any, Any, Any, Any], *, polling: bool = True
    ) -> str | None:
        """Why the update loop is dead or wedged (for /healthz), or None while it works.

        `polling` False: this process is not meant to call getUpdates (a standby replica: only
        the leader may), so only the processing side is checked.
        """
        # PTB 22 exposes neither task; read its private attributes, and treat a missing one
        # (another PTB version) as "unknown", leaving the round-trip and queue checks.
        fetcher: asyncio.Task[Any] | None = getattr(app, "_Application__update_fetcher_task", None)
        if fetcher is not None and fetcher.done():
            return "update processing stopped"
        stuck = self.queue.stuck_for()
        if stuck is not None:
            return f"updates waiting for {stuck:.0f} s with nobody taking them"
        updater = app.updater
        if updater is None or not polling:
            return None  # webhook mode or a standby: the queue is all there is
        if not updater.running:
            return "update polling not running"
        poll_task: asyncio.Task[Any] | None = getattr(updater, "_Updater__polling_task", None)
        if poll_task is not None and poll_task.done():
            return "update polling stopped"
        return self.polling_problem()


class WatchedQueue(asyncio.Queue[object]):
    """The application's update queue, remembering when its consumer last took an update."""

    def __init__(self, intake: UpdateIntake) -> None:
        super().__init__()
        self._intake = intake
        self._since = 0.0  # when the queue last went from empty to waiting
        self._last_get: float | None = None

    async def get(self) -> object:
        """Take the next update (and note that the consumer is alive)."""
        item = await super().get()
        self._last_get = self._intake.clock.monotonic()
        return item

    def put_nowait(self, item: object) -> None:
        """Queue an update (`put` comes here too); an idle queue starts its wait now."""
        if self.empty():
            self._since = self._intake.clock.monotonic()
        super().put_nowait(item)

    def stuck_for(self) -> float | None:
        """Seconds updates have waited with nobody taking one, once past the limit; else None."""
        if self.empty():
            return None
        since = max(self._since, self._last_get or self._since)
        waited = self._intake.clock.monotonic() - since
        return waited if waited > QUEUE_STUCK_AFTER else None


class LenientUpdatesRequest(HTTPXRequest):
    """PTB's HTTP request for getUpdates, checking each update and pacing failed attempts."""

    def __init__(self, intake: UpdateIntake, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.intake = intake

    async def do_request(  # noqa: PLR0917 - PTB's signature
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        write_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        connect_timeout: Any = HTTPXRequest.DEFAULT_NONE,
        pool_timeout: Any = HTTPXRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send getUpdates; answer an empty batch after a failure (and wait before the next)."""
        intake = self.intake
        params = request_data.parameters if request_data is not None else {}
        timeout = params.get("timeout", 0)
        long_poll = float(timeout) if isinstance(timeout, int | float) else 0.0
        if long_poll > 0:
            # Inside PTB's polling action, which a stop cancels: the wait never delays a stop.
            wait = intake.stats.last_backoff if intake.stats.consecutive_failures else 0.0
            if wait > 0:
                await intake.clock.sleep(wait)
        else:
            # The last getUpdates of a stop (it confirms what was fetched): keep it short.
            read_timeout = CLEANUP_READ_TIMEOUT
        intake.round_trip_started(long_poll)
        try:
            status, body = await super().do_request(
                url,
                method,
                request_data,
                read_timeout=read_timeout,
                write_timeout=write_timeout,
                connect_timeout=connect_timeout,
                pool_timeout=pool_timeout,
            )
        except NetworkError as err:  # TimedOut included
            intake.round_trip_failed(type(err).__name__)
            return 200, _EMPTY_BATCH
        if status in _UNAUTHORIZED:
            intake.round_trip_failed(f"HTTP {status}")
            return status, body
        if not 200 <= status <= 299:
            intake.round_trip_failed(f"HTTP {status}", _retry_after(body))
            return 200, _EMPTY_BATCH
        clean = intake.sanitize_batch(body)
        if clean is None:
            intake.round_trip_failed("not a list of updates")
            return 200, _EMPTY_BATCH
        intake.round_trip_ok()
        return status, clean


def _retry_after(body: bytes) -> float | None:
    try:
        payload = json.loads(body)
        value = payload["parameters"]["retry_after"]
    except (ValueError, RecursionError, TypeError, KeyError):
        return None
    return float(value) if isinstance(value, int | float) and value > 0 else None
