"""The watcher: poll SMSC, diff task statuses against SQLite, and queue alerts in the outbox.

Detection and the alerts it implies are committed in one transaction before anything is sent
(`storage.record_poll`); `bot.delivery` sends them. The first poll on an empty database is a
baseline: tasks already finished then raise nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

import storage
from bot.clock import Clock
from bot.metrics import Metrics
from bot.smsc.client import SmscClient
from bot.smsc.errors import SmscAuthError, SmscError, SmscIpBlockedError
from bot.smsc.models import Task, TaskStatus

log = logging.getLogger(__name__)

LAST_POLL_KEY = "watcher.last_poll"
LAST_ERROR_KEY = "watcher.last_error"
PROBLEM_KEY = "watcher.problem"  # the persistent SMSC problem already reported, if any
FRESH_ENOUGH = 2.0  # seconds: a poll reuses a list only that recent (e.g. a concurrent /tasks)

_FINAL = frozenset(int(s) for s in TaskStatus if s.is_final)
_ALERT_KINDS: dict[TaskStatus, storage.AlertKind] = {
    TaskStatus.COMPLETED: "completed",
    TaskStatus.FAILED: "failed",
    TaskStatus.CANCELED: "canceled",
}


@dataclass(frozen=True, slots=True)
class Diff:
    """What one poll found: snapshots to store and alerts to queue."""

    changed: list[storage.TaskSnapshot]
    alerts: list[storage.NewAlert]


def task_payload(task: Task, detected_at: datetime) -> dict[str, Any]:
    """What an alert needs to render and to fetch the file later, as JSON."""
    return {"task": task.model_dump(mode="json"), "detected_at": detected_at.isoformat()}


def diff_tasks(
    known: Mapping[int, int],
    tasks: Iterable[Task],
    *,
    baseline_done: bool,
    notify_canceled: bool,
    now: datetime,
) -> Diff:
    """Compare SMSC's list with the stored statuses; pure, so it can be benchmarked."""
    changed: list[storage.TaskSnapshot] = []
    alerts: list[storage.NewAlert] = []
    for task in tasks:
        old = known.get(task.id)
        status = int(task.status)
        if old == status:
            continue
        changed.append(storage.TaskSnapshot(id=task.id, status=status, name=task.name))
        if not baseline_done:
            continue  # the first poll only learns what exists
        kind = _ALERT_KINDS.get(task.status)
        if kind is None or (kind == "canceled" and not notify_canceled):
            continue
        if old in _FINAL:
            continue  # a finished task that SMSC relabels (e.g. 2 -> 4) was already reported
        alerts.append(storage.NewAlert(kind=kind, task_id=task.id, payload=task_payload(task, now)))
    return Diff(changed, alerts)


class Watcher:
    """One poll at a time: list tasks through the shared client, record changes and alerts."""

    def __init__(
        self,
        smsc: SmscClient,
        db: aiosqlite.Connection,
        clock: Clock,
        *,
        notify_canceled: bool = True,
        on_alerts: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._smsc = smsc
        self._db = db
        self._clock = clock
        self._notify_canceled = notify_canceled
        self._on_alerts = on_alerts
        self._metrics = metrics
        self.polls = 0

    async def poll(self) -> Diff | None:
        """Poll once; return what was recorded, or None when SMSC failed (logged, not raised)."""
        now = self._clock.now()
        try:
            tasks = await self._smsc.list_tasks(max_age=FRESH_ENOUGH)
        except SmscError as err:
            if self._metrics is not None:
                self._metrics.polls.labels("error").inc()
            await self._record_failure(err, now)
            return None
        if self._metrics is not None:
            self._metrics.polls.labels("ok").inc()
            counts = Counter(t.status.label for t in tasks)
            for status in TaskStatus:
                self._metrics.tasks.labels(status.label).set(counts.get(status.label, 0))
        known = await storage.load_known_statuses(self._db)
        baseline = await storage.baseline_done(self._db)
        diff = diff_tasks(
            known, tasks, baseline_done=baseline, notify_canceled=self._notify_canceled, now=now
        )
        alerts = list(diff.alerts)
        recovered = await storage.get_state(self._db, PROBLEM_KEY)
        if recovered is not None:
            alerts.append(
                storage.NewAlert(
                    kind="smsc_recovered", task_id=None, payload={"problem": recovered}
                )
            )
        async with storage.transaction(self._db):  # alerts and the state they imply, at once
            await storage.record_poll(self._db, tasks=diff.changed, alerts=alerts, now=now)
            await storage.set_state(self._db, PROBLEM_KEY, None, now)
            await storage.set_state(self._db, LAST_POLL_KEY, now.isoformat(), now)
            await storage.set_state(self._db, LAST_ERROR_KEY, None, now)
        self.polls += 1
        if not baseline:
            log.info("baseline recorded: %d tasks", len(diff.changed), extra={"event": "baseline"})
        for alert in diff.alerts:
            log.info(
                "task %s",
                alert.kind,
                extra={"event": f"task_{alert.kind}", "task_id": alert.task_id},
            )
        if alerts and self._on_alerts is not None:
            self._on_alerts()
        return diff

    async def _record_failure(self, err: SmscError, now: datetime) -> None:
        log.warning("SMSC poll failed: %s", err, extra={"event": "poll_failed", "code": err.code})
        await storage.set_state(self._db, LAST_ERROR_KEY, str(err), now)
        if not isinstance(err, SmscAuthError | SmscIpBlockedError):
            return  # transient: timeouts, rate limits, 5xx — /status shows them, chats are spared
        if await storage.get_state(self._db, PROBLEM_KEY) is not None:
            return  # already reported once
        problem = str(err)
        alert = storage.NewAlert(kind="smsc_problem", task_id=None, payload={"problem": problem})
        async with storage.transaction(self._db):
            await storage.record_poll(
                self._db, tasks=[], alerts=[alert], now=now, mark_baseline=False
            )
            await storage.set_state(self._db, PROBLEM_KEY, problem, now)
        if self._on_alerts is not None:
            self._on_alerts()
