"""The one async client for SMSC's deferred tasks (`/sys/downloads.php`), shared by every caller.

Handlers and the watcher call the same instance concurrently; the etiquette rules (see
`bot.smsc.etiquette`) are enforced here for all of them together:

* at most `identical_limit` (2) identical requests in any rolling minute, counted until each
  one's answer ends. When that window is full, or SMSC answered error 9, `list_tasks()` answers
  from its cache however old; other calls (and `list_tasks()` with no cache yet) wait on the
  clock if a slot frees within `max_wait` (10 s), else raise `SmscBudgetError` (our own
  budget: nothing was sent) or, while backing off after error 9, `SmscRateLimitedError`, both
  with `retry_after` set;
* after error 4 every call fails fast with `SmscIpBlockedError` for 30 minutes, after error 2
  with `SmscAuthError` until the next allowed login attempt (one per 10 minutes, at most 3 per
  30 minutes), both with `retry_after`; until a request proves the login works, requests go
  one at a time, so a wrong password costs one failed login, not one per caller;
* concurrent identical list calls share one upstream request, and the full list is cached for
  `list_cache_ttl` (15 s);
* at most `max_concurrency` (4) requests in flight, downloads at most `max_concurrent_downloads`
  (2), so long downloads cannot starve list calls.

The same limits also live in a `BudgetStore` (`bot.smsc.budget`; the `smsc_budget` table in
production): every request is recorded there, atomically with the check, before it is sent, so
restarts and other processes on the same database share one budget.

`task_listing()` answers people: a list with its provenance (`TaskListing`), the cached list with
the reason when SMSC fails or is slow (after `reply_patience`, 10 s, the request goes on in the
background and fills the cache).

Downloads are not coalesced: each caller gets its own file, which it may move or delete.
Disk errors while saving (`OSError`, e.g. a full disk) are not SMSC's and propagate as they are.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol, TypeVar

import aiohttp

from bot.clock import Clock, SystemClock
from bot.smsc.budget import (
    BudgetRules,
    BudgetStore,
    MemoryBudgetStore,
    Outcome,
    SharedBudget,
    Ticket,
)
from bot.smsc.errors import (
    SmscApiError,
    SmscAuthError,
    SmscBadResponseError,
    SmscBudgetError,
    SmscConnectionError,
    SmscError,
    SmscHttpError,
    SmscIpBlockedError,
    SmscRateLimitedError,
    SmscSlowError,
    SmscTimeoutError,
    SmscTransportError,
)
from bot.smsc.etiquette import (
    Etiquette,
    RequestKey,
    SingleFlight,
    Throttle,
    TtlCache,
    format_wait,
)
from bot.smsc.files import safe_filename, save_stream, with_default_extension
from bot.smsc.listing import TaskListing
from bot.smsc.models import Download, Task
from bot.smsc.parsing import (
    TaskPage,
    classify_file_head,
    decode_text,
    error_from_body,
    parse_error,
    parse_task_page,
)
from storage.smsc_budget import BudgetUnavailableError

log = logging.getLogger(__name__)

R = TypeVar("R")
Kind = Literal["list", "file"]

_ENDPOINT = "/sys/downloads.php"
_SNIFF_BYTES = 512  # enough to tell a CSV from an error; never the whole file
_MAX_ERROR_BYTES = 64 * 1024
_WAITABLE = ("rate_limited", "window", "probe")


@dataclass(frozen=True, repr=False)
class SmscCredentials:
    """SMSC login and password, or an API key. Never printed: repr hides the secrets."""

    login: str | None = None
    password: str | None = None
    apikey: str | None = None

    def __post_init__(self) -> None:
        if not self.apikey and not (self.login and self.password):
            raise ValueError("SMSC needs an API key, or a login and a password")

    def __repr__(self) -> str:
        password = "'***'" if self.password else "None"
        apikey = "'***'" if self.apikey else "None"
        return f"SmscCredentials(login={self.login!r}, password={password}, apikey={apikey})"

    def form(self) -> dict[str, str]:
        """Return the authentication fields of a request body (the API key wins if set)."""
        if self.apikey:
            return {"apikey": self.apikey}
        # __post_init__ guarantees both are set when there is no API key.
        return {"login": self.login or "", "psw": self.password or ""}


@dataclass(frozen=True)
class SmscClientConfig:
    """Endpoint, timeouts and etiquette numbers; the defaults suit production."""

    base_url: str = "https://smscentre.com"
    request_timeout: float = 30.0  # whole list request
    connect_timeout: float = 15.0
    download_timeout: float | None = None  # whole download; None: only the per-read timeout
    download_read_timeout: float = 60.0  # longest silence while a file streams
    list_cache_ttl: float = 15.0
    identical_limit: int = 2  # SMSC refuses the 4th identical request in 60 s; we stop at 2
    window_seconds: float = 60.0
    window_margin: float = 1.0  # extra seconds so clock and network jitter cannot bite
    max_concurrency: int = 4  # SMSC refuses 15 concurrent requests
    max_concurrent_downloads: int = 2  # leaves slots for list calls during long downloads
    page_size: int = 200
    max_pages: int = 50
    max_wait: float = 10.0  # longest a call waits on the clock for a slot before raising
    reply_patience: float = 10.0  # real seconds a person waits before the cached list answers
    rate_limit_backoff: float = 60.0  # error 9: this request's key waits this long
    rate_limit_pause: float = 5.0  # error 9: every request pauses this long
    ip_block_backoff: float = 1800.0  # error 4
    auth_retry_interval: float = 600.0  # error 2: one new attempt per this many seconds
    auth_max_failures: int = 3  # failed logins allowed in auth_failure_window (SMSC blocks at 5)
    auth_failure_window: float = 1800.0
    max_list_bytes: int = 16 * 1024 * 1024
    max_download_bytes: int | None = None
    chunk_size: int = 256 * 1024  # network read size
    write_buffer_bytes: int = 4 * 1024 * 1024  # most bytes waiting for the disk per download

    def __post_init__(self) -> None:
        if not 1 <= self.identical_limit <= 3:
            raise ValueError("identical_limit must be 1..3: SMSC refuses a 4th identical request")
        if not 1 <= self.max_concurrency < 15:
            raise ValueError("max_concurrency must be 1..14: SMSC refuses 15 concurrent requests")
        if self.page_size < 1 or self.max_pages < 1 or self.max_concurrent_downloads < 1:
            raise ValueError("page_size, max_pages and max_concurrent_downloads must be positive")

    @property
    def url(self) -> str:
        """The endpoint's full address."""
        return self.base_url.rstrip("/") + _ENDPOINT

    def budget_rules(self) -> BudgetRules:
        """The durable budget's numbers, the same as the in-process etiquette's."""
        return BudgetRules(
            identical_limit=self.identical_limit,
            window=self.window_seconds + self.window_margin,
            arrival_bound=self.request_timeout,
            rate_limit_backoff=self.rate_limit_backoff,
            rate_limit_pause=self.rate_limit_pause,
            ip_block_backoff=self.ip_block_backoff,
            auth_retry_interval=self.auth_retry_interval,
            auth_max_failures=self.auth_max_failures,
            auth_failure_span=self.auth_failure_window + self.window_margin,
        )


