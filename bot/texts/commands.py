"""The bot's commands, defined once: name, menu text, /help lines and metric label.

Everything about a command except its handler lives here, in a module that imports no handler,
so `bot/` (the /help text, the metrics, `setMyCommands`) and `handlers/` (registration, the
access gate) both read the same table without an import cycle. `handlers/commands.py` pairs
each entry with its handler and refuses to load if one is missing. Texts are catalog msgids
(`N_`), translated where they are shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bot.texts.i18n import N_, SOURCE, Translator

OTHER: Final = "other"  # the one metric label every command we do not have shares


@dataclass(frozen=True, slots=True)
class CommandText:
    """One command as people see it: in the menu, in /help, and in /metrics."""

    name: str  # as typed after the slash, and in the menu
    menu: str  # the menu description (BotCommand.description: 1-256 characters)
    usage: tuple[str, ...]  # its lines in /help, each starting with the command
    aliases: tuple[str, ...] = ()  # other names for it, not in the menu (/start for /help)

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the command answers to, the menu's first."""
        return (self.name, *self.aliases)


COMMANDS: Final[tuple[CommandText, ...]] = (
    CommandText(
        "tasks",
        N_("Recent deferred tasks (optionally: failed, running, ...)"),
        (
            N_("/tasks — recent tasks, newest first"),
            N_(
                "/tasks <i>filter</i> — only pending, running, active, completed, canceled "
                "or failed"
            ),
        ),
    ),
    CommandText(
        "get",
        N_("Download a completed task's CSV: /get <id>"),
        (N_("/get <i>id</i> — the CSV of a completed task (also /get <i>file or task name</i>)"),),
    ),
    CommandText(
        "subscribe",
        N_("Get alerts here when tasks complete or fail"),
        (N_("/subscribe — send alerts to this chat (or forum topic)"),),
    ),
    CommandText(
        "unsubscribe",
        N_("Stop alerts in this chat"),
        (N_("/unsubscribe — stop alerts here"),),
    ),
    CommandText(
        "status",
        N_("SMSC connection and watcher status"),
        (N_("/status — SMSC connection, watcher and bot health"),),
    ),
    CommandText(
        "language",
        N_("Language of this chat: /language ru or en"),
        (N_("/language <i>ru</i> or <i>en</i> — the language I speak in this chat"),),
    ),
    CommandText(
        "help",
        N_("What this bot does"),
        (N_("/help — this message"),),
        aliases=("start",),
    ),
)

# Every name we answer to (aliases too): the access gate's "ours" and the metric labels.
COMMAND_NAMES: Final = frozenset(name for command in COMMANDS for name in command.names)


def metric_label(name: str) -> str:
    """The /metrics label of a typed command: its name if we have it, else one shared label."""
    name = name.lower()
    return name if name in COMMAND_NAMES else OTHER


def menu(t: Translator = SOURCE) -> list[tuple[str, str]]:
    """The command menu in `t`'s language (one table for every language)."""
    return [(command.name, t.gettext(command.menu)) for command in COMMANDS]


def usage_lines(t: Translator = SOURCE) -> list[str]:
    """Every command's /help lines in `t`'s language, in menu order."""
    return [t.gettext(line) for command in COMMANDS for line in command.usage]
