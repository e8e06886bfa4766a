"""Each command of `bot.texts.commands.COMMANDS` paired with its handler: registration derives here.

The texts live in `bot/texts/commands.py` (no handler imports, so `bot/` reads them without a
cycle); this module adds only what `bot/` must not import, the callables. A command in the table
without a handler, or a handler for a command not in it, stops the import.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final

from telegram import Update
from telegram.ext import CommandHandler

from bot.context import Context
from bot.texts.commands import COMMANDS
from handlers.help import help_command
from handlers.language import language_command
from handlers.status import status_command
from handlers.subscriptions import subscribe_command, unsubscribe_command
from handlers.task_file import get_command
from handlers.tasks import tasks_command

Callback = Callable[[Update, Context], Coroutine[Any, Any, None]]

HANDLERS: Final[Mapping[str, Callback]] = {
    "tasks": tasks_command,
    "get": get_command,
    "subscribe": subscribe_command,
    "unsubscribe": unsubscribe_command,
    "status": status_command,
    "language": language_command,
    "help": help_command,
}

if HANDLERS.keys() != {command.name for command in COMMANDS}:  # pragma: no cover
    raise RuntimeError(
        "bot.texts.commands.COMMANDS and handlers.commands.HANDLERS name different commands"
    )


def command_handlers() -> list[CommandHandler[Context, None]]:
    """One CommandHandler per command, answering to its name and its aliases."""
    return [CommandHandler(command.names, HANDLERS[command.name]) for command in COMMANDS]