@dataclass
class SmscStats:
    """Counters for /status and metrics.

    `errors_by_code` keys are SMSC's error numbers as text ("2", "9"), or "http_<status>",
    "timeout", "connection", "bad_response" for transport failures.
    """

    upstream_requests: int = 0
    cache_hits: int = 0
    stale_hits: int = 0  # list answers served from an expired cache because SMSC said wait
    coalesced: int = 0
    waits: int = 0  # times a call waited on the clock for a free slot
    throttled: int = 0  # calls refused locally (backoff or full window), no request sent
    budget_unavailable: int = 0  # requests sent on the in-process etiquette alone (store down)
    errors_by_code: dict[str, int] = field(default_factory=dict)
    last_success_at: datetime | None = None
    last_error: SmscError | None = None
    last_error_at: datetime | None = None


class SmscListener(Protocol):
    """Receives one call per upstream request, e.g. to feed Prometheus."""

    def on_request(self, kind: str, outcome: str, code: int | None, seconds: float) -> None:
        """Record one request: kind "list"/"file"; outcome "ok", "api_error", "http_error",
        "timeout", "connection_error" or "bad_response"; code the SMSC error or HTTP status."""


_DEFAULT_CONFIG = SmscClientConfig()
_SYSTEM_CLOCK = SystemClock()


