"""One delivery's attempt: send the alert in the best form it can take, record how it went.

Every delivery takes one path, `AlertSender.deliver`: send (the full alert; without its file when
SMSC will not give it; a minimal text when Telegram refuses the content), then record the
outcome through the ledger (`bot.alerts.ledger`). What a Telegram error means is
`bot.telegram.errors`' to say; this module acts on it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from telegram.error import ChatMigrated, RetryAfter, TelegramError
from telegram.ext import ExtBot

import storage
from bot.alerts.fallback import minimal_text
from bot.alerts.forms import (
    NoFileReason,
    UnrenderableError,
    no_file_reason,
    rendered,
    too_large_reason,
)
from bot.alerts.ledger import SentLedger
from bot.alerts.model import AlertKind, CompletedAlert
from bot.clock import Clock
from bot.metrics import Metrics
from bot.smsc.errors import SmscError
from bot.telegram.documents import TaskFiles
from bot.telegram.errors import TelegramFailure, classify
from bot.telegram.pacing import BACKGROUND, SendOptions, retry_after_seconds
from bot.telegram.task_csv import FileFacts, FileTooLargeError
from bot.texts.i18n import Language, Translator, parse_language, translator
from bot.texts.watcher_alerts import completion_caption
from storage import health as db_health
from storage.db import STORAGE_ERRORS
from storage.fencing import Claim, claim_delivery

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """How one delivery went, which decides what the alert's other chats do."""

    DELIVERED = "delivered"
    CHAT_PROBLEM = "chat"  # this chat only: the next one may still upload the file
    FILE_PROBLEM = "file"  # SMSC would not give the file: the whole alert waits
    HELD = "held"  # not tried: the database takes no writes, so nothing new goes out


