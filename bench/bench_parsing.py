"""Parsing and rendering hostile data: what a poll pays for bad rows and for the budget guard.

`python -m bench.bench_parsing` prints one line per figure. The limits they are measured against:
a poll may run every 20 s (the minimum POLL_INTERVAL), so a 10,000-row list must parse in a small
fraction of that, and bad rows must cost no more than good ones (skipping is not a slow path);
the render guard must be a small fraction of one send slot (Telegram allows ~30 messages a
second, so ~33 ms each).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bot.smsc.models import Task, TaskStatus
from bot.smsc.parsing import collect_skipped, parse_task_page
from bot.texts.markup import fit
from bot.texts.tasks import tasks_page
from bot.texts.watcher_alerts import failure_text


def _median_ms(work: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_lists(n: int = 10_000, rounds: int = 5) -> list[str]:
    """Time parsing `n` good rows, then `n` hostile rows (skipped or sanitised)."""
    good = json.dumps(
        [
            {"id": i, "name": f"task {i}", "status": i % 5, "created": "01.11.2026 10:00:00"}
            for i in range(1, n + 1)
        ]
    )
    hostile_rows = [
        '{"id": 99999999999999999999, "name": "huge", "status": 2}',
        '{"id": -1, "name": "negative", "status": 2}',
        '{"id": 5, "name": "\\ud800 lone", "status": 2, "time": "' + "x" * 5000 + '"}',
        '{"id": 6, "status": null}',
        '{"id": "' + "9" * 5000 + '", "status": 2}',
    ]
    hostile = "[" + ", ".join(hostile_rows[i % len(hostile_rows)] for i in range(n)) + "]"

    def parse(body: str) -> None:
        with collect_skipped():
            parse_task_page(body)

    good_ms = _median_ms(lambda: parse(good), rounds)
    bad_ms = _median_ms(lambda: parse(hostile), rounds)
    with collect_skipped() as collected:
        parse_task_page(hostile)
    return [
        f"parse_{n}_good_rows: median {good_ms:.1f} ms ({good_ms * 1000 / n:.1f} us/row;"
        " limit: a poll every 20 s)",
        f"parse_{n}_hostile_rows: median {bad_ms:.1f} ms ({bad_ms * 1000 / n:.1f} us/row,"
        f" {collected.report.count} skipped, the rest sanitised; target <= good rows)",
    ]


def bench_render(rounds: int = 200) -> list[str]:
    """Time the budget guard on an ordinary alert, a full /tasks page and an overlong text."""
    task = Task(id=1, name="Рассылка ноябрь", status=TaskStatus.FAILED, created_raw="x" * 5000)
    now = datetime.now(UTC)
    tasks = [Task(id=i, name="Ж" * 80, status=TaskStatus.COMPLETED) for i in range(1, 200)]
    overlong = "<b>" + "&lt;&amp;😀" * 20_000 + "</b>"
    alert_us = _median_ms(lambda: failure_text(task, now), rounds) * 1000
    page_us = _median_ms(lambda: tasks_page(tasks, per_page=50), rounds) * 1000
    cut_us = _median_ms(lambda: fit(overlong), rounds) * 1000
    return [
        f"render_failure_alert: median {alert_us:.0f} us (target << 33 ms, one send slot)",
        f"render_tasks_page_50: median {page_us:.0f} us (target << 33 ms)",
        f"fit_80000_units_to_4096: median {cut_us:.0f} us (target << 33 ms)",
    ]


def main(n: int = 10_000, rounds: int = 5) -> None:
    """Print every figure."""
    for line in [*bench_lists(n, rounds), *bench_render(rounds * 40)]:
        print(line, flush=True)


if __name__ == "__main__":
    main()
