"""A task's CSV on disk: downloaded from SMSC once, kept while an alert needs it, made uploadable.

Files over Telegram's 50 MB bot upload limit are zipped; if that is still too large we say so
(`FileTooLargeError`). The row count a caption shows is taken on the same single read.
"""

from __future__ import annotations

import asyncio
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.smsc.files import safe_filename
from bot.smsc.models import Task

if TYPE_CHECKING:
    from bot.smsc.client import SmscClient

TELEGRAM_UPLOAD_LIMIT = 50 * 1000 * 1000  # Bot API: "up to 50 MB" for uploads, decimal to be safe
KEPT_NAME = "task.csv"  # a task's downloaded CSV, kept in files_dir/<task id>/ while needed
_CHUNK = 1024 * 1024


class FileTooLargeError(Exception):
    """Even compressed, the file is over Telegram's upload limit."""

    def __init__(self, size: int, compressed_size: int) -> None:
        self.size = size
        self.compressed_size = compressed_size
        super().__init__(f"file is {size} bytes ({compressed_size} zipped), over the upload limit")


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What a caption may say about the file."""

    filename: str
    size: int  # bytes sent
    original_size: int  # bytes of the CSV itself
    rows: int | None
    compressed: bool


@dataclass(frozen=True, slots=True)
class PreparedFile:
    """A file ready to upload, and what a caption may say about it."""

    path: Path
    facts: FileFacts


def document_name(task: Task) -> str:
    """The document name users see: the task's name, made safe, ending in .csv."""
    base = safe_filename(task.name, default=f"task_{task.id}")
    return base if base.lower().endswith(".csv") else f"{base}.csv"


class RowCounter:
    """Counts CSV data records (minus the header) in bytes fed to it chunk by chunk.

    Newlines inside quoted fields (message texts may have them) do not end a record. The
    quote byte and the newline byte mean the same in UTF-8 and windows-1251, so bytes do.
    """

    def __init__(self) -> None:
        self._records = 0
        self._in_quotes = False
        self._last = b"\n"

    def feed(self, chunk: bytes) -> None:
        """Count the records that end in `chunk`."""
        if not chunk:
            return
        # Split on quotes: pieces alternate outside/inside a quoted field ("" toggles twice).
        for i, piece in enumerate(chunk.split(b'"')):
            if i:
                self._in_quotes = not self._in_quotes
            if not self._in_quotes:
                self._records += piece.count(b"\n")
        self._last = chunk[-1:]

    @property
    def rows(self) -> int:
        """Data records seen so far (the last one may lack its newline)."""
        records = self._records + (self._last != b"\n")
        return max(0, records - 1)


def count_rows(path: Path) -> int:
    """Count a CSV file's data records without loading it."""
    counter = RowCounter()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            counter.feed(chunk)
    return counter.rows


def zip_file(source: Path, target: Path, inner_name: str, counter: RowCounter) -> int:
    """Deflate `source` into a one-member zip at `target`, counting its rows on the way."""
    with (
        zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf,
        zf.open(inner_name, "w", force_zip64=True) as dst,
        source.open("rb") as src,
    ):
        while chunk := src.read(_CHUNK):
            counter.feed(chunk)
            dst.write(chunk)
    return target.stat().st_size


def prepare_file(path: Path, filename: str, limit: int) -> PreparedFile:
    """Make `path` uploadable: as is when small enough, else zipped; raise if still too big.

    Either way the file is read once: to count its rows, or to zip and count them together.
    """
    size = path.stat().st_size
    if size <= limit:
        facts = FileFacts(filename, size, size, count_rows(path), compressed=False)
        return PreparedFile(path, facts)
    zip_name = filename.removesuffix(".csv") + ".zip"
    target = path.with_name(path.name + ".zip")
    counter = RowCounter()
    zipped = zip_file(path, target, filename, counter)
    if zipped > limit:
        target.unlink(missing_ok=True)
        raise FileTooLargeError(size, zipped)
    return PreparedFile(target, FileFacts(zip_name, zipped, size, counter.rows, compressed=True))


class KeptFiles:
    """Task CSVs under `files_dir/<task id>/`: each downloaded once, prepared once, then reused.

    Callers serialise the work on one task (`TaskFiles` holds a lock per task around each call).
    """

    def __init__(self, smsc: SmscClient, files_dir: Path) -> None:
        self._smsc = smsc
        self._dir = files_dir
        self._held: set[int] = set()  # tasks whose file an unsettled alert keeps on disk
        self._prepared: dict[int, PreparedFile] = {}  # ready to upload again, zipped or not

    def _task_dir(self, task_id: int) -> Path:
        return self._dir / str(task_id)

    async def clean_start(self, needed: set[int]) -> None:
        """Delete leftovers in files_dir except the CSVs of the tasks in `needed` (kept held)."""
        self._held |= needed
        await asyncio.to_thread(_clean_dir, self._dir, {str(t) for t in needed})

    def hold(self, task_id: int) -> None:
        """An alert needs the task's file: keep it on disk until `release(task_id)`."""
        self._held.add(task_id)

    def release(self, task_id: int) -> None:
        """The task's alert is settled: delete its kept file."""
        self._held.discard(task_id)
        self._discard(task_id)

    def discard_unless_held(self, task_id: int) -> None:
        """Done with the task's file (a `/get`): delete it unless an alert still needs it."""
        if task_id not in self._held:
            self._discard(task_id)

    def _discard(self, task_id: int) -> None:
        self._prepared.pop(task_id, None)
        shutil.rmtree(self._task_dir(task_id), ignore_errors=True)

    @property
    def kept(self) -> list[int]:
        """Task ids whose CSV is on disk (what tests check)."""
        if not self._dir.is_dir():
            return []
        return sorted(int(p.name) for p in self._dir.iterdir() if p.name.isdigit())

    async def prepare(self, task: Task, limit: int) -> PreparedFile:
        """The task's file ready to upload: as prepared before, from the kept CSV, or downloaded."""
        prepared = self._prepared.get(task.id)
        if prepared is not None and prepared.path.exists():
            return prepared
        folder = self._task_dir(task.id)
        kept = folder / KEPT_NAME
        if not kept.exists():
            folder.mkdir(parents=True, exist_ok=True)
            download = await self._smsc.download(folder, task_id=task.id)
            download.path.replace(kept)
        prepared = await asyncio.to_thread(prepare_file, kept, document_name(task), limit)
        self._prepared[task.id] = prepared
        return prepared


def _clean_dir(root: Path, keep: set[str]) -> None:
    """Delete everything under `root` but `root/<name>/task.csv` for each name in `keep`."""
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.name in keep and entry.is_dir() and not entry.is_symlink():
            for inner in entry.iterdir():
                if inner.name != KEPT_NAME:  # a zip or a partial download: redone if needed
                    _remove(inner)
        else:
            _remove(entry)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
