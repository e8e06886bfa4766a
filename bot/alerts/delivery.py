"""The outbox's delivery loop: send pending alerts, mark each per chat, retry with backoff.

Deliveries were committed by the watcher before anything is sent; each is marked right after
Telegram accepts it, so a crash can at worst resend the one message that was in flight.
A completion alert's file is uploaded once (for its first chat) and resent by `file_id`.

This module schedules: passes, wake-ups, the order of an alert's chats, the stop. One delivery's
attempt and its fallbacks are `bot.alerts.sender`'s; what Telegram accepted and the database has
not recorded yet is `bot.alerts.ledger`'s, and nothing new is sent while the database takes no
writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import groupby

from telegram.ext import ExtBot

import storage
from bot.aio import wait_first
from bot.alerts.ledger import Sent, SentLedger
from bot.alerts.model import AlertKind
from bot.alerts.sender import AlertSender, Outcome, backoff
from bot.clock import Clock
from bot.metrics import Metrics
from bot.telegram.documents import TaskFiles
from bot.telegram.pacing import SendOptions
from bot.texts.i18n import DEFAULT_LANGUAGE, Language
from storage import health as db_health
from storage.outbox import count_pending_for_alert

log = logging.getLogger(__name__)


class Deliverer:
    """Sends what the outbox holds; one pass at a time, many chats concurrently."""

    def __init__(
        self,
        bot: ExtBot[SendOptions],
        db: storage.Database,
        files: TaskFiles,
        clock: Clock,
        *,
        concurrency: int = 16,
        file_wait: timedelta = timedelta(minutes=30),
        max_attempts: int = 200,
        metrics: Metrics | None = None,
        language: Language = DEFAULT_LANGUAGE,
    ) -> None:
        self._db = db
        self._files = files
        self._clock = clock
        metrics = metrics or Metrics()
        # The deliverer is what holds alerts back while writes fail: it exports that state.
        metrics.watch_database(
            lambda: db_health.database_problem(db), lambda: db_health.write_health(db).failures
        )
        self._wake = asyncio.Event()
        db_health.write_health(db).on_failing.append(self.wake)  # probe until writes work
        self._stopping = False
        self._pass: asyncio.Task[int] | None = None
        self._ledger = SentLedger(db, files, clock)
        self._sender = AlertSender(
            bot,
            db,
            files,
            clock,
            ledger=self._ledger,
            metrics=metrics,
            concurrency=concurrency,
            file_wait=file_wait,
            max_attempts=max_attempts,
            language=language,  # BOT_LANGUAGE: chats that chose none
        )

    @property
    def unrecorded(self) -> int:
        """Deliveries Telegram accepted that the database has not recorded yet."""
        return self._ledger.unrecorded

    @property
    def write_failures(self) -> int:
        """Passes in a row that found the database unwritable."""
        return self._ledger.write_failures

    @property
    def superseded(self) -> bool:
        """A newer term began: this process sends nothing more."""
        return self._sender.superseded

    @property
    def delivered(self) -> int:
        """Deliveries Telegram accepted in this process."""
        return self._sender.delivered

    @property
    def failed(self) -> int:
        """Delivery attempts that failed in this process."""
        return self._sender.failed

    def fence(self, epoch: int) -> None:
        """Send only what can be claimed for the term `epoch` (see `storage.fencing`)."""
        self._sender.epoch = epoch
        self._sender.superseded = False

    def wake(self) -> None:
        """New alerts were recorded: start a pass now."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until stopped; sleeps until the next retry is due or new alerts arrive."""
        while not self._stopping:
            self._wake.clear()
            try:
                self._pass = asyncio.ensure_future(self.deliver_due())
                await self._pass
                next_due = await self._next_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database or programming error: never let the loop die
                log.exception("delivery pass failed; retrying shortly")
                next_due = self._clock.now() + timedelta(seconds=5)
            finally:
                self._pass = None
            await self._wait(None if next_due is None else next_due - self._clock.now())

    async def _next_due(self) -> datetime | None:
        if self.superseded:
            return None  # only a stop (the leadership's) ends this wait
        pause = self._ledger.retry_pause()
        if pause is not None:
            return self._clock.now() + pause
        return await storage.next_due_at(self._db)

    async def _wait(self, delay: timedelta | None) -> None:
        if self._wake.is_set() or self._stopping:
            return
        if delay is not None and delay <= timedelta(0):
            return  # something is due already (checked before any waiter exists to leak)
        sleep = () if delay is None else (self._clock.sleep(delay.total_seconds()),)
        await wait_first(self._wake.wait(), *sleep)

    def request_stop(self) -> None:
        """Start no new pass; the one in flight goes on until stop() or cancel_pass()."""
        self._stopping = True
        self._wake.set()

    def cancel_pass(self) -> None:
        """Cut the pass in flight short (its unmarked deliveries go out after a restart)."""
        if self._pass is not None and not self._pass.done():
            self._pass.cancel()

    async def stop(self, grace: float) -> None:
        """Let the pass in flight finish within `grace` s (the lifecycle's), record what it sent."""
        self._stopping = True
        self._wake.set()
        current = self._pass
        if current is not None and not current.done():
            try:
                await asyncio.wait_for(asyncio.shield(current), grace)
            except (TimeoutError, asyncio.CancelledError):
                current.cancel()
                with contextlib.suppress(BaseException):
                    await current
        if self._ledger.unrecorded and not await self._settle():
            log.error(
                "%d delivered alert(s) could not be recorded: the database takes no writes; "
                "they may be sent again after a restart",
                self._ledger.unrecorded,
                extra={"event": "alerts_unrecorded"},
            )

    async def _settle(self) -> bool:
        """Write what Telegram accepted earlier; False while the database still refuses writes."""

        async def recorded(sent: Sent) -> None:
            await self._forget_if_settled(sent.alert_id, sent.kind, sent.task_id)

        return await self._ledger.settle(recorded)

    async def deliver_due(self) -> int:
        """Send every due delivery once; return how many were handled."""
        self._ledger.write_failed = False
        if not await self._settle():
            return 0  # the database takes no writes: send nothing new
        handled = 0
        tried: set[int] = set()
        while not self._stopping and self._ledger.writable() and not self.superseded:
            due = await storage.due_deliveries(self._db, self._clock.now(), limit=500)
            # Once per pass (a failed write leaves a row due), never what Telegram accepted.
            fresh = [
                d
                for d in due
                if d.delivery_id not in tried and not self._ledger.holds(d.delivery_id)
            ]
            if not fresh:
                break
            tried.update(d.delivery_id for d in fresh)
            for _, group in groupby(fresh, key=lambda d: d.alert_id):
                handled += await self._deliver_alert(list(group))
        return handled

    async def _deliver_alert(self, deliveries: list[storage.PendingDelivery]) -> int:
        first = deliveries[0]
        if first.kind is not AlertKind.COMPLETED:
            await self._gather(deliveries)
        else:
            # One chat uploads the file, the others then reuse its file_id. A chat-specific
            # failure (blocked, flood-limited) passes the upload on to the next chat; a file
            # problem (SMSC has no file yet) holds the whole alert back.
            for i, delivery in enumerate(deliveries):
                outcome = await self._sender.deliver(delivery)
                if outcome is Outcome.DELIVERED:
                    await self._gather(deliveries[i + 1 :])
                    break
                if outcome is Outcome.FILE_PROBLEM:
                    await self._postpone(deliveries[i + 1 :], delivery)
                    break
                if outcome is Outcome.HELD:
                    break
        await self._forget_if_settled(first.alert_id, first.kind, first.task_id)
        return len(deliveries)

    async def _forget_if_settled(self, alert_id: int, kind: AlertKind, task_id: int | None) -> None:
        """Once none of the alert's deliveries is pending, drop what was kept for it."""
        if self._ledger.holds_alert(alert_id):
            return
        if await count_pending_for_alert(self._db, alert_id):
            return
        self._sender.forget(alert_id)
        if kind is AlertKind.COMPLETED and task_id is not None:
            await self._files.release(task_id)

    async def _gather(self, deliveries: Iterable[storage.PendingDelivery]) -> None:
        await asyncio.gather(*(self._sender.deliver(d) for d in deliveries))

    async def _postpone(
        self, deliveries: list[storage.PendingDelivery], like: storage.PendingDelivery
    ) -> None:
        """The file could not be had: the alert's other chats wait as long as the first."""
        retry_at = self._clock.now() + backoff(like.attempts, base=30.0, cap=300.0)
        for delivery in deliveries:
            retry = storage.mark_retry(
                self._db,
                delivery.delivery_id,
                error="waiting for the file",
                next_attempt_at=retry_at,
            )
            if not await self._ledger.record(retry, {"alert_id": delivery.alert_id}):
                return
