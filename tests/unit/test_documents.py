"""Preparing a task file for Telegram: row counts and zipping, on real files."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

from bot.smsc.simulator import SimTask, iter_csv
from bot.telegram.task_csv import (
    KEPT_NAME,
    FileTooLargeError,
    RowCounter,
    _clean_dir,
    count_rows,
    prepare_file,
)

CSV = 'phone;message\n7999;"hello\nworld"\n7998;"say ""hi"";\nbye"\n7997;plain'


@pytest.mark.parametrize("chunk", [1, 2, 5, 7, 1000])
def test_row_counter_is_right_wherever_chunks_split(chunk: int) -> None:
    data = CSV.encode()
    counter = RowCounter()
    for i in range(0, len(data), chunk):
        counter.feed(data[i : i + chunk])
    assert counter.rows == len(list(csv.reader(io.StringIO(CSV), delimiter=";"))) - 1 == 3


@pytest.mark.parametrize("encoding", ["utf-8", "cp1251"])
def test_prepare_file_counts_the_same_rows_zipped_or_not(tmp_path: Path, encoding: str) -> None:
    task = SimTask(1, "x", 2, rows=3000, encoding=encoding)
    data = b"".join(iter_csv(task))
    plain = tmp_path / "plain.csv"
    plain.write_bytes(data)
    big = tmp_path / "big.csv"
    big.write_bytes(data)
    as_is = prepare_file(plain, "t.csv", limit=len(data))
    zipped = prepare_file(big, "t.csv", limit=len(data) // 2)
    assert not as_is.facts.compressed
    assert zipped.facts.compressed
    assert zipped.facts.filename == "t.zip"
    assert as_is.facts.rows == zipped.facts.rows == count_rows(plain) == 3000
    with zipfile.ZipFile(zipped.path) as zf:
        assert zf.read("t.csv") == data


def test_prepare_file_refuses_what_stays_too_large(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"".join(iter_csv(SimTask(1, "x", 2, rows=500))))
    with pytest.raises(FileTooLargeError):
        prepare_file(path, "f.csv", limit=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv"]  # no zip left behind


def test_clean_dir_keeps_only_the_csvs_pending_alerts_need(tmp_path: Path) -> None:
    root = tmp_path / "files"
    (root / "7").mkdir(parents=True)
    (root / "7" / KEPT_NAME).write_bytes(b"a;b\n1;2\n")
    (root / "7" / "task.csv.zip").write_bytes(b"zip")
    (root / "7" / ".smsc-1.part").write_bytes(b"half")
    (root / "8").mkdir()
    (root / "8" / KEPT_NAME).write_bytes(b"old")
    (root / "stray.part").write_bytes(b"x")
    _clean_dir(root, {"7"})
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == ["7", f"7/{KEPT_NAME}"]
    _clean_dir(tmp_path / "absent", set())
    assert (tmp_path / "absent").is_dir()
