"""A task list with its provenance: when it was fetched, and why it is not fresh if it is not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.smsc.errors import SmscError
from bot.smsc.models import Task


@dataclass(frozen=True, slots=True)
class TaskListing:
    """What `SmscClient.task_listing()` answers: the tasks, and how far to trust them.

    `fresh` is True when the list comes from a request that just succeeded (or from the short
    cache behind it). Otherwise `failure` says why the last attempt gave nothing newer, at
    `failed_at`, and `next_attempt_at` when the budget lets the next one go (None: at the next
    request, nothing holds it back).
    """

    tasks: tuple[Task, ...]
    fetched_at: datetime | None
    fresh: bool
    failure: SmscError | None = None
    failed_at: datetime | None = None
    next_attempt_at: datetime | None = None

    def task(self, task_id: int) -> Task | None:
        """The task with this id, or None."""
        return next((t for t in self.tasks if t.id == task_id), None)
