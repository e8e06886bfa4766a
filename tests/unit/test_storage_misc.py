"""storage.tasks, storage.file_ids, storage.state, and a 10,000-task sanity check on speed."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from storage import (
    CachedFile,
    Database,
    NewAlert,
    TaskSnapshot,
    baseline_done,
    count_pending,
    get_cached_file,
    get_state,
    get_state_entry,
    load_known_statuses,
    open_database,
    put_cached_file,
    record_poll,
    set_state,
    subscribe,
)
from storage.tasks import BASELINE_KEY
from tests.fakes.storage_support import T0, KnownTask, at, get_known_task

ZIPPED, NO_ZIP = True, False  # CachedFile.compressed, named for positional use


# --- tasks --------------------------------------------------------------------------------------


async def test_seen_at_moves_only_when_status_or_name_changes(db: Database) -> None:
    await record_poll(db, tasks=[TaskSnapshot(1, 0, "export")], alerts=[], now=at(0))
    await record_poll(db, tasks=[TaskSnapshot(1, 0, "export")], alerts=[], now=at(1))
    assert await get_known_task(db, 1) == KnownTask(1, 0, "export", at(0))

    await record_poll(db, tasks=[TaskSnapshot(1, 1, "export")], alerts=[], now=at(2))
    assert await get_known_task(db, 1) == KnownTask(1, 1, "export", at(2))
    await record_poll(db, tasks=[TaskSnapshot(1, 1, "renamed")], alerts=[], now=at(3))
    assert await get_known_task(db, 1) == KnownTask(1, 1, "renamed", at(3))
    assert await get_known_task(db, 2) is None


async def test_tasks_missing_from_a_poll_are_kept(db: Database) -> None:
    # SMSC's list is not guaranteed to show old tasks: forgetting one would re-alert it later.
    await record_poll(
        db, tasks=[TaskSnapshot(1, 2, "a"), TaskSnapshot(2, 1, "b")], alerts=[], now=at(0)
    )
    await record_poll(db, tasks=[TaskSnapshot(2, 2, "b")], alerts=[], now=at(1))
    assert await load_known_statuses(db) == {1: 2, 2: 2}
    assert len(await load_known_statuses(db)) == 2


async def test_unknown_future_status_is_stored(db: Database) -> None:
    await record_poll(db, tasks=[TaskSnapshot(1, 9, "new kind")], alerts=[], now=T0)
    assert await load_known_statuses(db) == {1: 9}


async def test_baseline_keeps_the_first_poll_time(db: Database) -> None:
    assert not await baseline_done(db)
    await record_poll(db, tasks=[], alerts=[], now=at(0))
    await record_poll(db, tasks=[], alerts=[], now=at(5))
    assert await baseline_done(db)
    assert await get_state(db, BASELINE_KEY) is not None
    entry = await get_state_entry(db, BASELINE_KEY)
    assert entry is not None
    assert entry.updated_at == at(0)


# --- files --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cached",
    [
        CachedFile(7, "BQACAgIAAxkBAAI", "task-7.csv", 12_345, NO_ZIP, 12_345, 250),
        CachedFile(8, "BQACAgIAAxkBAAJ", "task-8.csv.zip", 9 << 20, ZIPPED, 60 << 20, 10**6),
        CachedFile(9, "x" * 200, "отчёт.csv", 0, NO_ZIP, 0, None),  # rows not counted
    ],
)
async def test_file_cache_survives_a_restart(tmp_path: Path, cached: CachedFile) -> None:
    path = tmp_path / "bot.sqlite3"
    conn = await open_database(path, now=T0)
    assert await get_cached_file(conn, cached.task_id) is None
    await put_cached_file(conn, cached, T0)
    await conn.close()

    conn = await open_database(path, now=T0)
    try:
        assert await get_cached_file(conn, cached.task_id) == cached
    finally:
        await conn.close()


async def test_file_cache_replace(db: Database) -> None:
    await put_cached_file(db, CachedFile(7, "old", "a.csv", 10, NO_ZIP, 10, 1), T0)
    newer = CachedFile(7, "new", "a.csv.zip", 2, ZIPPED, 10, None)
    await put_cached_file(db, newer, at(1))
    assert await get_cached_file(db, 7) == newer
    assert await get_cached_file(db, 8) is None


# --- state --------------------------------------------------------------------------------------


async def test_state_set_overwrite_delete(db: Database) -> None:
    assert await get_state(db, "watcher.last_error") is None
    await set_state(db, "watcher.last_error", "HTTP 502", at(0))
    await set_state(db, "watcher.last_error", "timeout", at(1))
    entry = await get_state_entry(db, "watcher.last_error")
    assert entry is not None
    assert (entry.value, entry.updated_at) == ("timeout", at(1))
    await set_state(db, "watcher.last_error", None, at(2))
    assert await get_state(db, "watcher.last_error") is None
    await set_state(db, "watcher.last_error", None, at(3))  # deleting a missing key is fine


@pytest.mark.parametrize("value", ["", "1", "2026-11-25T09:00:00+00:00", "multi\nline ✓"])
async def test_state_values_round_trip(tmp_path: Path, value: str) -> None:
    path = tmp_path / "bot.sqlite3"
    conn = await open_database(path, now=T0)
    await set_state(conn, "k", value, T0)
    await conn.close()
    conn = await open_database(path, now=T0)
    try:
        assert await get_state(conn, "k") == value
    finally:
        await conn.close()


# --- speed sanity check (real numbers belong in bench/) -----------------------------------------

N = 10_000


async def test_ten_thousand_tasks_stay_fast(db: Database) -> None:
    await subscribe(db, 10, None, T0)
    await subscribe(db, 20, None, T0)
    tasks = [TaskSnapshot(i, 1, f"export {i}") for i in range(N)]
    timings: dict[str, float] = {}

    async def timed(label: str, work: Callable[[], Awaitable[object]]) -> None:
        start = time.perf_counter()
        await work()
        timings[label] = time.perf_counter() - start

    await timed("first poll (insert)", lambda: record_poll(db, tasks=tasks, alerts=[], now=at(0)))
    await timed("same poll again", lambda: record_poll(db, tasks=tasks, alerts=[], now=at(1)))
    changed = [TaskSnapshot(t.id, 2, t.name) if t.id % 100 == 0 else t for t in tasks]
    alerts = [NewAlert("completed", t.id, {"id": t.id}) for t in changed if t.status == 2]
    await timed(
        "100 changed + 100 alerts", lambda: record_poll(db, tasks=changed, alerts=alerts, now=at(2))
    )
    await timed("load_known_statuses", lambda: load_known_statuses(db))
    statuses = await load_known_statuses(db)

    print({k: f"{v * 1000:.1f} ms" for k, v in timings.items()})  # shown with -s
    assert len(statuses) == N
    assert sum(1 for s in statuses.values() if s == 2) == 100
    assert await count_pending(db) == 200
    assert all(v < 2.0 for v in timings.values()), timings
