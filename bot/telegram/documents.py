"""Getting a task's CSV from SMSC into a Telegram chat: download once, upload once.

The first send uploads the file; Telegram's `file_id` is stored, so every later send (another
chat, another `/get`, after a restart) costs neither an SMSC download nor an upload. Files over
Telegram's 50 MB bot upload limit are zipped; if that is still too large we say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from telegram import Message
from telegram.constants import ChatAction
from telegram.error import BadRequest
from telegram.ext import ExtBot

import storage
from bot.smsc.files import safe_filename
from bot.smsc.models import Task
from bot.telegram.errors import is_stale_file
from bot.telegram.pacing import BACKGROUND, SendOptions
from storage.health import unwritable_reason
from storage.outbox import awaiting_files

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.smsc.client import SmscClient

log = logging.getLogger(__name__)

TELEGRAM_UPLOAD_LIMIT = 50 * 1000 * 1000  # Bot API: "up to 50 MB" for uploads, decimal to be safe
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


CaptionFn = Callable[[FileFacts], str | None]


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


@contextlib.asynccontextmanager
async def chat_action(
    bot: ExtBot[SendOptions],
    chat_id: int,
    thread_id: int | None,
    action: str = ChatAction.UPLOAD_DOCUMENT,
) -> AsyncIterator[None]:
    """Keep showing `action` (Telegram shows one for ~5 s) while the body runs."""

    async def repeat() -> None:
        while True:
            with contextlib.suppress(Exception):  # cosmetic: never fail the real work over it
                await bot.send_chat_action(chat_id, action, message_thread_id=thread_id)
            # Real time on purpose: this is what a person sees, not a rule we must keep.
            await asyncio.sleep(4.5)

    task = asyncio.get_running_loop().create_task(repeat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


KEPT_NAME = "task.csv"  # a task's downloaded CSV, kept in files_dir/<task id>/ while needed


class TaskFiles:
    """Sends task CSVs to chats, downloading and uploading each task's file at most once.

    An alert's CSV stays on disk (`files_dir/<task id>/task.csv`) from its download until the
    alert is settled (`release`), so retries through a Telegram outage upload it again without
    asking SMSC for it again (SMSC refuses a third identical request within a minute anyway).
    A file_id Telegram gave us is kept in memory until the database takes it.
    """

    def __init__(
        self,
        smsc: SmscClient,
        db: storage.Database,
        files_dir: Path,
        clock: Clock,
        *,
        upload_limit: int = TELEGRAM_UPLOAD_LIMIT,
    ) -> None:
        self._smsc = smsc
        self._db = db
        self._dir = files_dir
        self._clock = clock
        self.upload_limit = upload_limit
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}
        self._held: set[int] = set()  # tasks whose file an unsettled alert keeps on disk
        self._prepared: dict[int, PreparedFile] = {}  # ready to upload again, zipped or not
        self._unsaved: dict[int, storage.CachedFile] = {}  # file_ids the database refused

    def _task_dir(self, task_id: int) -> Path:
        return self._dir / str(task_id)

    async def clean_start(self) -> None:
        """Delete leftovers in files_dir except the CSVs of alerts still to be delivered."""
        needed = await awaiting_files(self._db)
        self._held |= needed
        await asyncio.to_thread(_clean_dir, self._dir, {str(t) for t in needed})

    async def release(self, task_id: int) -> None:
        """The task's alert is settled: delete its kept file (not under a `/get` using it)."""
        async with self._task_lock(task_id):
            self._held.discard(task_id)
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

    async def flush(self) -> bool:
        """Write the file_ids the database refused earlier; return False if it still refuses."""
        for task_id, cached in list(self._unsaved.items()):
            try:
                await storage.put_cached_file(self._db, cached, self._clock.now())
            except Exception as err:  # the id stays in memory; the next flush tries again
                if unwritable_reason(err) is None:  # a full disk is logged once, by storage
                    log.exception("could not store a file_id", extra={"task_id": task_id})
                return False
            self._unsaved.pop(task_id, None)
        return True

    async def _cached(self, task_id: int) -> storage.CachedFile | None:
        unsaved = self._unsaved.get(task_id)
        if unsaved is not None:
            return unsaved
        return await storage.get_cached_file(self._db, task_id)

    @contextlib.asynccontextmanager
    async def _task_lock(self, task_id: int) -> AsyncIterator[None]:
        """Serialise work on one task; forget the lock when nobody holds or waits for it."""
        lock = self._locks.setdefault(task_id, asyncio.Lock())
        self._users[task_id] = self._users.get(task_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[task_id] -= 1
            if not self._users[task_id]:
                del self._users[task_id], self._locks[task_id]

    async def send(
        self,
        bot: ExtBot[SendOptions],
        chat_id: int,
        task: Task,
        *,
        thread_id: int | None = None,
        caption: CaptionFn | None = None,
        background: bool = False,
        keep: bool = False,
    ) -> Message:
        """Send `task`'s CSV to a chat; raise SmscError, FileTooLargeError or TelegramError.

        `background` (alert fan-out) yields Telegram's rate budget to replies to people.
        `keep` (an alert) keeps the downloaded CSV on disk until `release(task.id)`.
        """
        async with self._task_lock(task.id):  # concurrent sends of one task: one download
            if keep:
                self._held.add(task.id)
            cached = await self._cached(task.id)
            if cached is not None:
                facts = FileFacts(
                    cached.filename,
                    cached.size,
                    cached.original_size,
                    cached.rows,
                    cached.compressed,
                )
                try:
                    message = await _send_document(
                        bot,
                        chat_id,
                        cached.file_id,
                        facts,
                        caption,
                        thread_id=thread_id,
                        background=background,
                    )
                except BadRequest as err:
                    if not is_stale_file(err):
                        raise
                    log.warning(
                        "stored file_id refused; uploading again", extra={"task_id": task.id}
                    )
                else:
                    return message
            return await self._download_and_upload(
                bot, chat_id, task, caption, thread_id=thread_id, background=background
            )

    async def _download_and_upload(
        self,
        bot: ExtBot[SendOptions],
        chat_id: int,
        task: Task,
        caption: CaptionFn | None,
        *,
        thread_id: int | None,
        background: bool,
    ) -> Message:
        try:
            prepared = await self._prepare(task)
            facts = prepared.facts
            message = await _send_document(
                bot,
                chat_id,
                prepared.path,
                facts,
                caption,
                thread_id=thread_id,
                background=background,
            )
            document = message.document
            if document is None:
                raise RuntimeError("Telegram returned a message without the document")
            cached = storage.CachedFile(
                task_id=task.id,
                file_id=document.file_id,
                filename=facts.filename,
                size=facts.size,
                compressed=facts.compressed,
                original_size=facts.original_size,
                rows=facts.rows,
            )
            # The message went out whatever happens next: a failed write must not turn into
            # a failed send (the caller would send it again). Keep the id until it lands.
            self._unsaved[task.id] = cached
            await self.flush()
            return message
        finally:
            if task.id not in self._held:
                self._discard(task.id)

    async def _prepare(self, task: Task) -> PreparedFile:
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
        prepared = await asyncio.to_thread(
            prepare_file, kept, document_name(task), self.upload_limit
        )
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


async def _send_document(
    bot: ExtBot[SendOptions],
    chat_id: int,
    document: Path | str,
    facts: FileFacts,
    caption: CaptionFn | None,
    *,
    thread_id: int | None,
    background: bool,
) -> Message:
    """Send a file (a path to upload, or a file_id) with its caption."""
    return await bot.send_document(
        chat_id,
        document,
        filename=facts.filename,
        caption=caption(facts) if caption else None,
        message_thread_id=thread_id,
        read_timeout=120,  # an upload of up to 50 MB takes a while
        write_timeout=300,
        rate_limit_args=BACKGROUND if background else None,
    )
