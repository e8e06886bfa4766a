"""Telegram file_id of each task's completion document: upload once, re-send by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .db import Database
from .encoding import to_db_time


@dataclass(frozen=True, slots=True)
class CachedFile:
    """A document Telegram already holds for a task, with what its caption says about it."""

    task_id: int
    file_id: str
    filename: str
    size: int  # bytes as sent (the zip, when compressed)
    compressed: bool
    original_size: int  # bytes of the CSV itself
    rows: int | None  # CSV data rows, None when not counted


async def get_cached_file(db: Database, task_id: int) -> CachedFile | None:
    """Return the cached document of the task, or None if it was never uploaded."""
    async with (
        db.locked(),
        db.execute(
            "SELECT task_id, file_id, filename, size, compressed, original_size, rows"
            " FROM task_files WHERE task_id = ?",
            (task_id,),
        ) as cur,
    ):
        row = await cur.fetchone()
    if row is None:
        return None
    return CachedFile(
        task_id=int(row["task_id"]),
        file_id=str(row["file_id"]),
        filename=str(row["filename"]),
        size=int(row["size"]),
        compressed=bool(row["compressed"]),
        original_size=int(row["original_size"]),
        rows=None if row["rows"] is None else int(row["rows"]),
    )


async def put_cached_file(db: Database, cached: CachedFile, now: datetime) -> None:
    """Remember the task's uploaded document, replacing any earlier one."""
    async with db.transaction():
        await db.execute(
            "INSERT INTO task_files"
            " (task_id, file_id, filename, size, compressed, original_size, rows, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (task_id) DO UPDATE SET file_id = excluded.file_id,"
            "  filename = excluded.filename, size = excluded.size,"
            "  compressed = excluded.compressed, original_size = excluded.original_size,"
            "  rows = excluded.rows, created_at = excluded.created_at",
            (
                cached.task_id,
                cached.file_id,
                cached.filename,
                cached.size,
                int(cached.compressed),
                cached.original_size,
                cached.rows,
                to_db_time(now),
            ),
        )
