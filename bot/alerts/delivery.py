"""The outbox's delivery loop: send pending alerts, mark each per chat, retry with backoff.

Deliveries were committed by the watcher before anything is sent; each is marked right after
Telegram accepts it, so a crash can at worst resend the one message that was in flight.
A completion alert's file is uploaded once (for its first chat) and resent by `file_id`.

Every delivery takes one path, `_attempt`: send (full alert; without its file when SMSC will
not give it; a minimal text when Telegram refuses the content), then record the outcome. What
Telegram accepted is a fact kept in memory (`_sent`) until the database takes it: a failed write
never makes a delivery due again, and nothing new is sent while the database takes no writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby

from telegram.error import ChatMigrated, RetryAfter, TelegramError
from telegram.ext import ExtBot

import storage
from bot.alerts.fallback import minimal_text
from bot.alerts.model import (
    Alert,
    AlertKind,
    AlertPayloadError,
    CanceledAlert,
    CompletedAlert,
    FailedAlert,
    SmscProblemAlert,
    SmscRecoveredAlert,
    from_outbox,
)
from bot.clock import Clock
from bot.metrics import Metrics, telegram_error_kind
from bot.smsc.errors import SmscError, SmscNotFoundError
from bot.telegram.documents import FileFacts, FileTooLargeError, TaskFiles
from bot.telegram.errors import TelegramFailure, classify
from bot.telegram.pacing import BACKGROUND, SendOptions, retry_after_seconds
from bot.texts.error_words import translate_error
from bot.texts.i18n import DEFAULT_LANGUAGE, Language, Translator, parse_language, translator
from bot.texts.render import (
    canceled_text,
    completion_caption,
    completion_without_file_text,
    failure_text,
    problem_text,
    recovered_text,
)
from storage import health as db_health
from storage.db import STORAGE_ERRORS
from storage.fencing import Claim, claim_delivery
from storage.outbox import count_pending_for_alert

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """How one delivery went, which decides what the alert's other chats do."""

    DELIVERED = "delivered"
    CHAT_PROBLEM = "chat"  # this chat only: the next one may still upload the file
    FILE_PROBLEM = "file"  # SMSC would not give the file: the whole alert waits
    HELD = "held"  # not tried: the database takes no writes, so nothing new goes out


class _UnrenderableError(Exception):
    """The stored alert cannot be made into its message (a payload the renderer refuses)."""


@dataclass(frozen=True, slots=True)
class _Sent:
    """Telegram accepted the delivery; the database has not recorded it yet."""

    message_id: int
    at: datetime
    alert_id: int
    kind: AlertKind
    task_id: int | None


# While writes fail, try them again this often (doubling), not on every wake-up.
WRITE_RETRY = timedelta(seconds=5)
WRITE_RETRY_CAP = timedelta(seconds=60)
_PROBE_KEY = "delivery.write_probe"


