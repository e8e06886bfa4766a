"""The outbox's delivery loop: send pending alerts, mark each per chat, retry with backoff.

Deliveries were committed by the watcher before anything is sent; each is marked right after
Telegram accepts it, so a crash can at worst resend the one message that was in flight.
A completion alert's file is uploaded once (for its first chat) and resent by `file_id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from itertools import groupby

import aiosqlite
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.ext import ExtBot

import storage
from bot.clock import Clock
from bot.documents import FileFacts, FileTooLargeError, TaskFiles
from bot.metrics import Metrics, telegram_error_kind
from bot.render import (
    canceled_text,
    completion_caption,
    completion_without_file_text,
    failure_text,
    format_size,
    problem_text,
    recovered_text,
)
from bot.smsc.errors import SmscError, SmscNotFoundError
from bot.smsc.models import Task
from bot.telegram_limits import BACKGROUND, SendOptions, retry_after_seconds

log = logging.getLogger(__name__)

_GONE = ("chat not found", "group chat was deactivated", "bot was kicked", "user is deactivated")
_TOPIC_GONE = ("message thread not found", "topic_deleted", "topic closed")


class Outcome(enum.Enum):
    """How one delivery went, which decides what the alert's other chats do."""

    DELIVERED = "delivered"
    CHAT_PROBLEM = "chat"  # this chat only: the next one may still upload the file
    FILE_PROBLEM = "file"  # SMSC would not give the file: the whole alert waits


