"""The watcher: poll SMSC, diff task statuses against SQLite, and queue alerts in the outbox.

Detection and the alerts it implies are committed in one transaction before anything is sent
(`storage.record_poll`); `bot.alerts.delivery` sends them. The first poll on an empty database is a
baseline: tasks already finished then raise nothing.

One outcome per task, ever (migration 0002): a task's FIRST final status (completed, canceled,
failed) is its outcome, recorded in `task_outcomes`, and only that observation may alert. SMSC's
lists come from replicas that can lag, so a later final label is never news: 2 -> 1 -> 2 is one
completion alert (the lag catching up), and 2 -> 1 -> 4 is one completion alert and no failure
alert (a finished task that SMSC relabels was already reported, as a direct 2 -> 4 always was).
The database decides: an alert is queued only for a task whose outcome row that same
transaction created.

Unusable list items (an id SQLite cannot store, no status, ...) are skipped by the parser; the
watcher logs them once per poll, counts them in `smsc_items_skipped` and keeps the last poll's
figure in `Watcher.last_skipped` (for /status).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

import storage
from bot.alerts.model import (
    Alert,
    AlertKind,
    SmscProblemAlert,
    SmscRecoveredAlert,
    task_alert,
    to_outbox,
)
from bot.clock import Clock
from bot.metrics import Metrics
from bot.smsc.client import SmscClient
from bot.smsc.errors import SmscAuthError, SmscError, SmscIpBlockedError
from bot.smsc.models import Task, TaskStatus
from bot.smsc.parsing import NO_SKIPS, SkipReport, collect_skipped

log = logging.getLogger(__name__)

_LAST_POLL_KEY = "watcher.last_poll"  # read through Watcher.last_poll
_PROBLEM_KEY = "watcher.problem"  # the persistent SMSC problem already reported, if any
FRESH_ENOUGH = 2.0  # seconds: a poll reuses a list only that recent (e.g. a concurrent /tasks)

_FINAL = frozenset(int(s) for s in TaskStatus if s.is_final)
_OUTCOME_KINDS: dict[TaskStatus, AlertKind] = {
    TaskStatus.COMPLETED: AlertKind.COMPLETED,
    TaskStatus.FAILED: AlertKind.FAILED,
    TaskStatus.CANCELED: AlertKind.CANCELED,
}


@dataclass(frozen=True, slots=True)
class Diff:
    """What one poll found: snapshots to store, first outcomes to record and alerts to queue."""

    changed: list[storage.TaskSnapshot]
    alerts: list[Alert]
    outcomes: list[storage.TaskOutcome] = field(default_factory=list)


def diff_tasks(
    known: Mapping[int, int],
    tasks: Iterable[Task],
    *,
    baseline_done: bool,
    notify_canceled: bool,
    now: datetime,
    finished: Collection[int] = frozenset(),
) -> Diff:
    """Compare SMSC's list with the stored statuses; pure, so it can be benchmarked.

    `finished` holds the tasks whose outcome is already recorded: whatever SMSC says of them
    now, they never alert again (see the module docstring).
    """
    changed: list[storage.TaskSnapshot] = []
    alerts: list[Alert] = []
    outcomes: list[storage.TaskOutcome] = []
    decided: set[int] = set()  # a list naming a task twice still yields one outcome
    for task in tasks:
        old = known.get(task.id)
        status = int(task.status)
        if old == status:
            continue
        changed.append(storage.TaskSnapshot(id=task.id, status=status, name=task.name))
        kind = _OUTCOME_KINDS.get(task.status)
        if kind is None or task.id in finished or task.id in decided or old in _FINAL:
            continue  # not finished, or finished before: a relabel or a lagging replica
        decided.add(task.id)
        # The first poll only learns what exists; a canceled task may be announced or not.
        alert = baseline_done and (kind is not AlertKind.CANCELED or notify_canceled)
        outcomes.append(storage.TaskOutcome(task_id=task.id, kind=kind, alerted=alert))
        if alert:
            alerts.append(task_alert(kind, task, now))
    return Diff(changed, alerts, outcomes)


class Watcher:
    """One poll at a time: list tasks through the shared client, record changes and alerts."""

    def __init__(
        self,
        smsc: SmscClient,
        db: storage.Database,
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
        self._one_at_a_time = asyncio.Lock()  # two polls would diff against the same snapshot
        self.polls = 0
        # The last poll's unusable list items, for /status; unchanged by a poll whose list was
        # parsed elsewhere (served from the cache or fetched by a concurrent /tasks).
        self.skipped: SkipReport = NO_SKIPS

    @property
    def last_skipped(self) -> int:
        """How many SMSC list items the last parsed poll skipped as unusable."""
        return self.skipped.count

    async def last_poll(self) -> datetime | None:
        """When a poll last succeeded, in any process sharing the database (None: never)."""
        raw = await storage.get_state(self._db, _LAST_POLL_KEY)
        return datetime.fromisoformat(raw) if raw else None

    async def poll(self) -> Diff | None:
        """Poll once; return what was recorded, or None when SMSC failed (logged, not raised)."""
        async with self._one_at_a_time:
            return await self._poll()

    async def _poll(self) -> Diff | None:
        now = self._clock.now()
        try:
            with collect_skipped() as collected:
                tasks = await self._smsc.list_tasks(max_age=FRESH_ENOUGH)
        except SmscError as err:
            if self._metrics is not None:
                self._metrics.polls.labels("error").inc()
            await self._record_failure(err, now)
            return None
        if collected.pages:
            self._note_skipped(collected.report)
        if self._metrics is not None:
            self._metrics.polls.labels("ok").inc()
            counts = Counter(t.status.label for t in tasks)
            for status in TaskStatus:
                self._metrics.tasks.labels(status.label).set(counts.get(status.label, 0))
        known = await storage.load_known_statuses(self._db)
        finished = await storage.load_finished_ids(self._db)
        baseline = await storage.baseline_done(self._db)
        diff = diff_tasks(
            known,
            tasks,
            baseline_done=baseline,
            notify_canceled=self._notify_canceled,
            now=now,
            finished=finished,
        )
        recovered = await storage.get_state(self._db, _PROBLEM_KEY)
        async with self._db.transaction():  # alerts and the state they imply, at once
            new = await storage.record_outcomes(self._db, diff.outcomes, now)
            diff = replace(diff, alerts=[a for a in diff.alerts if a.task_id in new])
            alerts = [to_outbox(a) for a in diff.alerts]
            if recovered is not None:
                alerts.append(to_outbox(SmscRecoveredAlert(recovered)))
            await storage.record_poll(self._db, tasks=diff.changed, alerts=alerts, now=now)
            await storage.set_state(self._db, _PROBLEM_KEY, None, now)
            await storage.set_state(self._db, _LAST_POLL_KEY, now.isoformat(), now)
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

    def _note_skipped(self, report: SkipReport) -> None:
        """One log line per poll for every unusable item of its list, however many pages."""
        self.skipped = report
        if self._metrics is not None:
            self._metrics.items_skipped.inc(report.count)
            self._metrics.last_poll_skipped.set(report.count)
        report.warn(log, "this poll")

    async def _record_failure(self, err: SmscError, now: datetime) -> None:
        log.warning("SMSC poll failed: %s", err, extra={"event": "poll_failed", "code": err.code})
        if not isinstance(err, SmscAuthError | SmscIpBlockedError):
            return  # transient: timeouts, rate limits, 5xx — /status shows them, chats are spared
        if await storage.get_state(self._db, _PROBLEM_KEY) is not None:
            return  # already reported once
        problem = str(err)
        alert = to_outbox(SmscProblemAlert(problem))
        async with self._db.transaction():
            await storage.record_poll(
                self._db, tasks=[], alerts=[alert], now=now, mark_baseline=False
            )
            await storage.set_state(self._db, _PROBLEM_KEY, problem, now)
        if self._on_alerts is not None:
            self._on_alerts()
