"""/get <id> or /get <name>: a completed task's CSV, sent as a document."""

from __future__ import annotations

import logging
import re

from telegram import Update

from bot.context import Context
from bot.documents import FileTooLargeError, chat_action
from bot.freshness import freshness_note, with_note
from bot.render import document_caption, esc, format_size, shorten, task_status_text
from bot.smsc.errors import SmscError, SmscNotFoundError
from bot.smsc.models import Task, TaskStatus
from handlers.common import reply, smsc_error_text, thread_of

log = logging.getLogger(__name__)

USAGE = "Usage: /get <i>task id</i> (for example /get 1234) or /get <i>file or task name</i>"
MAX_ARG = 256
_TASK_ID = re.compile(r"#?(-?[0-9]{1,40})")


def parse_task_id(text: str) -> int | None:
    """The task id `text` spells (`1234`, `#1234`, `-5`), or None for anything else.

    ASCII digits only: `str.isdigit()` also accepts "²", "①" or "₁₀₀₇", which `int()` refuses,
    and other scripts' digits are more likely part of a name than an id.
    """
    match = _TASK_ID.fullmatch(text)
    return int(match.group(1)) if match else None


def find_task(tasks: list[Task], query: str) -> list[Task]:
    """Tasks matching an id, or else a file or task name (exact, then case-insensitive)."""
    task_id = parse_task_id(query)
    if task_id is not None:
        return [t for t in tasks if t.id == task_id]
    exact = [t for t in tasks if query in (t.file, t.name)]
    if exact:
        return exact
    folded = query.casefold()
    return [t for t in tasks if folded in (t.file.casefold(), t.name.casefold())]


async def get_command(update: Update, context: Context) -> None:
    """Send a completed task's file, or say why it cannot be sent."""
    chat = update.effective_chat
    if chat is None:
        return
    query = " ".join(context.args or []).strip()
    if not query or len(query) > MAX_ARG:
        await reply(update, USAGE)
        return
    services = context.bot_data.services
    try:
        listing = await services.smsc.task_listing()
    except SmscError as err:
        await reply(update, smsc_error_text(err))
        return
    matches = find_task(list(listing.tasks), query)
    note = freshness_note(listing, services.clock.now())  # an old list may lack a new task
    if not matches:
        await reply(update, with_note(f"Task {esc(shorten(query, 60))} not found.", note))
        return
    if len(matches) > 1:
        ids = ", ".join(f"#{t.id}" for t in matches[:10])
        await reply(update, f"Several tasks match that name: {ids}. Use /get <i>id</i>.")
        return
    task = matches[0]
    if task.status is not TaskStatus.COMPLETED:
        await reply(update, with_note(task_status_text(task), note))
        return
    thread_id = thread_of(update)
    try:
        async with chat_action(context.bot, chat.id, thread_id):
            await services.files.send(
                context.bot, chat.id, task, thread_id=thread_id, caption=document_caption(task)
            )
    except SmscNotFoundError:
        await reply(update, f"SMSC has no file for task <b>#{task.id}</b> (yet). Try again later.")
    except SmscError as err:
        await reply(update, smsc_error_text(err))
    except FileTooLargeError as err:
        await reply(
            update,
            f"The file of task <b>#{task.id}</b> is too large for Telegram: "
            f"{format_size(err.size)}, still {format_size(err.compressed_size)} zipped "
            "(bots may upload up to 50 MB). Download it from the SMSC website.",
        )
