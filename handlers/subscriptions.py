"""/subscribe and /unsubscribe: which chats (and forum topics) get watcher alerts."""

from __future__ import annotations

from telegram import Update

import storage
from bot.context import Context
from handlers.common import reply, thread_of
from handlers.language import translator_for


async def subscribe_command(update: Update, context: Context) -> None:
    """Subscribe this chat (or forum topic) to alerts."""
    chat = update.effective_chat
    if chat is None:
        return
    services = context.bot_data.services
    _ = (await translator_for(update, context)).gettext
    topic = thread_of(update) is not None
    if await storage.subscribe(services.db, chat.id, thread_of(update), services.clock.now()):
        if topic:
            text = _("🔔 Subscribed: this topic will get alerts when tasks complete or fail.")
        else:
            text = _("🔔 Subscribed: this chat will get alerts when tasks complete or fail.")
    else:
        text = (
            _("🔔 This topic is already subscribed.")
            if topic
            else _("🔔 This chat is already subscribed.")
        )
    await reply(update, text)


async def unsubscribe_command(update: Update, context: Context) -> None:
    """Stop alerts in this chat (or forum topic)."""
    chat = update.effective_chat
    if chat is None:
        return
    services = context.bot_data.services
    _ = (await translator_for(update, context)).gettext
    topic = thread_of(update) is not None
    if await storage.unsubscribe(services.db, chat.id, thread_of(update)):
        if topic:
            text = _("🔕 Unsubscribed: no more alerts in this topic.")
        else:
            text = _("🔕 Unsubscribed: no more alerts in this chat.")
    else:
        text = (
            _("🔕 This topic was not subscribed.")
            if topic
            else _("🔕 This chat was not subscribed.")
        )
    await reply(update, text)
