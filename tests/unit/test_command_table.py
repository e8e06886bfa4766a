"""The one command table: registration, the menu, /help, the access gate and metrics agree."""

from __future__ import annotations

import pytest

from bot.metrics import Metrics
from bot.texts.commands import COMMAND_NAMES, COMMANDS, OTHER, menu, metric_label, usage_lines
from bot.texts.help import usage_text
from bot.texts.i18n import LANGUAGES, Language, translator
from handlers.commands import HANDLERS, command_handlers


def test_every_command_has_exactly_one_handler() -> None:
    assert list(HANDLERS) == [c.name for c in COMMANDS]
    registered = [name for handler in command_handlers() for name in sorted(handler.commands)]
    assert sorted(registered) == sorted(COMMAND_NAMES)  # each name once, aliases included
    assert "start" in COMMAND_NAMES
    assert "start" not in [name for name, _ in menu()]  # an alias, not a menu entry


def test_names_are_what_telegram_accepts_in_a_menu() -> None:
    for name in COMMAND_NAMES:
        assert name.islower(), name
        assert name.isascii(), name
        assert 1 <= len(name) <= 32, name


@pytest.mark.parametrize("language", LANGUAGES)
def test_help_lists_each_commands_own_lines_in_order(language: Language) -> None:
    t = translator(language)
    text = usage_text(t=t)
    lines = usage_lines(t)
    assert len(lines) == sum(len(c.usage) for c in COMMANDS)
    positions = [text.index(line) for line in lines]
    assert positions == sorted(positions)
    for command in COMMANDS:
        for line in command.usage:
            assert t.gettext(line).startswith(f"/{command.name}")


@pytest.mark.parametrize(
    ("typed", "label"),
    [
        ("tasks", "tasks"),
        ("TASKS", "tasks"),
        ("start", "start"),
        ("language", "language"),  # once counted as "other": the list was kept by hand
        ("foo", OTHER),
        ("", OTHER),
        ("other", OTHER),
    ],
)
def test_metric_label_is_the_name_for_ours_and_one_label_for_the_rest(
    typed: str, label: str
) -> None:
    assert metric_label(typed) == label


def test_metrics_count_every_command_of_the_table_under_its_name() -> None:
    metrics = Metrics()
    for name in COMMAND_NAMES:
        metrics.command(name)
    metrics.command("nosuchcommand")
    text = metrics.render().decode()
    for name in COMMAND_NAMES:
        assert f'bot_commands_total{{command="{name}"}} 1.0' in text
    assert f'bot_commands_total{{command="{OTHER}"}} 1.0' in text