class SmscClient:
    """Talks to SMSC politely on behalf of every caller in the process."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: SmscCredentials,
        *,
        config: SmscClientConfig = _DEFAULT_CONFIG,
        clock: Clock = _SYSTEM_CLOCK,
        budget: BudgetStore | None = None,
    ) -> None:
        self._session = session  # not ours: the application opens and closes it
        self._credentials = credentials
        self._config = config
        self._clock = clock
        self._etiquette = Etiquette(
            clock,
            identical_limit=config.identical_limit,
            window=config.window_seconds,
            window_margin=config.window_margin,
            rate_limit_backoff=config.rate_limit_backoff,
            rate_limit_pause=config.rate_limit_pause,
            ip_block_backoff=config.ip_block_backoff,
            auth_retry_interval=config.auth_retry_interval,
            auth_max_failures=config.auth_max_failures,
            auth_failure_window=config.auth_failure_window,
        )
        # The durable copy of the limits; in memory when no store is given (unit tests).
        self._budget = SharedBudget(budget or MemoryBudgetStore(), clock, config.budget_rules())
        self._budget_down = False  # logged once per outage, not once per request
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._download_slots = asyncio.Semaphore(config.max_concurrent_downloads)
        # Set while a request runs whose login is not yet proven; the others wait for its answer.
        self._probe: asyncio.Event | None = None
        self._list_cache: TtlCache[tuple[Task, ...]] = TtlCache(clock, config.list_cache_ttl)
        self._list_fetched_at: datetime | None = None
        self._list_failure: tuple[SmscError, datetime] | None = None  # since the list was fetched
        self._list_flight: SingleFlight[str, tuple[Task, ...]] = SingleFlight()
        self._page_flight: SingleFlight[RequestKey, TaskPage] = SingleFlight()
        self._listeners: list[SmscListener] = []
        self.stats = SmscStats()

    def __repr__(self) -> str:
        return f"SmscClient({self._config.url!r})"

    def add_listener(self, listener: SmscListener) -> None:
        """Call `listener.on_request` after every upstream request."""
        self._listeners.append(listener)

    async def list_tasks(self, *, max_age: float | None = None) -> list[Task]:
        """Return every deferred task, newest first (cached briefly, shared by concurrent calls).

        `max_age` asks for a list at most that many seconds old (the watcher wants news, not
        the list a /tasks fetched 14 s ago); SMSC's identical-request window still applies,
        so with the window full the cached list is returned whatever its age.
        """
        cached = self._list_cache.fresh(max_age)
        if cached is not None:
            self.stats.cache_hits += 1
            return list(cached)
        if self._list_flight.in_flight("all"):
            self.stats.coalesced += 1
        return list(await self._list_flight.run("all", self._refresh_list))

    async def task_listing(self, *, max_age: float | None = None) -> TaskListing:
        """Return every task with its provenance; never keeps a person waiting on a slow SMSC.

        When SMSC fails (or our budget says wait) and a list is cached, that list comes back
        with the reason instead of an error. After `reply_patience` seconds without an answer
        the cached list (or `SmscSlowError` when there is none) answers, while the request goes
        on in the background and fills the cache.
        """
        if self._list_cache.fresh(max_age) is not None:
            self.stats.cache_hits += 1
            return self.listing()
        if self._list_flight.in_flight("all"):
            self.stats.coalesced += 1
        started = self._clock.now()
        try:
            # The flight is shielded: giving up here leaves it running for the cache.
            await asyncio.wait_for(
                self._list_flight.run("all", self._refresh_list), self._config.reply_patience
            )
        except TimeoutError:
            slow = SmscSlowError(
                "SMSC has not answered for "
                f"{format_wait(self._config.reply_patience)} (still waiting in the background)",
                cause="SMSC has not yet answered the request sent",
            )
            if self._list_cache.stale() is None:
                raise slow from None
            return self.listing(slow=(slow, started))
        except SmscError:
            if self._list_cache.stale() is None:
                raise
        return self.listing()

    def listing(self, *, slow: tuple[SmscError, datetime] | None = None) -> TaskListing:
        """The cached list with its provenance, without asking SMSC (e.g. for /status)."""
        failure = slow or self._list_failure
        tasks = self._list_cache.stale() or ()
        if failure is None:
            # Not fresh once older than the cache's TTL, though nothing failed (yet).
            fresh = self._list_cache.fresh() is not None
            return TaskListing(tasks=tasks, fetched_at=self._list_fetched_at, fresh=fresh)
        err, failed_at = failure
        return TaskListing(
            tasks=tasks,
            fetched_at=self._list_fetched_at,
            fresh=False,
            failure=err,
            failed_at=failed_at,
            next_attempt_at=self._next_list_attempt(err, failed_at, slow is not None),
        )

    def _next_list_attempt(
        self, err: SmscError, failed_at: datetime, slow: bool
    ) -> datetime | None:
        if slow:
            return None  # the request is still running
        now = self._clock.now()
        candidates: list[datetime] = []
        if err.retry_after is not None:
            candidates.append(failed_at + timedelta(seconds=err.retry_after))
        throttle = self._etiquette.check(RequestKey.for_list(self._config.page_size, None))
        if throttle is not None:
            candidates.append(now + timedelta(seconds=throttle.retry_after))
        later = [c for c in candidates if c > now]
        return max(later) if later else None

    def invalidate_cache(self) -> None:
        """Make the next list_tasks() ask SMSC (the identical-request window still applies)."""
        # Kept as the stale fallback: with the window full, an old list beats an error.
        self._list_cache.expire()

    async def list_page(self, *, cnt: int | None = None, after_id: int | None = None) -> list[Task]:
        """Return one page of get_list as SMSC sends it (not cached)."""
        page = await self._request_page(cnt, after_id, can_wait=True)
        return list(page.tasks)

    async def get_task(self, task_id: int) -> Task | None:
        """Return the task with this id from the task list, or None."""
        return next((t for t in await self.list_tasks() if t.id == task_id), None)

    async def download(
        self, dest_dir: Path, *, task_id: int | None = None, name: str | None = None
    ) -> Download:
        """Save a completed task's file into `dest_dir` under a unique name; by id or file name."""
        if (task_id is None) == (name is None):
            raise ValueError("pass exactly one of task_id or name")
        if name is not None and not name.strip():
            raise ValueError("name must not be empty")
        key = RequestKey.for_file(task_id, name)
        params = {"get_file": "1"}
        if task_id is not None:
            params["id"] = str(task_id)
        if name is not None:
            params["name"] = name

        async def perform(answered: Callable[[], None]) -> Download:
            return await self._post_file(dest_dir, params, task_id, name, answered)

        return await self._send(key, "file", perform, can_wait=True)

    # -- lists -------------------------------------------------------------------------------

    async def _refresh_list(self) -> tuple[Task, ...]:
        stale = self._list_cache.stale()
        try:
            tasks = await self._fetch_all_pages(can_wait=stale is None)
        except SmscError as err:
            self._list_failure = (err, self._clock.now())
            if stale is None or not isinstance(err, SmscRateLimitedError | SmscBudgetError):
                raise
            self.stats.stale_hits += 1
            log.info("Serving the cached task list: %s", err)
            return stale
        self._list_failure = None
        self._list_fetched_at = self._clock.now()
        self._list_cache.put(tasks)
        return tasks

    async def _fetch_all_pages(self, *, can_wait: bool) -> tuple[Task, ...]:
        size = self._config.page_size
        seen: dict[int, Task] = {}
        after_id: int | None = None
        for _ in range(self._config.max_pages):
            page = await self._request_page(size, after_id, can_wait=can_wait)
            fresh = [t for t in page.tasks if t.id not in seen]
            for task in fresh:
                seen[task.id] = task
            # A short page is the last one (so a small account costs one request, not two);
            # a page with nothing new also ends it (SMSC ignored after_id). Known risk: were
            # SMSC to cap `cnt` below page_size, a full capped page would look short.
            if not fresh or page.item_count < size or page.last_id is None:
                break
            # after_id means "the tasks after this one in SMSC's list", whichever way it sorts.
            after_id = page.last_id
        else:
            log.warning("Stopped paging the SMSC task list after %d pages", self._config.max_pages)
        return tuple(sorted(seen.values(), key=lambda t: t.id, reverse=True))

    async def _request_page(
        self, cnt: int | None, after_id: int | None, *, can_wait: bool
    ) -> TaskPage:
        key = RequestKey.for_list(cnt, after_id)
        params = {"get_list": "1"}
        if cnt is not None:
            params["cnt"] = str(cnt)
        if after_id is not None:
            params["after_id"] = str(after_id)

        async def perform(answered: Callable[[], None]) -> TaskPage:
            return await self._post_list(params)

        async def send() -> TaskPage:
            return await self._send(key, "list", perform, can_wait=can_wait)

        if self._page_flight.in_flight(key):
            self.stats.coalesced += 1
        return await self._page_flight.run(key, send)

    async def _post_list(self, params: dict[str, str]) -> TaskPage:
        timeout = aiohttp.ClientTimeout(
            total=self._config.request_timeout, sock_connect=self._config.connect_timeout
        )
        with _transport_errors():
            async with self._post(params, timeout) as resp:
                if resp.status != 200:
                    raise await _http_error(resp)
                raw = await _read_capped(resp.content, self._config.max_list_bytes)
        return parse_task_page(decode_text(raw))

    # -- files -------------------------------------------------------------------------------

    async def _post_file(
        self,
        dest_dir: Path,
        params: dict[str, str],
        task_id: int | None,
        name: str | None,
        answered: Callable[[], None],
    ) -> Download:
        cfg = self._config
        timeout = aiohttp.ClientTimeout(
            total=cfg.download_timeout,
            sock_connect=cfg.connect_timeout,
            sock_read=cfg.download_read_timeout,
        )
        with _transport_errors():
            async with self._post(params, timeout) as resp:
                if resp.status != 200:
                    raise await _http_error(resp)
                head, complete = await _read_head(resp.content, _SNIFF_BYTES)
                verdict = classify_file_head(head, complete=complete)
                if verdict == "empty":
                    raise SmscBadResponseError("SMSC sent an empty file")
                if verdict == "binary":
                    raise SmscBadResponseError("SMSC sent a file that is not CSV text")
                if verdict == "error":
                    rest = b"" if complete else await _read_capped(resp.content, _MAX_ERROR_BYTES)
                    raise error_from_body(head + rest)
                answered()  # the file is coming: the login works, release waiting callers
                filename = self._display_name(resp, task_id, name)
                return await save_stream(
                    _chunks(head, resp.content, cfg.chunk_size),
                    dest_dir,
                    filename,
                    max_bytes=cfg.max_download_bytes,
                    buffer_bytes=cfg.write_buffer_bytes,
                )

    def _display_name(
        self, resp: aiohttp.ClientResponse, task_id: int | None, name: str | None
    ) -> str:
        """Pick the name people see: the requested name, the task's file or name, SMSC's."""
        with warnings.catch_warnings():
            # The header is untrusted: a malformed one means "no name", not a warning per file.
            warnings.simplefilter("ignore")
            disposition = resp.content_disposition
        from_header = disposition.filename if disposition else None
        task = self._cached_task(task_id) if task_id is not None else None
        candidates = (
            [name, from_header]
            if name is not None
            else [task.file if task else None, from_header, task.name if task else None]
        )
        default = f"task-{task_id}.csv" if task_id is not None else "smsc-export.csv"
        raw = next((c for c in candidates if c and c.strip()), "")
        return with_default_extension(safe_filename(raw, default=default), ".csv")

    def _cached_task(self, task_id: int) -> Task | None:
        # Only what we already know: a download must not cost an extra list request.
        tasks = self._list_cache.stale() or ()
        return next((t for t in tasks if t.id == task_id), None)

    # -- the gate every request goes through -------------------------------------------------

    async def _send(
        self,
        key: RequestKey,
        kind: Kind,
        perform: Callable[[Callable[[], None]], Awaitable[R]],
        *,
        can_wait: bool,
    ) -> R:
        """Send one request when the etiquette allows it; wait briefly or raise otherwise."""
        waited = 0.0
        while True:
            throttle = self._etiquette.check(key)  # fail fast before queueing for a slot
            probe = self._pending_probe()
            if throttle is None and probe is None:
                async with self._slot(kind):
                    # Time passed while queueing: decide again, and count the send atomically.
                    probe = self._pending_probe()
                    throttle = None if probe else self._etiquette.acquire(key)
                    if throttle is None and probe is None:
                        try:
                            return await self._perform(key, kind, perform)
                        except _Refused as refused:  # the durable budget said no
                            throttle = refused.throttle
            if probe is not None:
                await probe.wait()
                continue
            if throttle is None:  # cannot happen: the branches above leave a probe or a throttle
                continue
            if (
                can_wait
                and throttle.reason in _WAITABLE
                and waited + throttle.retry_after <= self._config.max_wait
            ):
                self.stats.waits += 1
                log.debug(
                    "Waiting %.1f s for SMSC slot (%s): %s",
                    throttle.retry_after,
                    throttle.reason,
                    key,
                )
                await self._clock.sleep(throttle.retry_after)
                waited += throttle.retry_after
                continue
            self.stats.throttled += 1
            raise _throttle_error(throttle)

    def _pending_probe(self) -> asyncio.Event | None:
        """The running request whose answer decides whether the login works, if any."""
        if self._etiquette.verified:
            return None
        return self._probe

    @asynccontextmanager
    async def _slot(self, kind: Kind) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if kind == "file":
                await stack.enter_async_context(self._download_slots)
            await stack.enter_async_context(self._slots)
            yield

    async def _perform(
        self,
        key: RequestKey,
        kind: Kind,
        perform: Callable[[Callable[[], None]], Awaitable[R]],
    ) -> R:
        """Run one upstream request, learning backoffs from its outcome.

        Raises `_Refused` (nothing sent) when the durable budget says wait.
        """
        probe: asyncio.Event | None = None
        if not self._etiquette.verified:
            # Until a request proves the login, send one at a time: a wrong password then costs
            # one failed login, not one per concurrent caller. Set before any await, so that
            # callers arriving meanwhile wait for it.
            probe = self._probe = asyncio.Event()
        try:
            reserved = await self._reserve(key, probe=probe is not None)
        except BaseException:
            self._etiquette.unacquire(key)
            self._release(probe)
            raise
        if not isinstance(reserved, Ticket | None):
            self._etiquette.unacquire(key)
            self._release(probe)
            raise _Refused(reserved)
        self.stats.upstream_requests += 1
        started = self._clock.monotonic()
        answered = False
        outcome: Outcome = "no_answer"
        settled = False

        def on_answer() -> None:
            nonlocal answered
            if not answered:
                answered = True
                self._etiquette.on_success(key)
                self._release(probe)

        try:
            result = await perform(on_answer)
            outcome = "ok"
        except SmscError as err:
            outcome = _outcome(err)
            settled = True
            stored_wait = await self._settle(reserved, outcome)
            error = self._learn(key, err, stored_wait)
            self._release(probe)
            self._record_failure(key, kind, error, started)
            if error is err:
                raise
            raise error from err
        finally:
            self._etiquette.release(key)
            self._release(probe)
            if not settled:
                # "answer" e.g. when the disk filled while a file streamed: the login worked.
                final: Outcome = "answer" if answered and outcome != "ok" else outcome
                # Shielded: a cancelled caller still records how its request ended.
                await asyncio.shield(self._settle(reserved, final))
        on_answer()
        self._record_success(key, kind, started)
        return result

    async def _reserve(self, key: RequestKey, *, probe: bool) -> Ticket | Throttle | None:
        """Take a slot in the durable budget; None when the store is down (in-process rules)."""
        try:
            reserved = await self._budget.reserve(key, probe=probe)
        except BudgetUnavailableError as err:
            self.stats.budget_unavailable += 1
            if not self._budget_down:
                self._budget_down = True
                log.warning("Sending on the in-process SMSC limits alone: %s", err)
            return None
        if self._budget_down:
            self._budget_down = False
            log.info("The durable SMSC budget is back")
        return reserved

    async def _settle(self, ticket: Ticket | None, outcome: Outcome) -> float | None:
        if ticket is None:
            return None
        try:
            return await self._budget.settle(ticket, outcome)
        except BudgetUnavailableError as err:
            log.warning("Could not record how an SMSC request ended: %s", err)
            return None

    def _release(self, probe: asyncio.Event | None) -> None:
        if probe is None:
            return
        if self._probe is probe:
            self._probe = None
        probe.set()

    def _learn(self, key: RequestKey, err: SmscError, stored_wait: float | None) -> SmscError:
        """Update the backoffs from an error; return the error to raise, with retry_after.

        `stored_wait` is what the durable budget imposes (it also counts earlier processes'
        failed logins), the longer of the two wins.
        """
        if not isinstance(err, SmscApiError):
            return err
        if isinstance(err, SmscRateLimitedError):
            wait = self._etiquette.on_rate_limited(key)
            return _backoff_error(Throttle("rate_limited", wait), err.description, answered=True)
        if isinstance(err, SmscIpBlockedError):
            wait = self._etiquette.on_ip_blocked()
            return _backoff_error(Throttle("ip_blocked", wait), err.description, answered=True)
        if isinstance(err, SmscAuthError):
            wait = max(self._etiquette.on_auth_failed(), stored_wait or 0.0)
            self._etiquette.hold_logins(wait)
            return _backoff_error(Throttle("auth", wait), err.description, answered=True)
        # Errors 1, 5 and unknown ones are answers from a logged-in session.
        self._etiquette.on_answer(key)
        return err

    def _record_success(self, key: RequestKey, kind: Kind, started: float) -> None:
        seconds = self._clock.monotonic() - started
        self.stats.last_success_at = self._clock.now()
        log.debug("SMSC %s: ok in %.2f s", key, seconds)
        self._notify(kind, "ok", None, seconds)

    def _record_failure(self, key: RequestKey, kind: Kind, err: SmscError, started: float) -> None:
        seconds = self._clock.monotonic() - started
        outcome, code, label = _classify(err)
        self.stats.errors_by_code[label] = self.stats.errors_by_code.get(label, 0) + 1
        self.stats.last_error = err
        self.stats.last_error_at = self._clock.now()
        log.warning("SMSC %s failed after %.2f s: %s", key, seconds, err)
        self._notify(kind, outcome, code, seconds)

    def _notify(self, kind: Kind, outcome: str, code: int | None, seconds: float) -> None:
        for listener in self._listeners:
            try:
                listener.on_request(kind, outcome, code, seconds)
            except Exception:
                # Metrics must never break a request.
                log.exception("SMSC request listener failed")

    @asynccontextmanager
    async def _post(
        self, params: dict[str, str], limits: aiohttp.ClientTimeout
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        form = {**self._credentials.form(), "fmt": "3", "charset": "utf-8", **params}
        # Credentials travel only in the POST body. Redirects are not followed: a 307 would
        # replay the body, password included, to wherever SMSC's answer points.
        async with self._session.post(
            self._config.url, data=form, timeout=limits, allow_redirects=False
        ) as resp:
            yield resp


class _Refused(Exception):
    """The durable budget refused a request the in-process etiquette allowed."""

    def __init__(self, throttle: Throttle) -> None:
        self.throttle = throttle
        super().__init__(throttle.reason)


def _outcome(err: SmscError) -> Outcome:
    """What the durable budget learns from a failed request."""
    if isinstance(err, SmscRateLimitedError):
        return "rate_limited"
    if isinstance(err, SmscIpBlockedError):
        return "ip_blocked"
    if isinstance(err, SmscAuthError):
        return "auth_failed"
    if isinstance(err, SmscApiError):
        return "answer"  # errors 1, 5, unknown: the login works
    return "no_answer"


def _throttle_error(throttle: Throttle) -> SmscError:
    """The exception for a request we did not send, saying when to try again."""
    err = _backoff_error(throttle, "", answered=False)
    err.sent = False
    return err


# What made us wait, in words: SMSC's errors are SMSC's, our own budget is ours.
_BUDGET_CAUSES = {
    "probe": "another of our processes is logging in to SMSC right now",
    "unconfirmed": (
        "an earlier login attempt got no answer before the bot restarted "
        "(counted as a failed login)"
    ),
}


def _backoff_error(throttle: Throttle, description: str, *, answered: bool) -> SmscError:
    """The error for a backoff: `answered` when SMSC's answer just caused it."""
    wait = format_wait(throttle.retry_after)
    after = throttle.retry_after
    if throttle.reason == "ip_blocked":
        cause = "SMSC has blocked this server's IP address (error 4)"
        return SmscIpBlockedError(
            f"{cause}; next attempt in {wait}",
            retry_after=after,
            description=description,
            cause=cause,
        )
    if throttle.reason == "auth":
        cause = "SMSC rejected the login or password, or this IP (error 2)"
        return SmscAuthError(
            f"{cause}; next login attempt in {wait}",
            retry_after=after,
            description=description,
            cause=cause,
        )
    if throttle.reason == "rate_limited":
        cause = (
            "SMSC answered error 9 (too many requests)"
            if answered
            else "we are waiting out SMSC's error 9 (too many requests)"
        )
        return SmscRateLimitedError(
            f"{cause}; next try in {wait}", retry_after=after, description=description, cause=cause
        )
    cause = _BUDGET_CAUSES.get(
        throttle.reason,
        "our own limit of identical SMSC requests a minute is used up (SMSC refused nothing)",
    )
    return SmscBudgetError(f"{cause}; next try in {wait}", retry_after=after, cause=cause)


def _classify(err: SmscError) -> tuple[str, int | None, str]:
    """Return (listener outcome, code, stats label) for an error."""
    if isinstance(err, SmscApiError):
        return "api_error", err.code, str(err.code)
    if isinstance(err, SmscHttpError):
        return "http_error", err.status, f"http_{err.status}"
    if isinstance(err, SmscTimeoutError):
        return "timeout", None, "timeout"
    if isinstance(err, SmscBadResponseError):
        return "bad_response", None, "bad_response"
    return "connection_error", None, "connection"


@contextmanager
def _transport_errors() -> Iterator[None]:
    """Turn aiohttp's and asyncio's failures into our exception family."""
    try:
        yield
    except TimeoutError as err:
        raise SmscTimeoutError() from err
    except aiohttp.ClientResponseError as err:
        # Only if the application's session sets raise_for_status; we check status ourselves.
        raise SmscHttpError(err.status) from err
    except aiohttp.ClientPayloadError as err:
        raise SmscConnectionError("The connection to SMSC broke during the answer") from err
    except aiohttp.ClientConnectionError as err:
        raise SmscConnectionError() from err
    except aiohttp.ClientError as err:
        raise SmscTransportError() from err


async def _http_error(resp: aiohttp.ClientResponse) -> SmscError:
    """The error for a non-200 answer: SMSC's own error if its body carries one."""
    try:
        raw = await resp.content.read(4096)
    except (aiohttp.ClientError, TimeoutError):
        raw = b""
    return parse_error(decode_text(raw)) or SmscHttpError(resp.status)


async def _read_capped(content: aiohttp.StreamReader, limit: int) -> bytes:
    """Read a whole answer, refusing one larger than `limit` bytes."""
    buf = bytearray()
    async for chunk in content.iter_chunked(64 * 1024):
        buf += chunk
        if len(buf) > limit:
            raise SmscBadResponseError("SMSC's answer is larger than expected")
    return bytes(buf)


async def _read_head(content: aiohttp.StreamReader, size: int) -> tuple[bytes, bool]:
    """Read the first `size` bytes (fewer at the end); also say whether the answer ended."""
    buf = bytearray()
    while len(buf) < size:
        chunk = await content.read(size - len(buf))
        if not chunk:
            return bytes(buf), True
        buf += chunk
    return bytes(buf), content.at_eof()


async def _chunks(head: bytes, content: aiohttp.StreamReader, size: int) -> AsyncIterator[bytes]:
    yield head
    async for chunk in content.iter_chunked(size):
        yield chunk