def backoff(attempts: int, *, base: float = 5.0, cap: float = 600.0) -> timedelta:
    """Exponential backoff: 5 s, 10 s, 20 s ... at most 10 minutes."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts)))


class Deliverer:
    """Sends what the outbox holds; one pass at a time, many chats concurrently."""

    def __init__(
        self,
        bot: ExtBot[SendOptions],
        db: aiosqlite.Connection,
        files: TaskFiles,
        clock: Clock,
        *,
        concurrency: int = 16,
        file_wait: timedelta = timedelta(minutes=30),
        max_attempts: int = 200,
        metrics: Metrics | None = None,
    ) -> None:
        self._bot = bot
        self._db = db
        self._files = files
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._file_wait = file_wait
        self._max_attempts = max_attempts
        self._metrics = metrics or Metrics()
        self._wake = asyncio.Event()
        self._stopping = False
        self._pass: asyncio.Task[int] | None = None
        # Alerts whose file we gave up on (never ready, too large), with the reason: their
        # other chats get the alert without it, without trying the download again.
        self._no_file: dict[int, str] = {}
        self.delivered = 0
        self.failed = 0

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
                next_due = await storage.next_due_at(self._db)
            except asyncio.CancelledError:
                raise
            except Exception:  # a database or programming error: never let the loop die
                log.exception("delivery pass failed; retrying shortly")
                next_due = self._clock.now() + timedelta(seconds=5)
            finally:
                self._pass = None
            await self._wait(None if next_due is None else next_due - self._clock.now())

    async def _wait(self, delay: timedelta | None) -> None:
        if self._wake.is_set() or self._stopping:
            return
        waiter = asyncio.ensure_future(self._wake.wait())
        if delay is not None and delay <= timedelta(0):
            return  # something is due already
        sleeper = (
            asyncio.ensure_future(self._clock.sleep(delay.total_seconds()))
            if delay is not None
            else None
        )
        pending = {waiter} | ({sleeper} if sleeper else set())
        try:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in pending:
                fut.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def request_stop(self) -> None:
        """Start no new pass; the one in flight goes on until stop() or cancel_pass()."""
        self._stopping = True
        self._wake.set()

    def cancel_pass(self) -> None:
        """Cut the pass in flight short (its unmarked deliveries go out after a restart)."""
        if self._pass is not None and not self._pass.done():
            self._pass.cancel()

    async def stop(self, grace: float) -> None:
        """Let the pass in flight finish within `grace` s (the lifecycle's), then stop."""
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

    async def deliver_due(self) -> int:
        """Send every due delivery once; return how many were handled."""
        handled = 0
        while not self._stopping:
            due = await storage.due_deliveries(self._db, self._clock.now(), limit=500)
            if not due:
                break
            for _, group in groupby(due, key=lambda d: d.alert_id):
                handled += await self._deliver_alert(list(group))
        return handled

    async def _deliver_alert(self, deliveries: list[storage.PendingDelivery]) -> int:
        if deliveries[0].kind != "completed":
            await self._gather(deliveries)
            return len(deliveries)
        # One chat uploads the file, the others then reuse its file_id. A chat-specific
        # failure (blocked, flood-limited) passes the upload on to the next chat; a file
        # problem (SMSC has no file yet) holds the whole alert back.
        for i, delivery in enumerate(deliveries):
            outcome = await self._deliver_one(delivery)
            if outcome is Outcome.DELIVERED:
                await self._gather(deliveries[i + 1 :])
                break
            if outcome is Outcome.FILE_PROBLEM:
                await self._postpone(deliveries[i + 1 :], delivery)
                break
        self._no_file.pop(deliveries[0].alert_id, None)
        return len(deliveries)

    async def _gather(self, deliveries: Iterable[storage.PendingDelivery]) -> None:
        await asyncio.gather(*(self._deliver_one(d) for d in deliveries))

    async def _postpone(
        self, deliveries: list[storage.PendingDelivery], like: storage.PendingDelivery
    ) -> None:
        """The file could not be had: the alert's other chats wait as long as the first."""
        retry_at = self._clock.now() + backoff(like.attempts, base=30.0, cap=300.0)
        for delivery in deliveries:
            await storage.mark_retry(
                self._db,
                delivery.delivery_id,
                error="waiting for the file",
                next_attempt_at=retry_at,
            )

    async def _deliver_one(self, d: storage.PendingDelivery) -> Outcome:
        """Send one delivery and record the outcome."""
        ctx = {"alert_id": d.alert_id, "chat_id": d.chat_id, "task_id": d.task_id}
        async with self._slots:
            return await self._attempt(d, self._clock.now(), ctx)

    async def _attempt(
        self, d: storage.PendingDelivery, now: datetime, ctx: Mapping[str, object]
    ) -> Outcome:
        try:
            message_id = await self._send(d, now)
        except TelegramError as err:
            self._metrics.telegram_errors.labels(telegram_error_kind(err)).inc()
            await self._telegram_failure(d, err, now, ctx)
            return Outcome.CHAT_PROBLEM
        except SmscError as err:
            return await self._file_problem(d, err, now, ctx)
        except FileTooLargeError as err:
            self._no_file[d.alert_id] = (
                f"it is {format_size(err.size)}, too large for Telegram even zipped "
                f"({format_size(err.compressed_size)})"
            )
            return await self._attempt(d, now, ctx)  # once more: as text, without the file
        except Exception as err:
            log.exception("unexpected delivery failure", extra=ctx)
            delay = backoff(d.attempts, base=60.0)
            await self._retry(d, f"unexpected: {type(err).__name__}", delay, ctx)
            return Outcome.CHAT_PROBLEM
        await self._delivered(d, message_id, ctx)
        return Outcome.DELIVERED

    async def _delivered(
        self, d: storage.PendingDelivery, message_id: int, ctx: Mapping[str, object]
    ) -> None:
        await storage.mark_delivered(
            self._db, d.delivery_id, self._clock.now(), message_id=message_id
        )
        self.delivered += 1
        self._metrics.alerts_delivered.labels(d.kind).inc()
        log.info("alert delivered", extra={**ctx, "event": "alert_delivered"})

    async def _telegram_failure(
        self,
        d: storage.PendingDelivery,
        err: TelegramError,
        now: datetime,
        ctx: Mapping[str, object],
    ) -> None:
        """Act on what Telegram said about this delivery (it was not delivered)."""
        text = str(err).lower()
        if isinstance(err, ChatMigrated):
            await storage.migrate_chat(self._db, d.chat_id, err.new_chat_id, now=now)
            log.warning(
                "group upgraded to supergroup %s; subscription moved. Add the new id to "
                "ALLOWED_CHAT_IDS so its commands work and it stays subscribed after a restart",
                err.new_chat_id,
                extra={**ctx, "event": "chat_migrated"},
            )
        elif isinstance(err, Forbidden) or (
            isinstance(err, BadRequest) and any(marker in text for marker in _GONE)
        ):
            await self._chat_gone(d, str(err), ctx)
        elif (
            isinstance(err, BadRequest)
            and d.thread_id is not None
            and any(marker in text for marker in _TOPIC_GONE)
        ):
            await storage.unsubscribe(self._db, d.chat_id, d.thread_id)
            await storage.mark_dropped(self._db, d.delivery_id, reason=str(err), now=now)
            log.warning("forum topic gone; unsubscribed it", extra={**ctx, "event": "topic_gone"})
        elif isinstance(err, RetryAfter):
            delay = timedelta(seconds=retry_after_seconds(err))
            await self._retry(d, "Telegram flood control", delay, ctx)
        elif isinstance(err, BadRequest):
            await self._retry(d, f"Telegram refused: {err}", backoff(d.attempts, base=60.0), ctx)
        else:  # NetworkError, TimedOut, Telegram's 5xx: an outage; wait it out
            await self._retry(d, f"Telegram unreachable: {err}", backoff(d.attempts), ctx)

    async def _send(self, d: storage.PendingDelivery, now: datetime) -> int:
        payload = d.payload
        if d.kind in ("smsc_problem", "smsc_recovered"):
            problem = str(payload.get("problem", ""))
            text = problem_text(problem) if d.kind == "smsc_problem" else recovered_text(problem)
            return await self._text(d, text)
        task = Task.model_validate(payload["task"])
        detected_at = datetime.fromisoformat(str(payload["detected_at"]))
        if d.kind == "failed":
            return await self._text(d, failure_text(task, detected_at))
        if d.kind == "canceled":
            return await self._text(d, canceled_text(task), quiet=True)

        no_file = self._no_file.get(d.alert_id)
        if no_file is not None:
            return await self._text(d, completion_without_file_text(task, detected_at, no_file))

        def caption(facts: FileFacts) -> str:
            return completion_caption(
                task,
                detected_at,
                size=facts.original_size,
                rows=facts.rows,
                compressed=facts.compressed,
            )

        message = await self._files.send(
            self._bot, d.chat_id, task, thread_id=d.thread_id, caption=caption, background=True
        )
        return message.message_id

    async def _text(self, d: storage.PendingDelivery, text: str, *, quiet: bool = False) -> int:
        message = await self._bot.send_message(
            d.chat_id,
            text,
            parse_mode=ParseMode.HTML,
            message_thread_id=d.thread_id,
            disable_notification=quiet,
            disable_web_page_preview=True,
            rate_limit_args=BACKGROUND,
        )
        return message.message_id

    async def _file_problem(
        self, d: storage.PendingDelivery, err: SmscError, now: datetime, ctx: Mapping[str, object]
    ) -> Outcome:
        """SMSC would not give us the file: wait (it may not be ready yet), then send without."""
        if now - d.created_at < self._file_wait:
            delay = backoff(d.attempts, base=30.0, cap=300.0)
            if err.retry_after:
                delay = max(delay, timedelta(seconds=err.retry_after))
            await self._retry(d, f"file not available: {err}", delay, ctx)
            return Outcome.FILE_PROBLEM
        self._no_file[d.alert_id] = (
            "SMSC still reports no file for this task"
            if isinstance(err, SmscNotFoundError)
            else str(err)
        )
        return await self._attempt(d, now, ctx)  # once more: as text, without the file

    async def _retry(
        self, d: storage.PendingDelivery, error: str, delay: timedelta, ctx: Mapping[str, object]
    ) -> None:
        self.failed += 1
        self._metrics.alerts_failed.labels(error.split(":", 1)[0][:40]).inc()  # our fixed prefixes
        if d.attempts + 1 >= self._max_attempts:
            await storage.mark_dropped(self._db, d.delivery_id, reason=error, now=self._clock.now())
            log.error(
                "alert dropped after %d attempts: %s",
                d.attempts + 1,
                error,
                extra={**ctx, "event": "alert_dropped"},
            )
            return
        await storage.mark_retry(
            self._db, d.delivery_id, error=error, next_attempt_at=self._clock.now() + delay
        )
        log.warning(
            "alert delivery failed, retrying in %.0f s: %s",
            delay.total_seconds(),
            error,
            extra={**ctx, "event": "alert_retry"},
        )

    async def _chat_gone(
        self, d: storage.PendingDelivery, error: str, ctx: Mapping[str, object]
    ) -> None:
        await storage.remove_chat(self._db, d.chat_id, now=self._clock.now(), reason=error)
        log.warning(
            "chat blocked the bot or is gone; unsubscribed: %s",
            error,
            extra={**ctx, "event": "chat_gone"},
        )
