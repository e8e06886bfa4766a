"""Leader election among replicas sharing one PostgreSQL database.

The leader is whoever holds a session advisory lock (`storage.pg.LEADER_LOCK`) on a connection
of its own, opened only for that. PostgreSQL drops the lock the moment that connection ends, and
a killed process's connection ends with it (the kernel closes the socket; TCP keepalives cover a
node that vanishes without a word), so a standby's next `try_lead` wins: no lease to expire, no
clock to trust. The leader checks its connection every few seconds (`holds`) and steps down as
soon as it cannot: it then no longer knows it leads.

Who leads is read from the server itself (`pg_locks` joined with `pg_stat_activity`, whose
application_name is the replica id), and since when from the `state` table, which the leader
writes when it takes over.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from . import pg
from .db import Database, StorageError
from .state import get_state_entry, set_state

log = logging.getLogger(__name__)

LEADER_KEY = "leader.replica"  # value: replica id; updated_at: since when it leads

# A vanished node (no FIN) is noticed by the server after idle + interval * count seconds.
_KEEPALIVES = {
    "tcp_keepalives_idle": "4",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    """Which replica leads, and since when (None if it has not said yet)."""

    replica: str
    since: datetime | None


class PgLeaderLock:
    """The leader's advisory lock, on a connection of its own (see the module docstring)."""

    def __init__(self, url: str, replica: str, *, timeout: float = 5.0) -> None:
        self._url = url
        self.replica = replica[:63]  # application_name's limit
        self._timeout = timeout
        self._conn: Any = None
        self.where = pg.describe_url(url)

    async def try_lead(self) -> bool:
        """Take the lock if nobody holds it; never wait. False also when the server is away."""
        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(
                    self._url,
                    timeout=self._timeout,
                    server_settings={"application_name": self.replica, **_KEEPALIVES},
                )
            got = await self._conn.fetchval(
                "SELECT pg_try_advisory_lock($1, $2)",
                pg.LOCK_SPACE,
                pg.LEADER_LOCK,
                timeout=self._timeout,
            )
        except pg.ERRORS_OR_TIMEOUT as err:
            log.warning("leader election: %s unreachable: %s", self.where, err)
            await self.close()
            return False
        return bool(got)

    async def holds(self) -> bool:
        """Tell whether the lock is still ours: its connection answers (else step down)."""
        if self._conn is None or self._conn.is_closed():
            return False
        try:
            await self._conn.fetchval("SELECT 1", timeout=self._timeout)
        except pg.ERRORS_OR_TIMEOUT as err:
            log.warning("leader election: lost the lock connection to %s: %s", self.where, err)
            await self.close()
            return False
        return True

    async def close(self) -> None:
        """Give the lock up (closing its connection drops it); idempotent."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with suppress(*pg.ERRORS_OR_TIMEOUT):
            await asyncio.wait_for(conn.close(), timeout=self._timeout)
        if not conn.is_closed():
            conn.terminate()


async def record_leader(db: Database, replica: str, now: datetime) -> None:
    """Write down that `replica` leads from `now` (for /status and /metrics of every replica)."""
    await set_state(db, LEADER_KEY, replica, now)


async def current_leader(db: Database) -> LeaderInfo | None:
    """Which replica holds the leader lock now (None: nobody), and since when."""
    if not db.is_postgres:
        raise StorageError("leader election needs PostgreSQL")
    async with db.locked():
        rows = await db.execute_fetchall(
            "SELECT a.application_name FROM pg_locks AS l"
            " JOIN pg_stat_activity AS a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.classid = ? AND l.objid = ? AND l.objsubid = 2"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (pg.LOCK_SPACE, pg.LEADER_LOCK),
        )
    if not rows:
        return None
    replica = str(rows[0]["application_name"])
    entry = await get_state_entry(db, LEADER_KEY)
    since = entry.updated_at if entry is not None and entry.value == replica else None
    return LeaderInfo(replica=replica, since=since)
