"""/tasks: recent deferred tasks, newest first, paged with an inline "older" button."""

from __future__ import annotations

import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.context import Context
from bot.error_words import translate_error
from bot.freshness import freshness_note, room_for, with_note
from bot.i18n import Translator
from bot.render import STATUS_FILTERS, TasksPage, esc, tasks_page
from bot.smsc.errors import SmscError
from handlers.common import reply, smsc_error_text
from handlers.language import translator_for

CALLBACK_PATTERN = r"^tasks:([a-z]*):(\d*)$"
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
    services = context.bot_data.services
    try:
        listing = await services.smsc.task_listing()
    except SmscError as err:
        await reply(update, smsc_error_text(err, t))
        return
    note = freshness_note(listing, services.clock.now(), t)
    page = tasks_page(listing.tasks, status_filter=status_filter, limit=room_for(note), t=t)
    message = update.effective_message
    if message is None:
        return
    await message.reply_text(
        with_note(page.text, note),
        parse_mode=ParseMode.HTML,
        reply_markup=_keyboard(page, status_filter, t),
        do_quote=False,
    )


async def tasks_page_callback(update: Update, context: Context) -> None:
    """Show the next (older) page in place of the current one."""
    query = update.callback_query
    if query is None or query.data is None:
        return
    match = _CALLBACK_RE.match(query.data)
    t = await translator_for(update, context)
    if match is None:
        await query.answer(t.gettext("This button is no longer valid."))
        return
    status_filter = match.group(1) or None
    before_id = int(match.group(2)) if match.group(2) else None
    services = context.bot_data.services
    try:
        listing = await services.smsc.task_listing()
    except SmscError as err:
        await query.answer(translate_error(str(err), t)[:200], show_alert=True)
        return
    note = freshness_note(listing, services.clock.now(), t)
    page = tasks_page(
        listing.tasks,
        status_filter=status_filter,
        before_id=before_id,
        limit=room_for(note),
        t=t,
    )
    await query.answer()
    try:
        await query.edit_message_text(
            with_note(page.text, note),
            parse_mode=ParseMode.HTML,
            reply_markup=_keyboard(page, status_filter, t),
        )
    except BadRequest as err:
        if "not modified" not in str(err).lower():
            raise
