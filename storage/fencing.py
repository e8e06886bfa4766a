"""The fencing token of leadership: a term number, and delivery claims that honour it.

The advisory lock (`storage.election`) says who leads, but an old leader can go on for a few
seconds without knowing it lost the lock (its lock connection died unnoticed, a long pause).
So each term of leadership gets a strictly increasing `epoch` in the database (`begin_term`,
right after the lock is taken), and every send is preceded by a claim (`claim_delivery`) that
writes only while the claimant's epoch is still the current one. A superseded leader's claim
fails, so it sends nothing more; a leader that cannot reach the database cannot claim either.
"""

from __future__ import annotations

import enum
from datetime import datetime

from .db import Database, StorageError
from .encoding import to_db_time

__all__ = ["Claim", "begin_term", "claim_delivery", "current_epoch"]


class Claim(enum.Enum):
    """What a claim found."""

    CLAIMED = "claimed"  # ours to send now
    SETTLED = "settled"  # no longer pending (delivered or dropped meanwhile): nothing to send
    SUPERSEDED = "superseded"  # a newer term began: this process no longer leads


async def _epoch(db: Database) -> int:
    async with db.execute("SELECT epoch FROM leader_term WHERE id = 1") as cur:
        row = await cur.fetchone()
    if row is None:
        raise StorageError("the leader_term row is missing")
    return int(row["epoch"])


async def begin_term(db: Database, replica: str, now: datetime) -> int:
    """Start a new term of leadership for `replica` (call it holding the lock); return its epoch."""
    async with db.transaction():
        async with db.execute(
            "UPDATE leader_term SET epoch = epoch + 1, replica = ?, since = ? WHERE id = 1"
            " RETURNING epoch",
            (replica, to_db_time(now)),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise StorageError("the leader_term row is missing")
        return int(row["epoch"])


async def current_epoch(db: Database) -> int:
    """Return the current term's epoch (0: no term was ever begun)."""
    async with db.locked():
        return await _epoch(db)


async def claim_delivery(db: Database, delivery_id: int, epoch: int) -> Claim:
    """Claim a pending delivery for the term `epoch`, which must still be the current one.

    One statement decides (the epoch check and the write are atomic); the follow-up read only
    tells a superseded term from a row that is no longer pending. A later claim by the same
    term (a retry) succeeds again; a newer term may claim a row an older one claimed and never
    settled (it crashed mid-send).
    """
    async with db.transaction():
        cur = await db.execute(
            "UPDATE deliveries SET claimed_epoch = ?"
            " WHERE id = ? AND state = 'pending'"
            " AND CAST(? AS BIGINT) = (SELECT epoch FROM leader_term WHERE id = 1)",
            (epoch, delivery_id, epoch),
        )
        if cur.rowcount > 0:
            return Claim.CLAIMED
        return Claim.SETTLED if await _epoch(db) == epoch else Claim.SUPERSEDED
