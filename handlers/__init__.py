"""Telegram command handlers: thin, no SQL, no raw HTTP. `register()` wires them all."""

from __future__ import annotations

from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.context import App
from handlers.access import ACCESS_GROUP, AccessGate
from handlers.callbacks import stale_button
from handlers.errors import on_error
from handlers.files import get_command
from handlers.help import help_command
from handlers.language import language_command
from handlers.membership import MEMBERSHIP_GROUP, membership_handlers
from handlers.metrics import METRICS_GROUP, metrics_handler
from handlers.status import status_command
from handlers.subscriptions import subscribe_command, unsubscribe_command
from handlers.tasks import CALLBACK_PATTERN, tasks_command, tasks_page_callback


def register(app: App) -> None:
    """Add membership tracking, the allowlist gate, every command, the buttons, error handling."""
    app.add_handlers(membership_handlers(), group=MEMBERSHIP_GROUP)
    app.add_handler(AccessGate().handler(), group=ACCESS_GROUP)
    app.add_handler(metrics_handler(), group=METRICS_GROUP)
    app.add_handlers(
        [
            CommandHandler(["start", "help"], help_command),
            CommandHandler("tasks", tasks_command),
            CommandHandler("get", get_command),
            CommandHandler("subscribe", subscribe_command),
            CommandHandler("unsubscribe", unsubscribe_command),
            CommandHandler("status", status_command),
            CommandHandler("language", language_command),
            CallbackQueryHandler(tasks_page_callback, pattern=CALLBACK_PATTERN),
            # Last: every other button still gets its one answer ("no longer valid").
            CallbackQueryHandler(stale_button),
        ]
    )
    app.add_error_handler(on_error)
