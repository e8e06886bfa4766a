"""The allowlist, enforced in one place for every update (commands and callback queries)."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import ApplicationHandlerStop, TypeHandler

from bot.context import Context
from bot.render import not_allowed_text
from handlers.language import translator_for

log = logging.getLogger(__name__)

# Runs before every other handler group (those are >= 0).
ACCESS_GROUP = -100


async def enforce_allowlist(update: object, context: Context) -> None:
    """Stop any update from a chat outside ALLOWED_CHAT_IDS; tell commands why, once each."""
    if not isinstance(update, Update):
        raise ApplicationHandlerStop
    chat = update.effective_chat
    if chat is None:  # inline queries, polls...: nothing for us there
        raise ApplicationHandlerStop
    allowed = context.bot_data.services.settings.allowed_chat_ids
    if chat.id in allowed:
        return
    log.info("refused update from a chat outside the allowlist", extra={"chat_id": chat.id})
    t = await translator_for(update, context)
    text = not_allowed_text(chat.id, t)
    if update.callback_query is not None:
        await update.callback_query.answer(
            t.gettext("This chat ({id}) is not allowed to use this bot.").format(id=chat.id),
            show_alert=True,
        )
    elif update.message is not None and _is_command_for_us(update, context.bot.username):
        await update.message.reply_text(text, parse_mode=ParseMode.HTML)
    # Other messages (group chatter the bot can see) are ignored silently.
    raise ApplicationHandlerStop


def _is_command_for_us(update: Update, username: str | None) -> bool:
    """A command, and not one addressed to another bot (`/cmd@otherbot`)."""
    message = update.message
    if message is None or not message.text or not message.text.startswith("/"):
        return False
    _, at, addressee = message.text.split(maxsplit=1)[0].partition("@")
    return not at or addressee.lower() == (username or "").lower()


def access_handler() -> TypeHandler[Update, Context, None]:
    """The gate, to register in ACCESS_GROUP."""
    return TypeHandler(Update, enforce_allowlist)
