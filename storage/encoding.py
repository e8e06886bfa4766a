"""How values are stored: times as fixed-width UTC text, "no forum topic" as 0."""

from __future__ import annotations

from datetime import UTC, datetime


def to_db_time(moment: datetime) -> str:
    """Encode an aware datetime as the fixed-width UTC text every table stores."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: storage needs an aware (UTC) datetime")
    # Fixed width (always microseconds, always Z) so that text order is time order in SQL.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_db_time(text: str) -> datetime:
    """Decode a stored time into an aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


def thread_to_db(thread_id: int | None) -> int:
    """Encode "no forum topic" as 0, which (unlike NULL) a UNIQUE key treats as one value."""
    return 0 if thread_id is None else thread_id


def thread_from_db(value: int) -> int | None:
    """Decode a stored thread id (0 means no topic)."""
    return None if value == 0 else value
