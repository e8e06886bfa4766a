"""The one error handler: log unexpected exceptions, tell the user something went wrong."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import (
    ChatMigrated,
    Forbidden,
    TelegramError,
)

from bot.context import Context
from bot.telegram.errors import TelegramFailure, classify
from bot.texts.i18n import SOURCE, Translator
from handlers.common import SORRY, thread_of
from handlers.language import translator_for
from handlers.membership import record_migration

log = logging.getLogger(__name__)


async def on_error(update: object, context: Context) -> None:
    """Log the exception with its traceback (secrets are scrubbed by the log formatter)."""
    err = context.error
    if isinstance(err, TelegramError) and context.bot_data.running:
        context.bot_data.services.metrics.telegram_error(err)
    migrated_chat = update.effective_chat if isinstance(update, Update) else None
    if isinstance(err, ChatMigrated) and migrated_chat is not None and context.bot_data.running:
        # A reply to a group that has just become a supergroup: follow it, nothing is broken.
        await record_migration(context, migrated_chat.id, err.new_chat_id)
        return
    in_topic = isinstance(update, Update) and thread_of(update) is not None
    failure = classify(err, in_topic=in_topic) if isinstance(err, TelegramError) else None
    if failure in (TelegramFailure.UNREACHABLE, TelegramFailure.RETRY):
        # Telegram itself is unreachable or throttling us: replying would fail the same way.
        log.warning("Telegram API problem: %s", err)
        return
    chat_id = (
        update.effective_chat.id if isinstance(update, Update) and update.effective_chat else None
    )
    if failure in (TelegramFailure.TOPIC_CLOSED, TelegramFailure.TOPIC_GONE):
        # Admins closed (or deleted) the topic the command came from: our reply, and a "sorry"
        # into the same topic, are refused alike. Nothing is broken on our side.
        log.warning(
            "reply refused: the forum topic is %s",
            "closed" if failure is TelegramFailure.TOPIC_CLOSED else "deleted",
            extra={"event": "reply_refused_in_topic", "chat_id": chat_id},
        )
        return
    log.error(
        "unhandled error", exc_info=err, extra={"event": "unhandled_error", "chat_id": chat_id}
    )
    if not isinstance(update, Update) or isinstance(err, Forbidden):
        return  # a job (update=None), or a chat we may not write to
    if update.callback_query is not None:
        return  # its handler has answered it (handlers.callbacks); a second answer fails
    try:
        if update.effective_message is not None:
            sorry = (await _translator(update, context)).gettext(SORRY)
            # Plain on purpose: the last-resort reply must not depend on markup parsing.
            await update.effective_message.reply_text(sorry, parse_mode=None)
    except Exception:
        log.warning("could not tell the user about the error", exc_info=True)


async def _translator(update: Update, context: Context) -> Translator:
    """The chat's language, or English when even that cannot be read (the error may be the DB)."""
    try:
        return await translator_for(update, context)
    except Exception:
        log.warning("could not read the chat's language for the error reply", exc_info=True)
        return SOURCE
