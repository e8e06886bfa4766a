"""The benchmarks still run: every bench function once, with tiny sizes."""

from __future__ import annotations

import pytest

from bench import __main__ as bench_main
from bench import bench_list_burst


def test_python_m_bench_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--size-mb", "1", "--rounds", "1", "--calls", "10", "--chats", "5", "--tasks", "100"]
    argv += ["--strangers", "10"]
    assert bench_main.main([*argv, "--skip-latency"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("download_1mb: 1.0 MB in ")
    assert "peak RSS" in lines[0]
    assert "ratio" in lines[0]
    assert lines[1].startswith("list_burst: 10 concurrent list_tasks() over 450 tasks")
    assert "-> 3 upstream requests" in lines[1]
    assert lines[2].startswith("diff_100_tasks: median ")
    assert lines[3].startswith("fanout_5_chats: 5 delivered in ")
    assert "1 upload(s)" in lines[3]
    assert "0 429s" in lines[3]
    assert lines[4].startswith("strangers_polling_10_from_1_chats: allowed /tasks answered in ")


async def test_list_burst_costs_one_request_per_page() -> None:
    result = await bench_list_burst.run(calls=30, tasks=25, page_size=10)

    assert result.pages == 3
    assert result.upstream_requests == 3
    assert result.second_burst_requests == 0
    assert result.per_call == pytest.approx(0.1)
