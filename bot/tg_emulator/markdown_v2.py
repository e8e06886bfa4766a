"""MarkdownV2, after TDLib's `parse_markdown_v2`: the reserved-character rule, entity nesting.

Block quotes (`>` at a line start, `**>` expandable) are approximated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .parsed_text import (
    Cursor,
    EntityParseError,
    ParsedText,
    byte_offset,
    is_space,
    sort_entities,
    utf16_len,
)

__all__ = ["parse_markdown_v2"]

_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"


@dataclass
class _OpenMd:
    kind: str
    utf16_offset: int
    byte_offset: int
    out_index: int
    argument: str = ""


def _escapes(t: Cursor, i: int) -> bool:
    """Whether a backslash at `i` escapes the next character (any ASCII one but NUL)."""
    return t[i] == "\\" and t[i + 1] != "" and 0 < ord(t[i + 1]) <= 126


def _reserved_error(ch: str) -> EntityParseError:
    return EntityParseError(
        f"Character '{ch}' is reserved and must be escaped with the preceding '\\'"
    )


_MD_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def parse_markdown_v2(text: str) -> ParsedText:  # noqa: PLR0915
    """Parse MarkdownV2 (TDLib's rules; block quotes approximated) or raise EntityParseError."""
    t = Cursor(text)
    n = len(text)
    out: list[str] = []
    utf16 = 0
    stack: list[_OpenMd] = []
    entities: list[dict[str, Any]] = []
    quote: dict[str, Any] | None = None  # the open block quote, closed at the end of its lines
    i = 0

    def emit(ch: str) -> None:
        nonlocal utf16
        out.append(ch)
        utf16 += utf16_len(ch)

    while i < n:
        c = text[i]
        at_line_start = i == 0 or text[i - 1] == "\n"
        in_code = bool(stack) and stack[-1].kind in ("code", "pre")
        if at_line_start and not in_code:
            is_quote_line = c == ">" or (text.startswith("**>", i) and quote is None)
            if quote is not None and not is_quote_line:
                _close_quote(quote, utf16, out, entities)
                quote = None
            if is_quote_line:
                if quote is None:
                    expandable = text.startswith("**>", i)
                    quote = {
                        "type": "expandable_blockquote" if expandable else "blockquote",
                        "offset": utf16,
                    }
                    i += 3 if expandable else 1
                else:
                    i += 1
                continue
        if _escapes(t, i):
            emit(t[i + 1])
            i += 2
            continue
        if (
            quote is not None
            and quote["type"] == "expandable_blockquote"
            and text.startswith("||", i)
            and t[i + 2] in ("\n", "")
            and not (stack and stack[-1].kind == "spoiler")
        ):
            i += 2  # "||" ends an expandable block quote
            continue
        reserved = "`" if in_code else _MDV2_RESERVED
        if c not in reserved:
            emit(c)
            i += 1
            continue
        if stack and _md_ends(stack[-1].kind, t, i):
            top = stack.pop()
            i = _md_close(top, text, i, utf16, out, entities)
            continue
        # the start of an entity
        byte_off = byte_offset(text, i)
        argument = ""
        if c == "_":
            kind = "underline" if t[i + 1] == "_" else "italic"
            i += 2 if kind == "underline" else 1
        elif c == "*":
            kind, i = "bold", i + 1
        elif c == "~":
            kind, i = "strikethrough", i + 1
        elif c == "|":
            if t[i + 1] != "|":
                raise _reserved_error(c)
            kind, i = "spoiler", i + 2
        elif c == "[":
            kind, i = "text_link", i + 1
        elif c == "!":
            if t[i + 1] != "[":
                raise _reserved_error(c)
            kind, i = "custom_emoji", i + 2
        elif c == "`":
            if t[i + 1] == "`" and t[i + 2] == "`":
                i += 3
                kind = "pre"
                lang_end = i
                while not is_space(t[lang_end]) and t[lang_end] != "`":
                    lang_end += 1
                if lang_end != i and lang_end < n and t[lang_end] != "`":
                    argument = text[i:lang_end]
                    i = lang_end
                if t[i] in ("\n", "\r"):
                    i += 2 if t[i + 1] in ("\n", "\r") and t[i + 1] != t[i] else 1
            else:
                kind, i = "code", i + 1
        else:
            raise _reserved_error(c)
        stack.append(_OpenMd(kind, utf16, byte_off, len(out), argument))

    if stack:
        top = stack[-1]
        raise EntityParseError(
            f"Can't find end of {_MD_NAMES[top.kind]} entity at byte offset {top.byte_offset}"
        )
    if quote is not None:
        _close_quote(quote, utf16, out, entities)
    return ParsedText("".join(out), sort_entities(entities))


def _close_quote(
    quote: dict[str, Any], utf16: int, out: list[str], entities: list[dict[str, Any]]
) -> None:
    end = utf16 - (1 if out and out[-1] == "\n" else 0)
    if end > quote["offset"]:
        entities.append(
            {"type": quote["type"], "offset": quote["offset"], "length": end - quote["offset"]}
        )


def _md_ends(kind: str, t: Cursor, i: int) -> bool:
    c = t[i]
    if kind == "bold":
        return c == "*"
    if kind == "italic":
        return c == "_" and t[i + 1] != "_"
    if kind == "underline":
        return c == "_" and t[i + 1] == "_"
    if kind == "strikethrough":
        return c == "~"
    if kind == "spoiler":
        return c == "|" and t[i + 1] == "|"
    if kind == "code":
        return c == "`"
    if kind == "pre":
        return c == "`" and t[i + 1] == "`" and t[i + 2] == "`"
    return c == "]"  # text_link, custom_emoji


def _md_close(  # noqa: PLR0917 - the parser's state, passed explicitly
    top: _OpenMd, text: str, i: int, utf16: int, out: list[str], entities: list[dict[str, Any]]
) -> int:
    """Close `top` whose end marker starts at `i`; return the index after the marker."""
    t = Cursor(text)
    offset, length = top.utf16_offset, utf16 - top.utf16_offset
    kind = top.kind
    if kind in ("underline", "spoiler"):
        i += 2
    elif kind == "pre":
        i += 3
    elif kind in ("text_link", "custom_emoji"):
        i += 1
        url = ""
        if t[i] != "(":
            if kind == "custom_emoji":
                raise EntityParseError("Custom emoji entity must contain a tg://emoji URL")
            url = "".join(out[top.out_index :])
        else:
            i += 1
            url_begin = i
            chars: list[str] = []
            while i < len(text) and text[i] != ")":
                if _escapes(t, i):
                    chars.append(t[i + 1])
                    i += 2
                    continue
                chars.append(text[i])
                i += 1
            if t[i] != ")":
                what = "a custom emoji URL" if kind == "custom_emoji" else "a URL"
                raise EntityParseError(
                    f"Can't find end of {what} at byte offset {byte_offset(text, url_begin)}"
                )
            i += 1
            url = "".join(chars)
        if length > 0:
            if kind == "custom_emoji":
                match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
                if not match:
                    raise EntityParseError("Custom emoji URL must have an emoji identifier")
                entities.append(
                    {"type": kind, "offset": offset, "length": length, "custom_emoji_id": match[1]}
                )
            elif url:
                entities.append({"type": kind, "offset": offset, "length": length, "url": url})
        return i
    else:
        i += 1
    if length > 0:
        entity: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
        if kind == "pre" and top.argument:
            entity["language"] = top.argument
        entities.append(entity)
    return i
