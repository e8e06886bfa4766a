"""The one async client for SMSC's deferred tasks (`/sys/downloads.php`), shared by every caller.

Three pieces: this client (what callers ask: `list_tasks`, `task_listing`, `download`, with the
list cache and coalescing), the gate (`bot.smsc.gate`: etiquette, login probe, slots, durable
budget) every request passes, and the transport (`bot.smsc.transport`: the POST, error mapping,
capped and streamed reads). Figures leave through one channel, observers (`bot.smsc.observer`).

Handlers and the watcher call the same instance concurrently; the etiquette rules (see
`bot.smsc.etiquette`) are enforced for all of them together:

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
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

from bot.clock import Clock, SystemClock
from bot.smsc.budget import BudgetStore, MemoryBudgetStore
from bot.smsc.config import SmscClientConfig, SmscCredentials
from bot.smsc.errors import SmscBudgetError, SmscError, SmscRateLimitedError, SmscSlowError
from bot.smsc.etiquette import RequestKey, SingleFlight, TtlCache, format_wait
from bot.smsc.files import safe_filename, with_default_extension
from bot.smsc.gate import SmscGate
from bot.smsc.listing import TaskListing
from bot.smsc.models import Download, Task
from bot.smsc.observer import Observers, SmscObserver, SmscStats
from bot.smsc.parsing import TaskPage
from bot.smsc.transport import SmscTransport

__all__ = ["SmscClient", "SmscClientConfig", "SmscCredentials", "SmscObserver", "SmscStats"]

log = logging.getLogger(__name__)

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
        self._config = config
        self._clock = clock
        self.stats = SmscStats()
        self._observers = Observers(self.stats)
        # The durable copy of the limits is in memory when no store is given (unit tests).
        self._gate = SmscGate(config, clock, budget or MemoryBudgetStore(), self._observers)
        self._transport = SmscTransport(session, credentials, config)
        self._list_cache: TtlCache[tuple[Task, ...]] = TtlCache(clock, config.list_cache_ttl)
        self._list_fetched_at: datetime | None = None
        self._list_failure: tuple[SmscError, datetime] | None = None  # since the list was fetched
        self._list_flight: SingleFlight[str, tuple[Task, ...]] = SingleFlight()
        self._page_flight: SingleFlight[RequestKey, TaskPage] = SingleFlight()

    def __repr__(self) -> str:
        return f"SmscClient({self._config.url!r})"

    def add_observer(self, observer: SmscObserver) -> None:
        """Tell `observer` about every later request and event, each once."""
        self._observers.add(observer)

    async def list_tasks(self, *, max_age: float | None = None) -> list[Task]:
        """Return every deferred task, newest first (cached briefly, shared by concurrent calls).

        `max_age` asks for a list at most that many seconds old (the watcher wants news, not
        the list a /tasks fetched 14 s ago); SMSC's identical-request window still applies,
        so with the window full the cached list is returned whatever its age.
        """
        cached = self._list_cache.fresh(max_age)
        if cached is not None:
            self._observers.on_event("cache_hit")
            return list(cached)
        return list(await self._refresh_shared())

    async def task_listing(self, *, max_age: float | None = None) -> TaskListing:
        """Return every task with its provenance; never keeps a person waiting on a slow SMSC.

        When SMSC fails (or our budget says wait) and a list is cached, that list comes back
        with the reason instead of an error. After `reply_patience` seconds without an answer
        the cached list (or `SmscSlowError` when there is none) answers, while the request goes
        on in the background and fills the cache.
        """
        if self._list_cache.fresh(max_age) is not None:
            self._observers.on_event("cache_hit")
            return self.listing()
        started = self._clock.now()
        try:
            # The flight is shielded: giving up here leaves it running for the cache.
            await asyncio.wait_for(self._refresh_shared(), self._config.reply_patience)
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
        throttle = self._gate.throttle(RequestKey.for_list(self._config.page_size, None))
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

        def name_for(from_header: str | None) -> str:
            return self._display_name(from_header, task_id, name)

        async def perform(answered: Callable[[], None]) -> Download:
            return await self._transport.fetch_file(
                params, dest_dir, answered=answered, name_for=name_for
            )

        return await self._gate.send(key, "file", perform, can_wait=True)

    # -- lists -------------------------------------------------------------------------------

    async def _refresh_list(self) -> tuple[Task, ...]:
        stale = self._list_cache.stale()
        try:
            tasks = await self._fetch_all_pages(can_wait=stale is None)
        except SmscError as err:
            self._list_failure = (err, self._clock.now())
            if stale is None or not isinstance(err, SmscRateLimitedError | SmscBudgetError):
                raise
            self._observers.on_event("stale_hit")
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
            return await self._transport.fetch_page(params)

        async def send() -> TaskPage:
            return await self._gate.send(key, "list", perform, can_wait=can_wait)

        if self._page_flight.in_flight(key):
            self._observers.on_event("coalesced")
        return await self._page_flight.run(key, send)

    async def _refresh_shared(self) -> tuple[Task, ...]:
        """Refresh the list, or join the refresh in flight (counted once, as coalesced)."""
        if self._list_flight.in_flight("all"):
            self._observers.on_event("coalesced")
        return await self._list_flight.run("all", self._refresh_list)

    # -- files -------------------------------------------------------------------------------

    def _display_name(self, from_header: str | None, task_id: int | None, name: str | None) -> str:
        """Pick the name people see: the requested name, the task's file or name, SMSC's."""
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
