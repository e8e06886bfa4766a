"""One leader among replicas: it alone runs the watcher, the delivery loop and getUpdates.

On PostgreSQL any number of bot processes share the database. Every one answers commands
(webhook mode behind a load balancer); the leader (`storage.election`: an advisory lock on a
connection of its own) also runs the *duties*: the SMSC watcher, the alert delivery loop and, in
polling mode, getUpdates (Telegram allows one consumer). The others stand by and try to take
over every LEADER_RETRY seconds, so a killed leader is replaced within a few seconds.

Why an outbox row is never sent twice nor dropped across a failover: the duties start only
once the lock is held, and deliveries are marked in the database right after each send, so a
new leader takes exactly the rows still pending (the sends in flight when the old leader was
killed are the only possible repeats). A leader that loses its lock connection cannot be sure
it still leads: it stops the whole process (the orchestrator restarts it as a standby).

That alone leaves a gap: an old leader whose lock connection died unnoticed (a partition, a
long pause) keeps sending for a few seconds next to the new one. So the lock comes with a
fencing token (`storage.fencing`): taking it begins a term whose epoch, stored in the database,
is greater than every earlier one; the deliverer claims each delivery for that epoch right
before its send, and the claim succeeds only while the epoch is still the current one. A
superseded leader's claim fails, so it sends nothing more (and steps down at its next check);
one that cannot reach the database cannot claim, so it cannot send. A leader that cannot begin
a term gives the lock back rather than lead unfenced.

On SQLite there is nothing to elect: the file lock (`storage.instance_lock`) already keeps a
second process from starting, and the duties run at start, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge

import storage
from bot.clock import Clock
from bot.runtime.lifecycle import Lifecycle
from bot.texts.i18n import SOURCE, Translator
from storage.db import STORAGE_ERRORS
from storage.election import LeaderInfo, PgLeaderLock, current_leader, record_leader
from storage.fencing import begin_term, current_epoch

log = logging.getLogger(__name__)

Duty = Callable[[contextlib.AsyncExitStack], Awaitable[None]]


class Leadership:
    """Runs the duties while this replica holds the leader lock (see the module docstring)."""

    def __init__(
        self,
        lock: PgLeaderLock,
        db: storage.Database,
        *,
        clock: Clock,
        lifecycle: Lifecycle,
        retry: float,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.lock = lock
        self.replica = lock.replica
        self.duties: list[Duty] = []
        self.leading = False
        self.since: datetime | None = None
        self.epoch: int | None = None  # this replica's term (the fencing token) while it leads
        self._db = db
        self._clock = clock
        self._lifecycle = lifecycle
        self._retry = retry
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._gauge: Gauge | None = None
        self._since_gauge: Gauge | None = None
        if registry is not None:
            self._gauge = Gauge(
                "bot_leader", "1 while this replica leads", ["replica"], registry=registry
            )
            self._since_gauge = Gauge(
                "bot_leader_since_seconds",
                "Unix time this replica became the leader (0 on a standby)",
                ["replica"],
                registry=registry,
            )
            self._publish()

    def _publish(self) -> None:
        if self._gauge is not None and self._since_gauge is not None:
            self._gauge.labels(self.replica).set(1 if self.leading else 0)
            since = self.since.timestamp() if self.leading and self.since else 0
            self._since_gauge.labels(self.replica).set(since)

    def start(self) -> None:
        """Begin the election loop in the background."""
        self._lifecycle.on_stop(self._stop.set)
        self._task = self._lifecycle.spawn(self._run(), name="leader-election")

    async def stop(self) -> None:
        """End the loop: the duties close (within the stop deadline), the lock is given up."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            await self._lifecycle.bounded(
                task, within=self._lifecycle.remaining(), what="the leader's duties"
            )
        await self.lock.close()

    async def leader(self) -> LeaderInfo | None:
        """Who leads now (this replica or another), for /status."""
        if self.leading:
            return LeaderInfo(self.replica, self.since)
        try:
            return await current_leader(self._db)
        except STORAGE_ERRORS:
            return None

    async def _sleep(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=self._retry)

    async def _run(self) -> None:
        log.info(
            "replica %s: standing by for leadership",
            self.replica,
            extra={"event": "standby", "replica": self.replica},
        )
        while not self._stop.is_set():
            if await self.lock.try_lead():
                if await self._begin_term():
                    await self._lead()
                    return
                await self.lock.close()  # no term, no fence: give the lock to someone who can
            await self._sleep()

    async def _begin_term(self) -> bool:
        try:
            self.epoch = await begin_term(self._db, self.replica, self._clock.now())
        except STORAGE_ERRORS as err:
            log.warning("could not begin a term of leadership; standing by: %s", err)
            return False
        return True

    async def _superseded(self) -> bool:
        """Tell whether a newer term began (the lock check missed it); unreadable: not known."""
        try:
            return await current_epoch(self._db) != self.epoch
        except STORAGE_ERRORS:
            return False  # a database we cannot read cannot be claimed from either

    async def _lead(self) -> None:
        self.leading = True
        self.since = self._clock.now()
        self._publish()
        log.warning(
            "replica %s is now the leader (term %s): watcher, delivery and polling run here",
            self.replica,
            self.epoch,
            extra={"event": "leader", "replica": self.replica, "epoch": self.epoch},
        )
        try:
            await record_leader(self._db, self.replica, self.since)
        except STORAGE_ERRORS as err:
            log.warning("could not record the leader: %s", err)
        lost = False
        async with contextlib.AsyncExitStack() as stack:
            for duty in self.duties:
                await duty(stack)
            while not self._stop.is_set():
                await self._sleep()
                if self._stop.is_set():
                    break
                if not await self.lock.holds() or await self._superseded():
                    lost = True
                    break
        self.leading = False
        self._publish()
        if lost:
            # Another replica may lead already: stop at once rather than risk a second sender.
            self._lifecycle.request_stop("lost the leader lock")


def leader_line(
    info: LeaderInfo | None, replica: str, now: datetime, t: Translator = SOURCE
) -> str:
    """The /status line about leadership (plain text; the caller escapes it)."""
    if info is None:
        return t.gettext("Leader: none right now (this replica {replica} stands by)").format(
            replica=replica
        )
    since = ""
    if info.since is not None:
        seconds = max(0, int((now - info.since).total_seconds()))
        since = " " + t.gettext("since {when} UTC ({seconds} s)").format(
            when=f"{info.since:%Y-%m-%d %H:%M:%S}", seconds=seconds
        )
    if info.replica == replica:
        return t.gettext("Leader: this replica ({replica})").format(replica=replica) + since
    return t.gettext("Leader: {leader}{since}; this replica ({replica}) stands by").format(
        leader=info.replica, since=since, replica=replica
    )
