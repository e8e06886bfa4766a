"""/get <id> or /get <name>: a completed task's CSV, sent as a document."""

from __future__ import annotations

import logging
import re

from telegram import Update

from bot.context import Context
from bot.smsc.errors import SmscError, SmscNotFoundError
from bot.smsc.models import Task, TaskStatus
from bot.telegram.documents import chat_action
from bot.telegram.task_csv import FileTooLargeError
from bot.texts.freshness import freshness_note, with_note
from bot.texts.i18n import N_
from bot.texts.markup import esc, shorten
from bot.texts.tasks import document_caption, format_size, task_status_text
from handlers.common import reply, smsc_error_text, task_listing_or_reply, thread_of
from handlers.language import translator_for

log = logging.getLogger(__name__)

USAGE = N_("Usage: /get <i>task id</i> (for example /get 1234) or /get <i>file or task name</i>")
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
    t = await translator_for(update, context)
    _ = t.gettext
    if not query or len(query) > MAX_ARG:
        await reply(update, _(USAGE))
        return
    listing = await task_listing_or_reply(update, context, t)
    if listing is None:
        return
    services = context.bot_data.services
    matches = find_task(list(listing.tasks), query)
    note = freshness_note(listing, services.clock.now(), t)  # an old list may lack a new task
    if not matches:
        not_found = _("Task {query} not found.").format(query=esc(shorten(query, 60)))
        await reply(update, with_note(not_found, note))
        return
    if len(matches) > 1:
        ids = ", ".join(f"#{t.id}" for t in matches[:10])
        await reply(
            update, _("Several tasks match that name: {ids}. Use /get <i>id</i>.").format(ids=ids)
        )
        return
    task = matches[0]
    if task.status is not TaskStatus.COMPLETED:
        await reply(update, with_note(task_status_text(task, t), note))
        return
    thread_id = thread_of(update)
    try:
        async with chat_action(context.bot, chat.id, thread_id):
            await services.files.send(
                context.bot, chat.id, task, thread_id=thread_id, caption=document_caption(task, t)
            )
    except SmscNotFoundError:
        await reply(
            update,
            _("SMSC has no file for task {task} (yet). Try again later.").format(
                task=f"<b>#{task.id}</b>"
            ),
        )
    except SmscError as err:
        await reply(update, smsc_error_text(err, t))
    except FileTooLargeError as err:
        await reply(
            update,
            _(
                "The file of task {task} is too large for Telegram: {size}, still {zipped} "
                "zipped (bots may upload up to 50 MB). Download it from the SMSC website."
            ).format(
                task=f"<b>#{task.id}</b>",
                size=format_size(err.size, t),
                zipped=format_size(err.compressed_size, t),
            ),
        )
