"""One outcome per task, ever: the migration's backfill, storage, and the pure diff (issue 8)."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import pytest

import storage
from bot.alerts.watcher import diff_tasks
from bot.smsc.models import Task, TaskStatus
from storage.migrate import apply_migrations, load_migrations
from tests.fakes.storage_support import T0, at


def task(task_id: int, status: TaskStatus) -> Task:
    return Task(id=task_id, name=f"t{task_id}", status=status)


def diff(known: dict[int, int], tasks: list[Task], finished: set[int], **kw: bool) -> list[str]:
    result = diff_tasks(
        known,
        tasks,
        baseline_done=kw.get("baseline", True),
        notify_canceled=kw.get("notify_canceled", True),
        now=T0,
        finished=finished,
    )
    return [f"{a.kind}:{a.task_id}" for a in result.alerts]


def test_a_finished_task_never_alerts_again() -> None:
    running = int(TaskStatus.RUNNING)
    # 2 after 1, but the task's outcome is recorded: the lag catching up, not news.
    assert diff({1: running}, [task(1, TaskStatus.COMPLETED)], {1}) == []
    assert diff({1: running}, [task(1, TaskStatus.FAILED)], {1}) == []
    # Not recorded yet: the first final status is the one alert.
    assert diff({1: running}, [task(1, TaskStatus.COMPLETED)], set()) == ["completed:1"]


def test_first_outcomes_are_reported_alerted_or_not() -> None:
    tasks = [
        task(1, TaskStatus.COMPLETED),
        task(2, TaskStatus.CANCELED),
        task(3, TaskStatus.RUNNING),
    ]
    result = diff_tasks(
        {}, tasks, baseline_done=True, notify_canceled=False, now=T0, finished=frozenset()
    )
    assert [(o.task_id, o.kind, o.alerted) for o in result.outcomes] == [
        (1, "completed", True),
        (2, "canceled", False),  # finished all the same: it must not alert a completion later
    ]
    baseline = diff_tasks({}, tasks, baseline_done=False, notify_canceled=True, now=T0)
    assert [(o.task_id, o.alerted) for o in baseline.outcomes] == [(1, False), (2, False)]
    assert baseline.alerts == []


async def test_record_outcomes_keeps_the_first(db: storage.Database) -> None:
    first = storage.TaskOutcome(7, "completed", alerted=True)
    assert await storage.record_outcomes(db, [first], T0) == {7}
    again = storage.TaskOutcome(7, "failed", alerted=True)
    assert await storage.record_outcomes(
        db, [again, storage.TaskOutcome(8, "failed", alerted=True)], at(1)
    ) == {8}
    assert await storage.get_outcome(db, 7) == first
    assert await storage.get_outcome(db, 9) is None
    assert await storage.load_finished_ids(db) == {7, 8}


async def test_migration_backfills_from_alerts_and_statuses(tmp_path: Path) -> None:
    conn = storage.Database(await aiosqlite.connect(tmp_path / "old.sqlite3", isolation_level=None))
    try:
        first, second = load_migrations()[:2]
        assert second.name == "task_outcomes"
        await apply_migrations(conn, now=T0, migrations=[first])
        when = "2026-11-25T09:00:00.000000Z"
        # Task 1: alerted completed, then SMSC lagged back to 1 (the flap this fixes).
        # Task 2: alerted failed, still failed. Task 3: finished at the baseline, never alerted.
        # Task 4: running. Task 5: a second alert already exists (the old bug): first one wins.
        for task_id, status in ((1, 1), (2, 4), (3, 2), (4, 1), (5, 2)):
            await conn.execute(
                "INSERT INTO tasks (id, status, name, seen_at) VALUES (?, ?, 'x', ?)",
                (task_id, status, when),
            )
        for kind, task_id in (
            ("completed", 1),
            ("failed", 2),
            ("smsc_problem", None),
            ("completed", 5),
            ("failed", 5),
        ):
            await conn.execute(
                "INSERT INTO alerts (kind, task_id, payload, created_at) VALUES (?, ?, '{}', ?)",
                (kind, task_id, when),
            )
        assert await apply_migrations(conn, now=T0, migrations=[first, second]) == 2
        rows = await conn.execute_fetchall(
            "SELECT task_id, kind, alerted FROM task_outcomes ORDER BY task_id"
        )
        assert [tuple(r) for r in rows] == [
            (1, "completed", 1),
            (2, "failed", 1),
            (3, "completed", 0),
            (5, "completed", 1),
        ]
    finally:
        await conn.close()


@pytest.mark.parametrize("status", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED])
def test_outcome_kinds_match_the_alert_kinds(status: TaskStatus) -> None:
    (outcome,) = diff_tasks(
        {}, [task(1, status)], baseline_done=True, notify_canceled=True, now=T0
    ).outcomes
    assert outcome.kind in storage.ALERT_KINDS


def test_a_task_listed_twice_yields_one_outcome() -> None:
    twice = [task(1, TaskStatus.COMPLETED), task(1, TaskStatus.FAILED)]
    assert diff({}, twice, set()) == ["completed:1"]
