"""The control panel's verbs on the simulated SMSC account: tasks, file sizes and faults.

Input comes from the JSON API, so everything is checked here and refused with a `BadInput`
whose message is safe to show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bot.smsc.models import TaskStatus
from bot.smsc.simulator import Fault, SimTask, SimulatorState

JSON = dict[str, Any]

STATUS_WORDS: dict[str, TaskStatus] = {
    "pending": TaskStatus.PENDING,
    "running": TaskStatus.RUNNING,
    "completed": TaskStatus.COMPLETED,
    "canceled": TaskStatus.CANCELED,
    "failed": TaskStatus.FAILED,
}
MAX_NAME = 200
MAX_SIZE_MB = 100  # the 60 MB case is the point; more only costs memory and time
MAX_ROWS = 100_000
HANG_SECONDS = 30.0
# A fault stays until cleared: queue enough for days of polling (each request takes one).
STANDING_FAULT_COUNT = 10_000
WRONG_PASSWORD = "not-the-password-the-bot-has"  # noqa: S105 - makes the simulator refuse


@dataclass(frozen=True)
class FaultKind:
    """A fault the panel offers."""

    key: str
    label: str
    fault: Fault | None  # None: not a queued fault (wrong credentials)


FAULTS: dict[str, FaultKind] = {
    f.key: f
    for f in (
        FaultKind("http_500", "HTTP 500 from SMSC", Fault("http_500")),
        FaultKind("error_9", "SMSC error 9 (too many requests)", Fault("error", code=9)),
        FaultKind("wrong_credentials", "wrong credentials (SMSC error 2)", None),
        FaultKind("hang", f"SMSC hangs for {HANG_SECONDS:.0f} s", Fault("slow", HANG_SECONDS)),
    )
}


class BadInputError(ValueError):
    """A request the panel cannot do; the message says why."""


def _status_word(status: TaskStatus | int) -> str:
    for word, value in STATUS_WORDS.items():
        if value == status:
            return word
    return str(int(status))


def task_json(task: SimTask) -> JSON:
    """A simulator task as the JSON API shows it."""
    status = task.status
    label = status.label if isinstance(status, TaskStatus) else f"status {int(status)}"
    return {
        "id": task.id,
        "name": task.name,
        "status": _status_word(status),
        "label": label,
        "file": task.file,
        "rows": task.rows,
        "size_bytes": task.size_bytes,
        "created": task.created,
        "started": task.time,
    }


def _name(body: JSON) -> str:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadInputError("name: give the task a name (text)")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise BadInputError(f"name: at most {MAX_NAME} characters")
    return name


def _status(value: object) -> TaskStatus:
    if not isinstance(value, str) or value.lower() not in STATUS_WORDS:
        raise BadInputError(f"status: one of {', '.join(STATUS_WORDS)}")
    return STATUS_WORDS[value.lower()]


def _number(body: JSON, key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInputError(f"{key}: a number")
    if not low < value <= high:
        raise BadInputError(f"{key}: more than {low:g} and at most {high:g}")
    return float(value)


def _check_keys(body: JSON, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadInputError(
            f"unknown field(s): {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )


class SmscControls:
    """Changes the simulator's state on the visitor's behalf."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self.fault: FaultKind | None = None
        self._password = state.password

    def snapshot(self) -> JSON:
        """Every task (newest first) and the fault in force."""
        self.state.tick()  # show scripted transitions that are due, as a request would see them
        tasks = sorted(self.state.tasks.values(), key=lambda t: t.id, reverse=True)
        return {
            "tasks": [task_json(t) for t in tasks],
            "fault": None
            if self.fault is None
            else {"kind": self.fault.key, "label": self.fault.label},
            "faults": [{"kind": f.key, "label": f.label} for f in FAULTS.values()],
            "statuses": list(STATUS_WORDS),
        }

    def add_task(self, body: JSON) -> SimTask:
        """Create a task from {"name", "status"?, "size_mb"?, "rows"?}."""
        _check_keys(body, {"name", "status", "size_mb", "rows"})
        name = _name(body)
        status = _status(body["status"]) if "status" in body else TaskStatus.PENDING
        size_mb = _number(body, "size_mb", 0, MAX_SIZE_MB)
        rows = _number(body, "rows", 0, MAX_ROWS)
        task_id = self.state.next_id()
        task = SimTask(
            task_id,
            name,
            status,
            file=f"task_{task_id}.csv",
            rows=int(rows) if rows is not None else 300,
            size_bytes=None if size_mb is None else int(size_mb * 1_000_000),
        )
        return self.state.add_task(task)

    def change_task(self, task_id: int, body: JSON) -> SimTask:
        """Apply {"status"?, "size_mb"?} to a task."""
        _check_keys(body, {"status", "size_mb"})
        task = self.state.tasks.get(task_id)
        if task is None:
            raise LookupError(f"no task {task_id}")
        if not body:
            raise BadInputError("nothing to change: give status and/or size_mb")
        status = _status(body["status"]) if "status" in body else None
        size_mb = _number(body, "size_mb", 0, MAX_SIZE_MB)
        if size_mb is not None:
            task.size_bytes = int(size_mb * 1_000_000)
        if status is not None:
            self.state.set_status(task_id, status)
        return task

    def set_fault(self, kind: object) -> FaultKind:
        """Make SMSC misbehave the given way until `clear_fault` (replacing any other fault)."""
        if not isinstance(kind, str) or kind not in FAULTS:
            raise BadInputError(f"kind: one of {', '.join(FAULTS)}")
        self.clear_fault()
        chosen = FAULTS[kind]
        if chosen.fault is None:
            self.state.password = WRONG_PASSWORD
        else:
            self.state.inject(chosen.fault, count=STANDING_FAULT_COUNT)
        self.fault = chosen
        return chosen

    def clear_fault(self) -> None:
        """SMSC behaves again: queued faults dropped, held requests answered, password back."""
        self.state.clear_faults()
        self.state.release_parked()
        self.state.password = self._password
        # Forget the strikes the wrong password caused, so they never add up to an IP block.
        self.state.failed_logins.clear()
        self.state.blocked_until.clear()
        self.fault = None
