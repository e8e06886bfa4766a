"""Telegram file_id of each task's completion document: upload once, re-send by id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .db import Connection, locked, to_db_time, transaction


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


async def get_cached_file(conn: Connection, task_id: int) -> CachedFile | None:
    """Return the cached document of the task, or None if it was never uploaded."""
    async with (
        locked(conn),
        conn.execute(
            "SELECT task_id, file_id, filename, size, compressed, original_size, rows"
            " FROM task_files WHERE task_id = ?",
            (task_id,),
        ) as cur,
    ):
        row = await cur.fetchone()
    if row is None:
        return None
    return CachedFile(
        task_id=int(row[0]),
        file_id=str(row[1]),
        filename=str(row[2]),
        size=int(row[3]),
        compressed=bool(row[4]),
        original_size=int(row[5]),
        rows=None if row[6] is None else int(row[6]),
    )


async def put_cached_file(conn: Connection, cached: CachedFile, now: datetime) -> None:
    """Remember the task's uploaded document, replacing any earlier one."""
    async with transaction(conn):
        await conn.execute(
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


async def delete_cached_file(conn: Connection, task_id: int) -> bool:
    """Forget the task's document (e.g. Telegram rejected the file_id); return True if known."""
    async with transaction(conn):
        cur = await conn.execute("DELETE FROM task_files WHERE task_id = ?", (task_id,))
        return cur.rowcount > 0
