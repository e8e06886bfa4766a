"""/subscribe and /unsubscribe: which chats (and forum topics) get watcher alerts."""

from __future__ import annotations

from telegram import Update

import storage
from bot.context import Context
from handlers.common import reply, thread_of


async def subscribe_command(update: Update, context: Context) -> None:
    """Subscribe this chat (or forum topic) to alerts."""
    chat = update.effective_chat
    if chat is None:
        return
    services = context.bot_data.services
    where = "this topic" if thread_of(update) is not None else "this chat"
    if await storage.subscribe(services.db, chat.id, thread_of(update), services.clock.now()):
        await reply(update, f"🔔 Subscribed: {where} will get alerts when tasks complete or fail.")
    else:
        await reply(update, f"🔔 {where.capitalize()} is already subscribed.")


async def unsubscribe_command(update: Update, context: Context) -> None:
    """Stop alerts in this chat (or forum topic)."""
    chat = update.effective_chat
    if chat is None:
        return
    services = context.bot_data.services
    where = "this topic" if thread_of(update) is not None else "this chat"
    if await storage.unsubscribe(services.db, chat.id, thread_of(update)):
        await reply(update, f"🔕 Unsubscribed: no more alerts in {where}.")
    else:
        await reply(update, f"🔕 {where.capitalize()} was not subscribed.")
