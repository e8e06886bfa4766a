"""Legacy Markdown: `*bold*`, `_italic_`, `` `code` ``, ```` ```pre``` ```` and `[text](url)`."""

from __future__ import annotations

from typing import Any

from .parsed_text import Cursor, EntityParseError, ParsedText, byte_offset, sort_entities, utf16_len

__all__ = ["parse_markdown"]


def parse_markdown(text: str) -> ParsedText:  # noqa: PLR0915
    """Parse legacy Markdown (`*bold*`, `_italic_`, `` `code` ``, ```` ```pre``` ````, links)."""
    t = Cursor(text)
    n = len(text)
    out: list[str] = []
    utf16 = 0
    entities: list[dict[str, Any]] = []
    i = 0
    while i < n:
        c = text[i]
        if c == "\\" and t[i + 1] in ("_", "*", "`", "["):
            out.append(t[i + 1])
            utf16 += 1
            i += 2
            continue
        if c not in "_*`[":
            out.append(c)
            utf16 += utf16_len(c)
            i += 1
            continue
        begin_off = byte_offset(text, i)
        start = utf16
        if c == "`" and text.startswith("```", i):
            end = text.find("```", i + 3)
            if end < 0:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {begin_off}"
                )
            body = text[i + 3 : end]
            language = ""
            first_line, sep, rest = body.partition("\n")
            if sep and first_line and " " not in first_line:
                language, body = first_line, rest
            out.append(body)
            utf16 += utf16_len(body)
            entity: dict[str, Any] = {"type": "pre", "offset": start, "length": utf16 - start}
            if language:
                entity["language"] = language
            if utf16 > start:
                entities.append(entity)
            i = end + 3
            continue
        if c == "[":
            close = text.find("]", i + 1)
            if close < 0 or t[close + 1] != "(" or text.find(")", close) < 0:
                raise EntityParseError(
                    f"Can't find end of the entity starting at byte offset {begin_off}"
                )
            url_end = text.find(")", close)
            label = text[i + 1 : close]
            out.append(label)
            utf16 += utf16_len(label)
            if utf16 > start:
                entities.append(
                    {
                        "type": "text_link",
                        "offset": start,
                        "length": utf16 - start,
                        "url": text[close + 2 : url_end],
                    }
                )
            i = url_end + 1
            continue
        end = text.find(c, i + 1)
        if end < 0:
            raise EntityParseError(
                f"Can't find end of the entity starting at byte offset {begin_off}"
            )
        body = text[i + 1 : end]
        out.append(body)
        utf16 += utf16_len(body)
        kind = {"*": "bold", "_": "italic", "`": "code"}[c]
        if utf16 > start:
            entities.append({"type": kind, "offset": start, "length": utf16 - start})
        i = end + 1
    return ParsedText("".join(out), sort_entities(entities))
