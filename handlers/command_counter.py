"""Counting commands for /metrics, for every allowed chat, before the command runs."""

from __future__ import annotations

from telegram import Update
from telegram.ext import TypeHandler

from bot.context import Context

METRICS_GROUP = -50  # after the allowlist gate, before the commands


async def count_command(update: Update, context: Context) -> None:
    """Count the command this update carries, if any."""
    message = update.effective_message
    if message is None or not message.text or not message.text.startswith("/"):
        return
    name = (
        message.text[1:].split(maxsplit=1)[0].split("@", 1)[0].lower() if message.text[1:] else ""
    )
    context.bot_data.services.metrics.command(name)


def metrics_handler() -> TypeHandler[Update, Context, None]:
    """The counter, to register in METRICS_GROUP."""
    return TypeHandler(Update, count_command)