def backoff(attempts: int, *, base: float = 5.0, cap: float = 600.0) -> timedelta:
    """Exponential backoff: 5 s, 10 s, 20 s ... at most 10 minutes."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts)))


class AlertSender:
    """Sends one delivery at a time (up to `concurrency` at once) and records its outcome."""

    def __init__(
        self,
        bot: ExtBot[SendOptions],
        db: storage.Database,
        files: TaskFiles,
        clock: Clock,
        *,
        ledger: SentLedger,
        metrics: Metrics,
        concurrency: int,
        file_wait: timedelta,
        max_attempts: int,
        language: Language,
    ) -> None:
        self._bot = bot
        self._db = db
        self._files = files
        self._clock = clock
        self._ledger = ledger
        self._metrics = metrics
        self._language = language  # BOT_LANGUAGE: chats that chose none
        self._slots = asyncio.Semaphore(concurrency)
        self._file_wait = file_wait
        self._max_attempts = max_attempts
        # Alerts whose file we gave up on (never ready, too large), with the reason: their
        # other chats get the alert without it, without trying the download again.
        # Why a completion goes without its file, said in each chat's language at its delivery.
        self._no_file: dict[int, NoFileReason] = {}
        # Alerts whose full form Telegram refused (too long, unparsable): minimal text instead.
        self._minimal: dict[int, str] = {}
        # PostgreSQL leaders: the term every send is claimed for (None: SQLite, no fence).
        self.epoch: int | None = None
        self.superseded = False  # a newer term began: this process sends nothing more
        self.delivered = 0
        self.failed = 0

    def forget(self, alert_id: int) -> None:
        """The alert is settled: drop the fallbacks chosen for it."""
        self._no_file.pop(alert_id, None)
        self._minimal.pop(alert_id, None)

    async def deliver(self, d: storage.PendingDelivery) -> Outcome:
        """Send one delivery and record the outcome (unless the database takes no writes)."""
        ctx = {"alert_id": d.alert_id, "chat_id": d.chat_id, "task_id": d.task_id}
        async with self._slots:
            if not self._ledger.writable() or self._ledger.holds(d.delivery_id) or self.superseded:
                return Outcome.HELD
            return await self._attempt(d, ctx)

    async def _attempt(self, d: storage.PendingDelivery, ctx: Mapping[str, object]) -> Outcome:
        """The one attempt path: send the alert in the best form it can take, record how it went.

        A round may fall back to a smaller form (without the file, then the minimal text) and
        try again at once; three rounds cover every fallback.
        """
        now = self._clock.now()
        for _ in range(3):
            claim = await self._claim(d, ctx)
            if claim is not Claim.CLAIMED:  # settled meanwhile: the next chat may go on
                return Outcome.CHAT_PROBLEM if claim is Claim.SETTLED else Outcome.HELD
            minimal = d.alert_id in self._minimal
            try:
                message_id = await self._send(d, minimal=minimal)
            except TelegramError as err:
                self._metrics.telegram_error(err)
                if _classify(d, err) is not TelegramFailure.CONTENT_REFUSED:
                    await self._telegram_failure(d, err, now, ctx)
                    return Outcome.CHAT_PROBLEM
                if minimal:
                    await self._drop(d, f"Telegram refused even the minimal alert: {err}", ctx)
                    return Outcome.CHAT_PROBLEM
                self._use_minimal(d, f"Telegram refused it: {err}", ctx)
            except UnrenderableError as err:
                self._use_minimal(d, str(err), ctx)
            except SmscError as err:
                if now - d.created_at < self._file_wait:
                    await self._wait_for_file(d, err, ctx)
                    return Outcome.FILE_PROBLEM
                self._no_file[d.alert_id] = no_file_reason(err)
            except FileTooLargeError as err:
                self._no_file[d.alert_id] = too_large_reason(err)
            except Exception as err:
                log.exception("unexpected delivery failure", extra=ctx)
                delay = backoff(d.attempts, base=60.0)
                await self._retry(d, f"unexpected: {type(err).__name__}", delay, ctx)
                return Outcome.CHAT_PROBLEM
            else:
                await self._delivered(d, message_id, ctx)
                return Outcome.DELIVERED
        await self._retry(d, "unexpected: no form of the alert went out", backoff(d.attempts), ctx)
        return Outcome.CHAT_PROBLEM

    async def _claim(self, d: storage.PendingDelivery, ctx: Mapping[str, object]) -> Claim | None:
        """Claim the delivery for this term right before its send; None: the write failed."""
        if self.epoch is None:
            return Claim.CLAIMED
        try:
            claim = await claim_delivery(self._db, d.delivery_id, self.epoch)
        except Exception as err:  # no write, no send: the held-sends logic takes over
            self._ledger.write_failed = True
            if db_health.unwritable_reason(err) is None:
                log.exception("could not claim a delivery", extra=ctx)
            return None
        if claim is Claim.SUPERSEDED and not self.superseded:
            self.superseded = True
            log.error(
                "another replica leads now (term %d is over): this one sends no more alerts",
                self.epoch,
                extra={**ctx, "event": "leader_superseded"},
            )
        return claim

    def _use_minimal(self, d: storage.PendingDelivery, why: str, ctx: Mapping[str, object]) -> None:
        if d.alert_id not in self._minimal:  # once per alert, not once per chat
            log.warning(
                "alert cannot be sent as it is (%s); sending a minimal text instead",
                why,
                extra={**ctx, "event": "alert_minimal"},
            )
        self._minimal[d.alert_id] = why

    async def _delivered(
        self, d: storage.PendingDelivery, message_id: int, ctx: Mapping[str, object]
    ) -> None:
        # In memory first: from here on this delivery is never sent again, whatever the disk.
        self._ledger.accepted(d, message_id)
        self.delivered += 1
        self._metrics.alerts_delivered.labels(d.kind).inc()
        log.info("alert delivered", extra={**ctx, "event": "alert_delivered"})
        await self._ledger.write(d.delivery_id, ctx)

    async def _telegram_failure(
        self,
        d: storage.PendingDelivery,
        err: TelegramError,
        now: datetime,
        ctx: Mapping[str, object],
    ) -> None:
        """Act on what Telegram said about this delivery (it was not delivered)."""
        failure = _classify(d, err)
        if isinstance(err, ChatMigrated):
            if await self._ledger.record(
                storage.migrate_chat(self._db, d.chat_id, err.new_chat_id, now=now), ctx
            ):
                log.warning(
                    "group upgraded to supergroup %s; subscription moved. Add the new id to "
                    "ALLOWED_CHAT_IDS so its commands work and it stays subscribed after a restart",
                    err.new_chat_id,
                    extra={**ctx, "event": "chat_migrated"},
                )
        elif failure is TelegramFailure.GONE:
            await self._chat_gone(d, str(err), ctx)
        elif failure is TelegramFailure.TOPIC_GONE and d.thread_id is not None:
            unsubscribed = storage.unsubscribe(self._db, d.chat_id, d.thread_id)
            if await self._ledger.record(unsubscribed, ctx):
                await self._drop(
                    d, f"forum topic deleted, unsubscribed: {err}", ctx, event="topic_gone"
                )
        elif failure is TelegramFailure.TOPIC_CLOSED:
            # Admins may reopen it: the topic stays subscribed (a reopened topic gets alerts
            # again); this alert is dropped, as retrying cannot help while the topic is closed.
            await self._drop(d, f"forum topic closed: {err}", ctx, event="topic_closed")
        elif isinstance(err, RetryAfter):
            delay = timedelta(seconds=retry_after_seconds(err))
            await self._retry(d, "Telegram flood control", delay, ctx)
        elif failure in (TelegramFailure.REFUSED, TelegramFailure.CONTENT_REFUSED):
            await self._retry(d, f"Telegram refused: {err}", backoff(d.attempts, base=60.0), ctx)
        else:  # UNREACHABLE (network, timeouts, 5xx) or OTHER: wait it out
            await self._retry(d, f"Telegram unreachable: {err}", backoff(d.attempts), ctx)

    async def _translator(self, chat_id: int) -> Translator:
        """The chat's chosen language, else BOT_LANGUAGE (also when the choice cannot be read)."""
        try:
            chosen = parse_language(await storage.get_chat_language(self._db, chat_id))
        except STORAGE_ERRORS as err:
            log.warning("could not read chat %s's language, using the default: %s", chat_id, err)
            chosen = None
        return translator(chosen or self._language)

    async def _send(self, d: storage.PendingDelivery, *, minimal: bool) -> int:
        t = await self._translator(d.chat_id)
        quiet = d.kind is AlertKind.CANCELED
        if minimal:
            plain = minimal_text(d.kind, d.task_id, d.payload, t)
            return await self._text(d, plain, quiet=quiet, html=False)
        alert, text = rendered(d, self._no_file.get(d.alert_id), t)
        if text is not None or not isinstance(alert, CompletedAlert):
            return await self._text(d, text or "", quiet=quiet)
        task, detected_at = alert.task, alert.detected_at

        def caption(facts: FileFacts) -> str:
            return completion_caption(
                task,
                detected_at,
                size=facts.original_size,
                rows=facts.rows,
                compressed=facts.compressed,
                t=t,
            )

        message = await self._files.send(
            self._bot,
            d.chat_id,
            task,
            thread_id=d.thread_id,
            caption=caption,
            background=True,
            keep=True,  # through retries until the alert is settled: one download
        )
        return message.message_id

    async def _text(
        self, d: storage.PendingDelivery, text: str, *, quiet: bool = False, html: bool = True
    ) -> int:
        # HTML is the application's default (bot/runtime/app.py); the minimal fallback is plain
        # on purpose.
        plain: dict[str, None] = {} if html else {"parse_mode": None}
        message = await self._bot.send_message(
            d.chat_id,
            text,
            message_thread_id=d.thread_id,
            disable_notification=quiet,
            disable_web_page_preview=True,
            rate_limit_args=BACKGROUND,
            **plain,
        )
        return message.message_id

    async def _wait_for_file(
        self, d: storage.PendingDelivery, err: SmscError, ctx: Mapping[str, object]
    ) -> None:
        """SMSC would not give us the file: wait (it may not be ready yet), then send without."""
        delay = backoff(d.attempts, base=30.0, cap=300.0)
        if err.retry_after:
            delay = max(delay, timedelta(seconds=err.retry_after))
        await self._retry(d, f"file not available: {err}", delay, ctx)

    async def _retry(
        self, d: storage.PendingDelivery, error: str, delay: timedelta, ctx: Mapping[str, object]
    ) -> None:
        """Try the delivery again after `delay`, or drop it after `max_attempts`."""
        self.failed += 1
        self._metrics.alerts_failed.labels(error.split(":", 1)[0][:40]).inc()  # our fixed prefixes
        if d.attempts + 1 >= self._max_attempts:
            if await self._ledger.record(
                storage.mark_dropped(self._db, d.delivery_id, reason=error, now=self._clock.now()),
                ctx,
            ):
                log.error(
                    "alert dropped after %d attempts: %s",
                    d.attempts + 1,
                    error,
                    extra={**ctx, "event": "alert_dropped"},
                )
            return
        retry = storage.mark_retry(
            self._db, d.delivery_id, error=error, next_attempt_at=self._clock.now() + delay
        )
        if await self._ledger.record(retry, ctx):
            log.warning(
                "alert delivery failed, retrying in %.0f s: %s",
                delay.total_seconds(),
                error,
                extra={**ctx, "event": "alert_retry"},
            )

    async def _drop(
        self,
        d: storage.PendingDelivery,
        reason: str,
        ctx: Mapping[str, object],
        *,
        event: str = "alert_dropped",
    ) -> None:
        drop = storage.mark_dropped(self._db, d.delivery_id, reason=reason, now=self._clock.now())
        if await self._ledger.record(drop, ctx):
            log.warning("alert dropped: %s", reason, extra={**ctx, "event": event})

    async def _chat_gone(
        self, d: storage.PendingDelivery, error: str, ctx: Mapping[str, object]
    ) -> None:
        removed = storage.remove_chat(self._db, d.chat_id, now=self._clock.now(), reason=error)
        if await self._ledger.record(removed, ctx):
            log.warning(
                "chat blocked the bot or is gone; unsubscribed: %s",
                error,
                extra={**ctx, "event": "chat_gone"},
            )


def _classify(d: storage.PendingDelivery, err: TelegramError) -> TelegramFailure:
    """What Telegram's refusal of this delivery means (topics only when it went to one)."""
    return classify(err, in_topic=d.thread_id is not None)
