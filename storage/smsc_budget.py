"""The SMSC request budget's rows (table `smsc_budget`, migration 0003) and their one operation.

The policy (what may be sent, what an error costs) lives with the SMSC client
(`bot.smsc.budget`); storage only runs it atomically: `SqliteBudgetStore.transact` reads every
row, lets the policy decide, and writes its changes in one `BEGIN IMMEDIATE` transaction, so two
processes on one database can never both take the last slot.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from .db import DB_ERRORS, Database
from .encoding import from_db_time, to_db_time

T = TypeVar("T")


class BudgetUnavailableError(Exception):
    """The budget could not be read or written (database closed, locked, disk full, ...)."""


@dataclass(frozen=True, slots=True)
class BudgetRecord:
    """One fact of the budget; `id` is None until it is stored."""

    scope: str
    event: str
    at: datetime
    until: datetime
    id: int | None = None


@dataclass(frozen=True, slots=True)
class BudgetChange(Generic[T]):
    """What a decision returns: its result and the rows to add, replace (by id) and delete."""

    result: T
    add: Sequence[BudgetRecord] = ()
    replace: Sequence[BudgetRecord] = ()
    delete: Collection[int] = field(default_factory=tuple)


Decide = Callable[[Sequence[BudgetRecord]], BudgetChange[T]]


def clamp_future(records: Sequence[BudgetRecord], now: datetime) -> list[BudgetRecord]:
    """Move rows stamped after `now` (the wall clock stepped back) to now, keeping durations.

    Without this a step back of 10 minutes would keep a 60 s window shut for 11 minutes; a row
    "from the future" is treated as written just now, so it still counts in full.
    """
    moved: list[BudgetRecord] = []
    for record in records:
        if record.at > now:
            shift = record.at - now
            moved.append(replace(record, at=now, until=record.until - shift))
    return moved


class SqliteBudgetStore:
    """The budget in the bot's database (one connection, shared with the rest).

    Either engine: on PostgreSQL `transaction()` holds the write advisory lock, so every replica's
    decision is serialised exactly as `BEGIN IMMEDIATE` serialises processes on SQLite.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def transact(self, now: datetime, decide: Decide[T]) -> tuple[T, list[int]]:
        """Run `decide` over every row and apply its change atomically; return (result, new ids)."""
        try:
            return await self._transact(now, decide)
        except DB_ERRORS as err:
            # ValueError: aiosqlite's "no active connection" once the database is closed.
            raise BudgetUnavailableError(f"SMSC budget not available: {err}") from err

    async def _transact(self, now: datetime, decide: Decide[T]) -> tuple[T, list[int]]:
        db = self._db
        async with db.transaction():
            async with db.execute("SELECT id, scope, event, at, until FROM smsc_budget") as cur:
                rows = await cur.fetchall()
            records = [_record(row) for row in rows]
            moved = {r.id: r for r in clamp_future(records, now)}
            records = [moved.get(r.id, r) for r in records]
            change = decide(records)
            for record in [*moved.values(), *change.replace]:
                await db.execute(
                    "UPDATE smsc_budget SET at = ?, until = ? WHERE id = ?",
                    (to_db_time(record.at), to_db_time(record.until), record.id),
                )
            if change.delete:
                ids = list(change.delete)
                marks = ",".join("?" * len(ids))
                await db.execute(f"DELETE FROM smsc_budget WHERE id IN ({marks})", ids)  # noqa: S608 - only placeholders
            added: list[int] = []
            for record in change.add:
                async with db.execute(
                    "INSERT INTO smsc_budget (scope, event, at, until) VALUES (?, ?, ?, ?)"
                    " RETURNING id",
                    (record.scope, record.event, to_db_time(record.at), to_db_time(record.until)),
                ) as cursor:
                    row = await cursor.fetchone()
                added.append(0 if row is None else int(row["id"]))
        return change.result, added


# The name says what it is now that it is not only SQLite.
DatabaseBudgetStore = SqliteBudgetStore


async def budget_rows(db: Database) -> list[BudgetRecord]:
    """Every budget row, oldest first (for tests and diagnostics)."""
    async with (
        db.locked(),
        db.execute("SELECT id, scope, event, at, until FROM smsc_budget ORDER BY id") as cur,
    ):
        rows = await cur.fetchall()
    return [_record(row) for row in rows]


def _record(row: Any) -> BudgetRecord:
    return BudgetRecord(
        id=int(row["id"]),
        scope=str(row["scope"]),
        event=str(row["event"]),
        at=from_db_time(row["at"]),
        until=from_db_time(row["until"]),
    )
