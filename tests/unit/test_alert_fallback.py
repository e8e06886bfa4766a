"""bot.alerts.fallback: the minimal alert stays short and plain whatever the stored data holds."""

from __future__ import annotations

from typing import Any

import pytest

from bot.alerts.fallback import NAME_CHARS, minimal_text, safe_cut
from bot.telegram.errors import is_content_refusal


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("plain", "plain"),
        ("a\u202eevil\u202c", "aevil"),  # bidi override: gone
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("lone \ud800 surrogate", "lone surrogate"),
        ("tab\tnew\nline\r\x00nul\x1b[31m", "tab new line nul[31m"),
        ("<b>&amp;</b>", "<b>&amp;</b>"),  # sent without a parse mode: shown as typed
        ("   ", ""),
    ],
)
def test_safe_cut_removes_what_could_hide_or_break_text(name: str, expected: str) -> None:
    assert safe_cut(name) == expected


def test_safe_cut_cuts_long_names_with_an_ellipsis() -> None:
    cut = safe_cut("x" * 10_000)
    assert len(cut) == NAME_CHARS
    assert cut.endswith("…")


@pytest.mark.parametrize(
    ("kind", "payload", "expected"),
    [
        ("completed", {"task": {"name": "n"}}, "Task #5 (n) completed."),
        ("failed", {"task": {"name": 42}}, "Task #5 failed."),
        ("canceled", {"task": "not a dict"}, "Task #5 was canceled."),
        ("failed", {}, "Task #5 failed."),
        ("smsc_problem", {"problem": "x" * 10_000}, "SMSC problem"),
        ("smsc_recovered", {}, "SMSC answers again."),
    ],
)
def test_minimal_text_for_every_kind(kind: str, payload: dict[str, Any], expected: str) -> None:
    text = minimal_text(kind, 5, payload)
    assert text.startswith(expected)
    assert "could not be sent" in text
    assert len(text) < 200  # nothing stored can make it long


def test_minimal_completion_points_to_get() -> None:
    assert "/get 9" in minimal_text("completed", 9, {"task": {"name": "big" * 999}})


@pytest.mark.parametrize(
    ("description", "refused"),
    [
        ("Bad Request: message is too long", True),
        ("Bad Request: message caption is too long", True),
        ("Bad Request: can't parse entities: unsupported start tag", True),
        ("Bad Request: message text is empty", True),
        ("Bad Request: wrong file identifier/HTTP URL specified", True),
        ("Bad Request: chat not found", False),
        ("Bad Request: not enough rights to send text messages to the chat", False),
        ("Bad Request: message thread not found", False),
    ],
)
def test_content_refusals_are_told_from_chat_problems(description: str, refused: bool) -> None:
    assert is_content_refusal(description) is refused
