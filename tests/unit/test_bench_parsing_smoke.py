"""The parsing/render benchmark still runs and reports what it measured (tiny sizes)."""

from __future__ import annotations

import pytest

from bench import bench_parsing


def test_bench_parsing_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    bench_parsing.main(n=50, rounds=1)

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "parse_50_good_rows",
        "parse_50_hostile_rows",
        "render_failure_alert",
        "render_tasks_page_50",
        "fit_80000_units_to_4096",
    ]
    assert "40 skipped" in lines[1]  # 4 of every 5 hostile rows are unusable
