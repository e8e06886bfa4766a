"""Sends Telegram accepted that the database has not recorded yet, and the writes recording them.

What Telegram accepted is a fact: it is kept in memory until the database takes it, so a failed
write never makes a delivery due again, and the deliverer sends nothing new while writes fail.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import storage
from bot.alerts.model import AlertKind
from bot.clock import Clock
from bot.telegram.documents import TaskFiles
from storage import health as db_health

log = logging.getLogger(__name__)

# While writes fail, try them again this often (doubling), not on every wake-up.
WRITE_RETRY = timedelta(seconds=5)
WRITE_RETRY_CAP = timedelta(seconds=60)
_PROBE_KEY = "delivery.write_probe"


@dataclass(frozen=True, slots=True)
class Sent:
    """Telegram accepted the delivery; the database has not recorded it yet."""

    message_id: int
    at: datetime
    alert_id: int
    kind: AlertKind
    task_id: int | None


class SentLedger:
    """What was sent but is not yet recorded, and whether the database takes writes."""

    def __init__(self, db: storage.Database, files: TaskFiles, clock: Clock) -> None:
        self._db = db
        self._files = files
        self._clock = clock
        # Delivered, not yet recorded (the write failed): never sent again, written next pass.
        self._sent: dict[int, Sent] = {}
        self.write_failed = False  # a write failed in this pass: retry after a pause
        self.write_failures = 0  # passes in a row that found the database unwritable

    @property
    def unrecorded(self) -> int:
        """Deliveries Telegram accepted that the database has not recorded yet."""
        return len(self._sent)

    def holds(self, delivery_id: int) -> bool:
        """True when Telegram accepted this delivery and the database has not recorded it."""
        return delivery_id in self._sent

    def holds_alert(self, alert_id: int) -> bool:
        """True when one of the alert's deliveries is accepted but not recorded yet."""
        return any(s.alert_id == alert_id for s in self._sent.values())

    def writable(self) -> bool:
        """Whether the database took the last write (storage keeps that state)."""
        return db_health.write_health(self._db).writable

    def retry_pause(self) -> timedelta | None:
        """How long to wait before writing again (doubling per failed pass); None: no wait."""
        if not (self.write_failed or self._sent or not self.writable()):
            return None
        exponent = min(max(0, self.write_failures - 1), 6)
        pause: timedelta = min(WRITE_RETRY_CAP, WRITE_RETRY * (2**exponent))
        return pause

    async def record(self, write: Awaitable[object], ctx: Mapping[str, object]) -> bool:
        """Run one storage write; False (logged once per episode by storage) if it failed."""
        try:
            await write
        except Exception as err:
            self.write_failed = True
            if db_health.unwritable_reason(err) is None:  # not the disk: a bug worth a trace
                log.exception("could not record a delivery outcome", extra=ctx)
            return False
        return True

    def accepted(self, d: storage.PendingDelivery, message_id: int) -> None:
        """Telegram accepted `d`: from here on it is never sent again, whatever the disk."""
        now = self._clock.now()
        self._sent[d.delivery_id] = Sent(message_id, now, d.alert_id, d.kind, d.task_id)

    async def write(self, delivery_id: int, ctx: Mapping[str, object]) -> bool:
        """Record the accepted delivery; False (it stays here) while the database refuses."""
        sent = self._sent[delivery_id]
        written = storage.mark_delivered(self._db, delivery_id, sent.at, message_id=sent.message_id)
        if not await self.record(written, ctx):
            return False
        del self._sent[delivery_id]
        return True

    async def settle(self, on_recorded: Callable[[Sent], Awaitable[None]]) -> bool:
        """Write what Telegram accepted earlier; False while the database still refuses writes."""
        ok = True
        for delivery_id, sent in list(self._sent.items()):
            ctx = {"alert_id": sent.alert_id, "delivery_id": delivery_id}
            if not await self.write(delivery_id, ctx):
                ok = False
                break
            await on_recorded(sent)
        ok = ok and await self._files.flush()
        if ok and not self.writable():  # nothing to write, yet the last write failed: probe
            probe = storage.set_state(self._db, _PROBE_KEY, "ok", self._clock.now())
            ok = await self.record(probe, {})
        if not ok and not self.write_failures:
            log.warning(
                "alert deliveries held until the database takes writes (%d sent, unrecorded)",
                len(self._sent),
                extra={"event": "deliveries_held"},
            )
        elif ok and self.write_failures:
            log.warning("alert deliveries resume", extra={"event": "deliveries_resumed"})
        self.write_failures = 0 if ok else self.write_failures + 1
        return ok
