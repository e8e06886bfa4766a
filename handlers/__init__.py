"""Telegram command handlers: thin, no SQL, no raw HTTP. `register()` wires them all."""

from __future__ import annotations

from telegram.ext import CallbackQueryHandler

from bot.context import App
from handlers.access import ACCESS_GROUP, AccessGate
from handlers.callbacks import stale_button
from handlers.command_counter import METRICS_GROUP, metrics_handler
from handlers.commands import command_handlers
from handlers.errors import on_error
from handlers.membership import MEMBERSHIP_GROUP, membership_handlers
from handlers.tasks import CALLBACK_PATTERN, tasks_page_callback


def register(app: App) -> None:
    """Add membership tracking, the allowlist gate, every command, the buttons, error handling."""
    app.add_handlers(membership_handlers(), group=MEMBERSHIP_GROUP)
    app.add_handler(AccessGate().handler(), group=ACCESS_GROUP)
    app.add_handler(metrics_handler(), group=METRICS_GROUP)
    app.add_handlers(
        [
            *command_handlers(),  # every command of bot.texts.commands.COMMANDS
            CallbackQueryHandler(tasks_page_callback, pattern=CALLBACK_PATTERN),
            # Last: every other button still gets its one answer ("no longer valid").
            CallbackQueryHandler(stale_button),
        ]
    )
    app.add_error_handler(on_error)
