"""Getting a task's CSV from SMSC into a Telegram chat: download once, upload once.

The first send uploads the file (`bot.telegram.task_csv` downloads, keeps and zips it);
Telegram's `file_id` is stored, so every later send (another chat, another `/get`, after a
restart) costs neither an SMSC download nor an upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from telegram import Message
from telegram.constants import ChatAction
from telegram.error import BadRequest
from telegram.ext import ExtBot

import storage
from bot.smsc.models import Task
from bot.telegram.errors import is_stale_file
from bot.telegram.pacing import BACKGROUND, SendOptions
from bot.telegram.task_csv import TELEGRAM_UPLOAD_LIMIT, FileFacts, KeptFiles
from storage.health import unwritable_reason
from storage.outbox import awaiting_files

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.smsc.client import SmscClient

log = logging.getLogger(__name__)

CaptionFn = Callable[[FileFacts], str | None]


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
        self._db = db
        self._clock = clock
        self.upload_limit = upload_limit
        self._disk = KeptFiles(smsc, files_dir)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}
        self._unsaved: dict[int, storage.CachedFile] = {}  # file_ids the database refused

    async def clean_start(self) -> None:
        """Delete leftovers in files_dir except the CSVs of alerts still to be delivered."""
        await self._disk.clean_start(await awaiting_files(self._db))

    async def release(self, task_id: int) -> None:
        """The task's alert is settled: delete its kept file (not under a `/get` using it)."""
        async with self._task_lock(task_id):
            self._disk.release(task_id)

    @property
    def kept(self) -> list[int]:
        """Task ids whose CSV is on disk (what tests check)."""
        return self._disk.kept

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
                self._disk.hold(task.id)
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
            prepared = await self._disk.prepare(task, self.upload_limit)
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
            self._disk.discard_unless_held(task.id)


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
