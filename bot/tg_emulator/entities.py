"""Telegram's text formatting, as the Bot API server applies it: HTML, MarkdownV2, Markdown.

The parsers live in html_parser.py, markdown_v2.py and markdown_legacy.py; this module picks one
by parse_mode, trims the result as Telegram does and finds the bot commands in user text.
Lengths and offsets are in UTF-16 code units, as Telegram counts them.
"""

from __future__ import annotations

import re
from typing import Any

from .html_parser import parse_html
from .markdown_legacy import parse_markdown
from .markdown_v2 import parse_markdown_v2
from .parsed_text import EntityParseError, ParsedText, utf16_len

__all__ = [
    "EntityParseError",
    "ParsedText",
    "UnsupportedParseModeError",
    "find_bot_commands",
    "parse_formatted",
    "parse_html",
    "parse_markdown",
    "parse_markdown_v2",
    "strip_formatted",
    "utf16_len",
]

_BOT_COMMAND_RE = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")


class UnsupportedParseModeError(ValueError):
    """parse_mode is not HTML, MarkdownV2 or Markdown."""


def strip_formatted(parsed: ParsedText) -> ParsedText:
    """Trim leading/trailing whitespace as Telegram does, shifting and clipping the entities."""
    text = parsed.text
    lead = len(text) - len(text.lstrip())
    stripped = text.strip()
    shift = utf16_len(text[:lead])
    limit = utf16_len(stripped)
    entities: list[dict[str, Any]] = []
    for entity in parsed.entities:
        start = max(0, entity["offset"] - shift)
        end = min(limit, entity["offset"] + entity["length"] - shift)
        if end > start:
            entities.append({**entity, "offset": start, "length": end - start})
    return ParsedText(stripped, entities)


def parse_formatted(
    text: str,
    parse_mode: str | None,
    entities: list[dict[str, Any]] | None = None,
    *,
    strict_html_entities: bool = True,
) -> ParsedText:
    """Apply parse_mode (case-insensitive; None/"" means plain text with the given entities)."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text, strict_entities=strict_html_entities)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    if mode:
        raise UnsupportedParseModeError(parse_mode)
    return ParsedText(text, [dict(e) for e in entities or []])


def find_bot_commands(text: str) -> list[dict[str, Any]]:
    """bot_command entities for "/cmd" and "/cmd@bot" anywhere in `text`, as Telegram adds them."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: match.start()]),
            "length": utf16_len(match.group()),
        }
        for match in _BOT_COMMAND_RE.finditer(text)
    ]