def backoff(attempts: int, *, base: float = 5.0, cap: float = 600.0) -> timedelta:
    """Exponential backoff: 5 s, 10 s, 20 s ... at most 10 minutes."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts)))


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
        self._bot = bot
        self._db = db
        self._files = files
        self._clock = clock
        self._language = language  # BOT_LANGUAGE: chats that chose none
        self._slots = asyncio.Semaphore(concurrency)
        self._file_wait = file_wait
        self._max_attempts = max_attempts
        self._metrics = metrics or Metrics()
        # The deliverer is what holds alerts back while writes fail: it exports that state.
        self._metrics.watch_database(
            lambda: db_health.database_problem(db), lambda: db_health.write_health(db).failures
        )
        self._wake = asyncio.Event()
        db_health.write_health(db).on_failing.append(self.wake)  # probe until writes work
        self._stopping = False
        self._pass: asyncio.Task[int] | None = None
        # Delivered, not yet recorded (the write failed): never sent again, written next pass.
        self._sent: dict[int, _Sent] = {}
        # Alerts whose file we gave up on (never ready, too large), with the reason: their
        # other chats get the alert without it, without trying the download again.
        # Why a completion goes without its file, said in each chat's language at its delivery.
        self._no_file: dict[int, Callable[[Translator], str]] = {}
        # Alerts whose full form Telegram refused (too long, unparsable): minimal text instead.
        self._minimal: dict[int, str] = {}
        self._write_failed = False  # a write failed in this pass: retry after a pause
        self._write_failures = 0  # passes in a row that found the database unwritable
        # PostgreSQL leaders: the term every send is claimed for (None: SQLite, no fence).
        self._epoch: int | None = None
        self.superseded = False  # a newer term began: this process sends nothing more
        self.delivered = 0
        self.failed = 0

    @property
    def unrecorded(self) -> int:
        """Deliveries Telegram accepted that the database has not recorded yet."""
        return len(self._sent)

    def fence(self, epoch: int) -> None:
        """Send only what can be claimed for the term `epoch` (see `storage.fencing`)."""
        self._epoch = epoch
        self.superseded = False

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
        if self._write_failed or self._sent or not self._writable():
            exponent = min(max(0, self._write_failures - 1), 6)
            pause: timedelta = min(WRITE_RETRY_CAP, WRITE_RETRY * (2**exponent))
            return self._clock.now() + pause
        return await storage.next_due_at(self._db)

    async def _wait(self, delay: timedelta | None) -> None:
        if self._wake.is_set() or self._stopping:
            return
        if delay is not None and delay <= timedelta(0):
            return  # something is due already (checked before any waiter exists to leak)
        waiter = asyncio.ensure_future(self._wake.wait())
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
        if self._sent and not await self._settle():
            log.error(
                "%d delivered alert(s) could not be recorded: the database takes no writes; "
                "they may be sent again after a restart",
                len(self._sent),
                extra={"event": "alerts_unrecorded"},
            )

    def _writable(self) -> bool:
        return db_health.write_health(self._db).writable

    async def _record(self, write: Awaitable[object], ctx: Mapping[str, object]) -> bool:
        """Run one storage write; False (logged once per episode by storage) if it failed."""
        try:
            await write
        except Exception as err:
            self._write_failed = True
            if db_health.unwritable_reason(err) is None:  # not the disk: a bug worth a trace
                log.exception("could not record a delivery outcome", extra=ctx)
            return False
        return True

    async def _settle(self) -> bool:
        """Write what Telegram accepted earlier; False while the database still refuses writes."""
        ok = True
        for delivery_id, sent in list(self._sent.items()):
            ctx = {"alert_id": sent.alert_id, "delivery_id": delivery_id}
            written = storage.mark_delivered(
                self._db, delivery_id, sent.at, message_id=sent.message_id
            )
            if not await self._record(written, ctx):
                ok = False
                break
            del self._sent[delivery_id]
            await self._forget_if_settled(sent.alert_id, sent.kind, sent.task_id)
        ok = ok and await self._files.flush()
        if ok and not self._writable():  # nothing to write, yet the last write failed: probe
            probe = storage.set_state(self._db, _PROBE_KEY, "ok", self._clock.now())
            ok = await self._record(probe, {})
        if not ok and not self._write_failures:
            log.warning(
                "alert deliveries held until the database takes writes (%d sent, unrecorded)",
                len(self._sent),
                extra={"event": "deliveries_held"},
            )
        elif ok and self._write_failures:
            log.warning("alert deliveries resume", extra={"event": "deliveries_resumed"})
        self._write_failures = 0 if ok else self._write_failures + 1
        return ok

    async def deliver_due(self) -> int:
        """Send every due delivery once; return how many were handled."""
        self._write_failed = False
        if not await self._settle():
            return 0  # the database takes no writes: send nothing new
        handled = 0
        tried: set[int] = set()
        while not self._stopping and self._writable() and not self.superseded:
            due = await storage.due_deliveries(self._db, self._clock.now(), limit=500)
            # Once per pass (a failed write leaves a row due), never what Telegram accepted.
            skip = tried | self._sent.keys()
            fresh = [d for d in due if d.delivery_id not in skip]
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
                outcome = await self._deliver_one(delivery)
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
        if any(s.alert_id == alert_id for s in self._sent.values()):
            return
        if await count_pending_for_alert(self._db, alert_id):
            return
        self._no_file.pop(alert_id, None)
        self._minimal.pop(alert_id, None)
        if kind is AlertKind.COMPLETED and task_id is not None:
            await self._files.release(task_id)

    async def _gather(self, deliveries: Iterable[storage.PendingDelivery]) -> None:
        await asyncio.gather(*(self._deliver_one(d) for d in deliveries))

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
            if not await self._record(retry, {"alert_id": delivery.alert_id}):
                return

    async def _deliver_one(self, d: storage.PendingDelivery) -> Outcome:
        """Send one delivery and record the outcome (unless the database takes no writes)."""
        ctx = {"alert_id": d.alert_id, "chat_id": d.chat_id, "task_id": d.task_id}
        async with self._slots:
            if not self._writable() or d.delivery_id in self._sent or self.superseded:
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
                self._metrics.telegram_errors.labels(telegram_error_kind(err)).inc()
                if _classify(d, err) is not TelegramFailure.CONTENT_REFUSED:
                    await self._telegram_failure(d, err, now, ctx)
                    return Outcome.CHAT_PROBLEM
                if minimal:
                    await self._drop(d, f"Telegram refused even the minimal alert: {err}", ctx)
                    return Outcome.CHAT_PROBLEM
                self._use_minimal(d, f"Telegram refused it: {err}", ctx)
            except _UnrenderableError as err:
                self._use_minimal(d, str(err), ctx)
            except SmscError as err:
                if now - d.created_at < self._file_wait:
                    await self._wait_for_file(d, err, ctx)
                    return Outcome.FILE_PROBLEM
                self._no_file[d.alert_id] = _no_file_reason(err)
            except FileTooLargeError as err:
                self._no_file[d.alert_id] = _too_large_reason(err)
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
        if self._epoch is None:
            return Claim.CLAIMED
        try:
            claim = await claim_delivery(self._db, d.delivery_id, self._epoch)
        except Exception as err:  # no write, no send: the held-sends logic takes over
            self._write_failed = True
            if db_health.unwritable_reason(err) is None:
                log.exception("could not claim a delivery", extra=ctx)
            return None
        if claim is Claim.SUPERSEDED and not self.superseded:
            self.superseded = True
            log.error(
                "another replica leads now (term %d is over): this one sends no more alerts",
                self._epoch,
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
        now = self._clock.now()
        self._sent[d.delivery_id] = _Sent(message_id, now, d.alert_id, d.kind, d.task_id)
        self.delivered += 1
        self._metrics.alerts_delivered.labels(d.kind).inc()
        log.info("alert delivered", extra={**ctx, "event": "alert_delivered"})
        if await self._record(
            storage.mark_delivered(self._db, d.delivery_id, now, message_id=message_id), ctx
        ):
            del self._sent[d.delivery_id]

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
            if await self._record(
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
            if await self._record(storage.unsubscribe(self._db, d.chat_id, d.thread_id), ctx):
                await self._drop(d, str(err), ctx, event="topic_gone")
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
        no_file = self._no_file.get(d.alert_id)
        try:
            alert = from_outbox(d)
            text = _render(alert, no_file(t) if no_file else None, t)
        except (KeyError, TypeError, ValueError) as err:  # AlertPayloadError included
            cause = err.__cause__ if isinstance(err, AlertPayloadError) else err
            raise _UnrenderableError(
                f"its stored data cannot be shown ({type(cause or err).__name__})"
            ) from err
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
        self.failed += 1
        self._metrics.alerts_failed.labels(error.split(":", 1)[0][:40]).inc()  # our fixed prefixes
        if d.attempts + 1 >= self._max_attempts:
            if await self._record(
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
        if await self._record(retry, ctx):
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
        if await self._record(drop, ctx):
            log.warning("alert dropped: %s", reason, extra={**ctx, "event": event})

    async def _chat_gone(
        self, d: storage.PendingDelivery, error: str, ctx: Mapping[str, object]
    ) -> None:
        removed = storage.remove_chat(self._db, d.chat_id, now=self._clock.now(), reason=error)
        if await self._record(removed, ctx):
            log.warning(
                "chat blocked the bot or is gone; unsubscribed: %s",
                error,
                extra={**ctx, "event": "chat_gone"},
            )


def _classify(d: storage.PendingDelivery, err: TelegramError) -> TelegramFailure:
    """What Telegram's refusal of this delivery means (topics only when it went to one)."""
    return classify(err, in_topic=d.thread_id is not None)


def _no_file_reason(err: SmscError) -> Callable[[Translator], str]:
    if isinstance(err, SmscNotFoundError):
        return lambda t: t.gettext("SMSC still reports no file for this task")
    text = str(err)
    return lambda t: translate_error(text, t)


def _too_large_reason(err: FileTooLargeError) -> Callable[[Translator], str]:
    return lambda t: t.gettext(
        "it is {size}, too large for Telegram even zipped ({zipped})"
    ).format(size=t.format_size(err.size), zipped=t.format_size(err.compressed_size))


def _render(alert: Alert, no_file: str | None, t: Translator) -> str | None:
    """The alert's text, or None for a completion sent with its file (captioned)."""
    match alert:
        case SmscProblemAlert():
            return problem_text(translate_error(alert.problem, t), t)
        case SmscRecoveredAlert():
            return recovered_text(translate_error(alert.problem, t), t)
        case FailedAlert():
            return failure_text(alert.task, alert.detected_at, t)
        case CanceledAlert():
            return canceled_text(alert.task, t)
        case CompletedAlert() if no_file is not None:
            return completion_without_file_text(alert.task, alert.detected_at, no_file, t)
        case CompletedAlert():
            return None
