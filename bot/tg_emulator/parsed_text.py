"""What the formatting parsers share: the result, the error, and UTF-16 / byte offsets.

Telegram counts lengths and entity offsets in UTF-16 code units and reports parse errors at UTF-8
byte offsets; `Cursor` reads past the end as "" the way TDLib's parsers see a NUL terminator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Cursor",
    "EntityParseError",
    "ParsedText",
    "byte_offset",
    "is_space",
    "sort_entities",
    "utf16_len",
]

_SPACES = " \t\r\n\v"


class EntityParseError(ValueError):
    """The text cannot be parsed; str(error) is Telegram's detail after "can't parse entities: "."""


@dataclass
class ParsedText:
    """Plain text plus Bot API MessageEntity dicts (offsets in UTF-16 code units)."""

    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units, the unit of Telegram's limits and offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def sort_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


class Cursor:
    """Index into a string whose reads past the end return "" (TDLib's NUL terminator)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __getitem__(self, index: int) -> str:
        return self.text[index] if 0 <= index < len(self.text) else ""


def is_space(ch: str) -> bool:
    return ch == "" or ch in _SPACES
