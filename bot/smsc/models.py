"""What SMSC's deferred-tasks API returns, as typed values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

# SMSC shows times in Moscow time (UTC+3, no DST since 2014) as "dd.mm.yyyy hh:mm:ss".
SMSC_TZ = timezone(timedelta(hours=3), "MSK")
SMSC_TIME_FORMAT = "%d.%m.%Y %H:%M:%S"
# SQLite's INTEGER is a signed 64-bit value: a larger task id cannot be stored, so a list item
# with one is skipped (bot/smsc/parsing.py) instead of failing every poll.
MAX_TASK_ID = 2**63 - 1


class TaskStatus(IntEnum):
    """A deferred task's status, as SMSC numbers it."""

    PENDING = 0
    RUNNING = 1
    COMPLETED = 2
    CANCELED = 3
    FAILED = 4

    @property
    def label(self) -> str:
        """The status in words, for people."""
        return _LABELS[self]

    @property
    def icon(self) -> str:
        """A one-glyph marker for lists."""
        return _ICONS[self]

    @property
    def is_final(self) -> bool:
        """True once the task can no longer change."""
        return self in (TaskStatus.COMPLETED, TaskStatus.CANCELED, TaskStatus.FAILED)


_LABELS = {
    TaskStatus.PENDING: "pending",
    TaskStatus.RUNNING: "in progress",
    TaskStatus.COMPLETED: "completed",
    TaskStatus.CANCELED: "canceled",
    TaskStatus.FAILED: "failed",
}
_ICONS = {
    TaskStatus.PENDING: "⏳",
    TaskStatus.RUNNING: "🔄",
    TaskStatus.COMPLETED: "✅",
    TaskStatus.CANCELED: "🚫",
    TaskStatus.FAILED: "❌",
}


class Task(BaseModel):
    """One deferred task from `get_list`.

    `created`/`time` are parsed when SMSC uses its usual format; the raw text is always kept so a
    format we do not know is shown as SMSC sent it instead of being lost. Tasks built by
    `bot.smsc.parsing` also hold only text that SQLite and Telegram can take (no lone
    surrogate, no NUL, at most `parsing.MAX_TEXT` characters per field).
    """

    model_config = ConfigDict(frozen=True)

    id: int = Field(ge=0, le=MAX_TASK_ID)
    name: str
    status: TaskStatus
    created_raw: str = ""
    time_raw: str = ""
    created: datetime | None = None
    time: datetime | None = None
    file: str = ""


@dataclass(frozen=True, slots=True)
class Download:
    """A task file saved on our disk."""

    path: Path
    size: int
    filename: str  # sanitised, safe to show and to use as a document name
