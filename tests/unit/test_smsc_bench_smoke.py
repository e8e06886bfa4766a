"""The benchmarks still run: every bench function once, with tiny sizes."""

from __future__ import annotations

import pytest

from bench import __main__ as bench_main
from bench import bench_crash_loop, bench_list_burst


def test_python_m_bench_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--size-mb", "1", "--rounds", "1", "--calls", "10", "--chats", "5", "--tasks", "100"]
    argv += ["--strangers", "10"]
    assert bench_main.main([*argv, "--skip-latency", "--skip-crash-loop"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("download_1mb: 1.0 MB in ")
    assert "peak RSS" in lines[0]
    assert "ratio" in lines[0]
    assert lines[1].startswith("list_burst: 10 concurrent list_tasks() over 450 tasks")
    assert "-> 3 upstream requests" in lines[1]
    assert lines[2].startswith("diff_100_tasks: median ")
    assert lines[3].startswith("fanout_5_chats: 5 chats in ")
    assert "limit 0.2 s" in lines[3]
    assert "1 upload(s)" in lines[3]
    assert "0 429s" in lines[3]
    assert lines[4].startswith("strangers_polling_10_from_1_chats: allowed /tasks answered in ")
    names = [line.split(":")[0] for line in lines]
    first = names.index("parse_100_good_rows")
    assert names[first : first + 5] == [
        "parse_100_good_rows",
        "parse_100_hostile_rows",
        "render_failure_alert",
        "render_tasks_page_50",
        "fit_80000_units_to_4096",
    ]


async def test_list_burst_costs_one_request_per_page() -> None:
    result = await bench_list_burst.run(calls=30, tasks=25, page_size=10)

    assert result.pages == 3
    assert result.upstream_requests == 3
    assert result.second_burst_requests == 0
    assert result.per_call == pytest.approx(0.1)


def test_max_in_window_counts_a_sliding_minute() -> None:
    assert bench_crash_loop.max_in_window([]) == 0
    assert bench_crash_loop.max_in_window([0, 30, 59.9, 60, 119]) == 3
    assert bench_crash_loop.max_in_window([0, 61, 122]) == 1


async def test_a_crash_loop_of_real_processes_stays_within_smscs_limits() -> None:
    """Three real `python -m bot` processes, SIGKILLed in turn, each having polled once.

    Each is killed once its first poll is decided, however long a loaded machine takes to get
    there: `every` is only the bound for a process that never polls (then the test fails).
    """
    right, wrong = await bench_crash_loop.run_both(restarts=3, every=30.0)
    assert right.undecided == wrong.undecided == 0  # every process polled before its kill

    assert right.requests >= 2  # the processes did reach SMSC...
    assert right.max_identical_60s <= bench_crash_loop.IDENTICAL_BUDGET  # ...within our budget
    assert right.error_9 == 0
    assert wrong.failed_logins == 1  # the first process tried; no restart tried again
    assert wrong.describe().startswith("crash_loop_bad_password: 3 restarts in ")
