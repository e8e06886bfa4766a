"""storage.db's transactions and write lock: rollbacks, savepoints, concurrent and cancelled
writers, and a real kill -9 in the middle of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from storage import (
    Database,
    NewAlert,
    TaskSnapshot,
    count_subscriptions,
    due_deliveries,
    get_state,
    list_subscriptions,
    load_known_statuses,
    open_database,
    record_poll,
    set_state,
    subscribe,
)
from tests.fakes.storage_support import T0, outbox_stats

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- transactions and the lock ------------------------------------------------------------------


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    async def write_then_fail() -> None:
        async with db.transaction():
            await subscribe(db, 1, None, T0)
            await set_state(db, "k", "v", T0)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await write_then_fail()
    assert await count_subscriptions(db) == 0
    assert await get_state(db, "k") is None
    assert not db.in_transaction


async def test_nested_transaction_is_a_savepoint(db: Database) -> None:
    async def inner_fails() -> None:
        async with db.transaction():
            await subscribe(db, 2, None, T0)
            raise RuntimeError("inner only")

    async with db.transaction():
        await subscribe(db, 1, None, T0)
        with pytest.raises(RuntimeError):
            await inner_fails()
        await set_state(db, "k", "v", T0)
    assert [s.chat_id for s in await list_subscriptions(db)] == [1]
    assert await get_state(db, "k") == "v"


@pytest.mark.sqlite_only
async def test_concurrent_writers_do_not_interleave(db: Database) -> None:
    trace: list[str] = []
    await db.conn.set_trace_callback(trace.append)

    async def poll(n: int) -> list[int]:
        await asyncio.sleep(0)
        return await record_poll(
            db,
            tasks=[TaskSnapshot(n, 2, f"task {n}")],
            alerts=[NewAlert("completed", n, {"n": n})],
            now=T0,
        )

    async def sub(n: int) -> bool:
        return await subscribe(db, 100 + n, None, T0)

    # Without the lock the second BEGIN would fail ("cannot start a transaction within a
    # transaction") or a subscribe would land inside a record_poll transaction.
    results = await asyncio.gather(*(f(n) for n in range(20) for f in (poll, sub)))
    statements = trace.copy()
    assert all(results)

    in_tx = False
    block: list[str] = []
    subscribed = 0
    expected_fanout: list[int] = []
    for statement in statements:
        head = statement.lstrip().upper()
        if head.startswith("BEGIN"):
            assert not in_tx, "BEGIN inside an open transaction"
            in_tx, block = True, []
        elif head.startswith(("COMMIT", "ROLLBACK")):
            assert in_tx
            in_tx = False
            polls = [s for s in block if s.startswith("INSERT INTO alerts")]
            subs = [s for s in block if s.startswith("INSERT INTO subscriptions")]
            assert not (polls and subs), "two callers' statements in one transaction"
            subscribed += len(subs)
            expected_fanout += [subscribed] * len(polls)
        elif head.startswith(("INSERT", "UPDATE", "DELETE")):
            assert in_tx, f"write outside a transaction: {statement}"
            block.append(statement.lstrip())
    assert not in_tx

    # Every alert fanned out to exactly the chats subscribed when its transaction committed.
    rows = await db.execute_fetchall(
        "SELECT a.id, COUNT(d.id) FROM alerts AS a LEFT JOIN deliveries AS d ON d.alert_id = a.id"
        " GROUP BY a.id ORDER BY a.id"
    )
    assert [r[1] for r in rows] == expected_fanout


async def test_reads_never_see_an_uncommitted_transaction(db: Database) -> None:
    await subscribe(db, 1, None, T0)
    inside = asyncio.Event()

    async def write_wait_fail() -> None:
        async with db.transaction():
            await record_poll(db, tasks=[], alerts=[NewAlert("failed", 1, {})], now=T0)
            inside.set()
            await asyncio.sleep(0.05)
            raise RuntimeError("rolled back")

    async def failing_writer() -> None:
        with pytest.raises(RuntimeError):
            await write_wait_fail()

    async def reader() -> int:
        await inside.wait()
        return len(await due_deliveries(db, T0))

    _, seen = await asyncio.gather(failing_writer(), reader())
    assert seen == 0
    assert (await outbox_stats(db))["pending"] == 0


@pytest.mark.parametrize("steps", [1, 2, 3, 5, 8, 13, 40])
async def test_cancelled_writer_leaves_no_open_transaction(db: Database, steps: int) -> None:
    await subscribe(db, 1, None, T0)
    tasks = [TaskSnapshot(n, 2, f"t{n}") for n in range(500)]
    writer = asyncio.create_task(
        record_poll(db, tasks=tasks, alerts=[NewAlert("completed", 1, {})], now=T0)
    )
    for _ in range(steps):  # steps=1 cancels while BEGIN itself is in flight
        await asyncio.sleep(0)
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writer

    # All or nothing, whichever side of COMMIT the cancel landed on; and the next writer works.
    assert await subscribe(db, 2, None, T0)
    known = await load_known_statuses(db)
    pending = (await outbox_stats(db))["pending"]
    assert (len(known), pending) in {(0, 0), (500, 1)}
    assert not db.in_transaction


# --- a real kill -9 -----------------------------------------------------------------------------

_CHILD = """
import asyncio, os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
import storage as s

async def main() -> None:
    now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    conn = await s.open_database(Path(sys.argv[1]), now=now)
    await s.subscribe(conn, 1, None, now)
    await s.record_poll(conn, tasks=[s.TaskSnapshot(1, 2, "a")],
                        alerts=[s.NewAlert("completed", 1, {"n": 1})], now=now)
    await s.record_poll(conn, tasks=[s.TaskSnapshot(2, 4, "b")],
                        alerts=[s.NewAlert("failed", 2, {"n": 2})], now=now)
    first = (await s.due_deliveries(conn, now))[0]
    await s.mark_delivered(conn, first.delivery_id, now, message_id=77)
    async with conn.transaction():
        await s.record_poll(conn, tasks=[s.TaskSnapshot(3, 3, "c")],
                            alerts=[s.NewAlert("canceled", 3, {"n": 3})], now=now)
        os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction, nothing closed or flushed

asyncio.run(main())
"""


async def test_kill_9_keeps_commits_and_loses_only_the_open_transaction(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        str(path),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await proc.communicate()
    assert proc.returncode == -signal.SIGKILL, stderr.decode()

    conn = await open_database(path, now=T0)
    try:
        assert await load_known_statuses(conn) == {1: 2, 2: 4}
        due = await due_deliveries(conn, T0)
        assert [(d.kind, d.payload) for d in due] == [("failed", {"n": 2})]
        assert await outbox_stats(conn) == {
            "pending": 1,
            "retrying": 0,
            "delivered": 1,
            "dropped": 0,
        }
    finally:
        await conn.close()
