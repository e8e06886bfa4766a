"""/tasks: recent deferred tasks, newest first, paged with an inline "older" button."""

from __future__ import annotations

import logging
import re

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest

from bot.context import Context
from bot.smsc.errors import SmscError
from bot.telegram.errors import is_not_modified, is_uneditable
from bot.texts.error_words import translate_error
from bot.texts.freshness import freshness_note, room_for, with_note
from bot.texts.i18n import Translator
from bot.texts.markup import esc
from bot.texts.tasks import STATUS_FILTERS, TasksPage, tasks_page
from handlers.callbacks import STALE, answering
from handlers.common import reply, task_listing_or_reply
from handlers.language import translator_for

log = logging.getLogger(__name__)

# ASCII digits and \Z: `\d` also takes "٣", and `$` a trailing newline.
CALLBACK_PATTERN = r"\Atasks:([a-z]*):([0-9]*)\Z"
_CALLBACK_RE = re.compile(CALLBACK_PATTERN)


def _keyboard(
    page: TasksPage, status_filter: str | None, t: Translator
) -> InlineKeyboardMarkup | None:
    if page.older_before_id is None:
        return None
    data = f"tasks:{status_filter or ''}:{page.older_before_id}"
    return InlineKeyboardMarkup([[InlineKeyboardButton(t.gettext("Older ▶"), callback_data=data)]])


def _filter_usage(t: Translator) -> str:
    words = ", ".join(sorted(STATUS_FILTERS))
    return t.gettext("Usage: /tasks [filter]\nFilters: {words}").format(words=esc(words))


async def tasks_command(update: Update, context: Context) -> None:
    """List recent tasks, optionally filtered by a status word."""
    args = context.args or []
    status_filter = args[0].lower() if args else None
    t = await translator_for(update, context)
    if len(args) > 1 or (status_filter is not None and status_filter not in STATUS_FILTERS):
        await reply(update, _filter_usage(t))
        return
    listing = await task_listing_or_reply(update, context, t)
    if listing is None:
        return
    note = freshness_note(listing, context.bot_data.services.clock.now(), t)
    page = tasks_page(listing.tasks, status_filter=status_filter, limit=room_for(note), t=t)
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(
        with_note(page.text, note),
        reply_markup=_keyboard(page, status_filter, t),
    )


async def tasks_page_callback(update: Update, context: Context) -> None:
    """Show the next (older) page in place of the current one, or below it if that fails."""
    query = update.callback_query
    if query is None or query.data is None:
        return
    async with answering(query) as answer:
        t = answer.t = await translator_for(update, context)
        match = _CALLBACK_RE.match(query.data)
        if match is None:
            await answer(t.gettext(STALE))
            return
        status_filter = match.group(1) or None
        if status_filter is not None and status_filter not in STATUS_FILTERS:
            await answer(t.gettext(STALE))  # a filter word of another version of the bot
            return
        before_id = int(match.group(2)) if match.group(2) else None
        services = context.bot_data.services
        try:
            listing = await services.smsc.task_listing()
        except SmscError as err:
            await answer(translate_error(str(err), t), show_alert=True)
            return
        note = freshness_note(listing, services.clock.now(), t)
        page = tasks_page(
            listing.tasks,
            status_filter=status_filter,
            before_id=before_id,
            limit=room_for(note),
            t=t,
        )
        await answer()
        await _show_page(
            query, context, _keyboard(page, status_filter, t), with_note(page.text, note)
        )


async def _show_page(
    query: CallbackQuery, context: Context, keyboard: InlineKeyboardMarkup | None, text: str
) -> None:
    message = query.message
    if message is None:  # an inline-mode message: nothing we could edit or reply under
        return
    if message.is_accessible:
        try:
            await query.edit_message_text(text, reply_markup=keyboard)
        except BadRequest as err:
            if is_not_modified(err):
                return
            if not is_uneditable(err):  # deleted, too old or not ours: send the page anew
                raise
            log.info(
                "could not edit the page (%s); sending it as a new message",
                err,
                extra={"event": "page_not_editable", "chat_id": message.chat.id},
            )
        else:
            return
    # An inaccessible message tells only its chat, so the page lands outside any forum topic.
    topic = message.message_thread_id if isinstance(message, Message) else None
    in_topic = isinstance(message, Message) and message.is_topic_message
    await context.bot.send_message(
        message.chat.id,
        text,
        reply_markup=keyboard,
        message_thread_id=topic if in_topic else None,
    )
