"""/start and /help."""

from __future__ import annotations

from telegram import Update

from bot.context import Context
from bot.texts.help import usage_text
from handlers.common import reply
from handlers.language import translator_for


async def help_command(update: Update, context: Context) -> None:
    """Say what the bot does and list every command."""
    await reply(update, usage_text(t=await translator_for(update, context)))
