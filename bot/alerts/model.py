"""The alert contract: one typed value per kind of alert, and its form in the outbox.

The watcher builds these; `to_outbox` makes one the row `storage.record_poll` stores, and
`from_outbox` reads a stored delivery back into one for rendering. This module is the only
place that knows the JSON column's shape, which is the one the outbox has held from the start
(so rows already in a database read back unchanged):

    completed, failed, canceled     {"task": <Task as JSON>, "detected_at": <ISO 8601 time>}
    smsc_problem, smsc_recovered    {"problem": <what SMSC said, in our words>}

The kinds and delivery states themselves live in `storage.alert_kinds` (standard library only):
`storage/` imports nothing from `bot/`, while these payloads need `bot.smsc.models.Task`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from bot.smsc.models import Task
from storage.alert_kinds import OUTCOME_KINDS, AlertKind, DeliveryState
from storage.outbox import NewAlert, PendingDelivery

__all__ = [
    "OUTCOME_KINDS",
    "Alert",
    "AlertKind",
    "AlertPayloadError",
    "CanceledAlert",
    "CompletedAlert",
    "DeliveryState",
    "FailedAlert",
    "SmscProblemAlert",
    "SmscRecoveredAlert",
    "TaskAlert",
    "from_outbox",
    "from_payload",
    "stored_task_name",
    "task_alert",
    "to_outbox",
    "to_payload",
]


class AlertPayloadError(ValueError):
    """A stored alert cannot be read as its kind's typed alert."""


@dataclass(frozen=True, slots=True)
class _AboutTask:
    """A task reached its outcome; `detected_at` is when the watcher saw it."""

    kind: ClassVar[AlertKind]
    task: Task
    detected_at: datetime

    @property
    def task_id(self) -> int:
        """The task the alert is about."""
        return self.task.id


@dataclass(frozen=True, slots=True)
class CompletedAlert(_AboutTask):
    """A task completed: its file goes with the alert."""

    kind: ClassVar[AlertKind] = AlertKind.COMPLETED


@dataclass(frozen=True, slots=True)
class FailedAlert(_AboutTask):
    """A task failed."""

    kind: ClassVar[AlertKind] = AlertKind.FAILED


@dataclass(frozen=True, slots=True)
class CanceledAlert(_AboutTask):
    """A task was canceled (sent quietly)."""

    kind: ClassVar[AlertKind] = AlertKind.CANCELED


@dataclass(frozen=True, slots=True)
class _AboutSmsc:
    """SMSC's health changed; `problem` is the error's text (safe to show)."""

    kind: ClassVar[AlertKind]
    problem: str

    @property
    def task_id(self) -> None:
        """No task: the alert is about SMSC itself."""
        return None


@dataclass(frozen=True, slots=True)
class SmscProblemAlert(_AboutSmsc):
    """SMSC refuses us for good (credentials, IP block) until someone acts."""

    kind: ClassVar[AlertKind] = AlertKind.SMSC_PROBLEM


@dataclass(frozen=True, slots=True)
class SmscRecoveredAlert(_AboutSmsc):
    """SMSC answers again after the reported `problem`."""

    kind: ClassVar[AlertKind] = AlertKind.SMSC_RECOVERED


TaskAlert = CompletedAlert | FailedAlert | CanceledAlert
Alert = TaskAlert | SmscProblemAlert | SmscRecoveredAlert

_TASK_ALERTS: dict[AlertKind, type[TaskAlert]] = {
    cls.kind: cls for cls in (CompletedAlert, FailedAlert, CanceledAlert)
}
_SMSC_ALERTS: dict[AlertKind, type[SmscProblemAlert | SmscRecoveredAlert]] = {
    cls.kind: cls for cls in (SmscProblemAlert, SmscRecoveredAlert)
}


def task_alert(kind: AlertKind, task: Task, detected_at: datetime) -> TaskAlert:
    """The alert announcing `task`'s outcome `kind` (one of OUTCOME_KINDS)."""
    return _TASK_ALERTS[kind](task, detected_at)


def to_payload(alert: Alert) -> dict[str, Any]:
    """The alert's JSON object for the outbox's payload column."""
    if isinstance(alert, _AboutTask):
        return {
            "task": alert.task.model_dump(mode="json"),
            "detected_at": alert.detected_at.isoformat(),
        }
    return {"problem": alert.problem}


def to_outbox(alert: Alert) -> NewAlert:
    """The outbox row that records `alert`."""
    return NewAlert(kind=alert.kind, task_id=alert.task_id, payload=to_payload(alert))


def from_payload(kind: AlertKind | str, payload: Mapping[str, Any]) -> Alert:
    """Read a stored payload back; AlertPayloadError when it does not hold a `kind` alert."""
    try:
        kind = AlertKind(kind)
    except ValueError:
        raise AlertPayloadError(f"unknown alert kind {kind!r}") from None
    task_alert_cls = _TASK_ALERTS.get(kind)
    if task_alert_cls is None:
        # As lenient as rendering always was: a missing or odd problem text is still an alert.
        return _SMSC_ALERTS[kind](str(payload.get("problem", "")))
    try:
        task = Task.model_validate(payload["task"])
        detected_at = datetime.fromisoformat(str(payload["detected_at"]))
    except (KeyError, TypeError, ValueError) as err:  # pydantic's ValidationError included
        raise AlertPayloadError(f"{type(err).__name__} in a stored {kind} alert") from err
    return task_alert_cls(task, detected_at)


def from_outbox(delivery: PendingDelivery) -> Alert:
    """The typed alert a pending delivery carries (AlertPayloadError if it cannot be read)."""
    return from_payload(delivery.kind, delivery.payload)


def stored_task_name(payload: Mapping[str, Any]) -> str | None:
    """The task's name from a payload that may not read as a whole alert, if it holds one."""
    task = payload.get("task")
    name = task.get("name") if isinstance(task, Mapping) else None
    return name if isinstance(name, str) else None
