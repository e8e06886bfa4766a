"""Telegram HTML, a port of TDLib's `parse_html` (td/telegram/MessageEntity.cpp).

The accepted tags, the error wordings and the byte offsets are Telegram's. One deliberate
difference: TDLib keeps an unknown `&name;` or a bare `&` literally, while here
`strict_entities=True` (the default) refuses them, to catch text that was not passed through
`html.escape`.
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

__all__ = ["parse_html"]

_SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
}
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _decode_html_entity(text: str, pos: int) -> tuple[str | None, int]:
    """Decode the character reference at `pos` ("&..."); (None, pos) if TDLib does not know it."""
    t = Cursor(text)
    end = pos + 1
    if t[pos + 1] == "#":
        end += 1
        code = 0
        if t[pos + 2] == "x":
            end += 1
            while t[end] != "" and t[end] in "0123456789abcdefABCDEF":
                code = code * 16 + int(t[end], 16)
                end += 1
        else:
            while t[end] != "" and t[end] in "0123456789":
                code = code * 10 + int(t[end])
                end += 1
        if code == 0 or code >= 0x10FFFF or end - pos >= 10:
            return None, pos
        decoded = chr(code)
    else:
        while t[end] != "" and t[end].isascii() and t[end].isalpha():
            end += 1
        named = _HTML_NAMED.get(text[pos + 1 : end])
        if named is None:
            return None, pos
        decoded = named
    if t[end] == ";":
        end += 1
    return decoded, end


def _strict_entity_error(text: str, pos: int) -> EntityParseError:
    t = Cursor(text)
    end = pos + 1
    while t[end] != "" and (t[end].isalnum() or t[end] == "#"):
        end += 1
    offset = byte_offset(text, pos)
    if end == pos + 1:
        return EntityParseError(f'Unescaped "&" at byte offset {offset}; use "&amp;"')
    name = text[pos:end] + (";" if t[end] == ";" else "")
    return EntityParseError(f'Unsupported HTML entity "{name}" at byte offset {offset}')


@dataclass
class _OpenTag:
    tag: str
    argument: str
    utf16_offset: int
    out_index: int
    expandable: bool = False


def parse_html(text: str, *, strict_entities: bool = True) -> ParsedText:  # noqa: PLR0915
    """Parse Telegram HTML into plain text and entities, or raise EntityParseError."""
    t = Cursor(text)
    n = len(text)
    out: list[str] = []
    utf16 = 0
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    i = 0

    def err(message: str) -> EntityParseError:
        return EntityParseError(message)

    while i < n:
        c = text[i]
        if c == "&":
            decoded, end = _decode_html_entity(text, i)
            if decoded is not None:
                out.append(decoded)
                utf16 += utf16_len(decoded)
                i = end
                continue
            if strict_entities:
                raise _strict_entity_error(text, i)
        if c != "<":
            out.append(c)
            utf16 += utf16_len(c)
            i += 1
            continue

        begin = i
        begin_off = byte_offset(text, begin)
        i += 1
        if t[i] != "/":
            while not is_space(t[i]) and t[i] != ">":
                i += 1
            if t[i] == "":
                raise err(f"Unclosed start tag at byte offset {begin_off}")
            tag = text[begin + 1 : i].lower()
            if tag not in _SUPPORTED_TAGS:
                raise err(f'Unsupported start tag "{tag}" at byte offset {begin_off}')
            argument = ""
            expandable = False
            while t[i] != ">":
                while t[i] != "" and is_space(t[i]):
                    i += 1
                if t[i] == ">":
                    break
                attr_begin = i
                while not is_space(t[i]) and t[i] not in ("=", ">"):
                    i += 1
                attr_name = text[attr_begin:i]
                if not attr_name:
                    raise err(f'Empty attribute name in the tag "{tag}" at byte offset {begin_off}')
                while t[i] != "" and is_space(t[i]):
                    i += 1
                if t[i] != "=":
                    if tag == "blockquote" and attr_name.lower() == "expandable":
                        expandable = True
                        continue
                    if t[i] == "":
                        raise err(f"Unclosed start tag at byte offset {begin_off}")
                    raise err(
                        "Expected equal sign in declaration of an attribute of the tag "
                        f'"{tag}" at byte offset {begin_off}'
                    )
                i += 1
                while t[i] != "" and is_space(t[i]):
                    i += 1
                if t[i] == "":
                    raise err(f'Unclosed start tag "{tag}" at byte offset {begin_off}')
                if t[i] not in ("'", '"'):
                    token_begin = i
                    while t[i] != "" and ((t[i].isascii() and t[i].isalnum()) or t[i] in ".-"):
                        i += 1
                    value = text[token_begin:i].lower()
                    if not is_space(t[i]) and t[i] != ">":
                        raise err(
                            "Unexpected end of name token at byte offset "
                            f"{byte_offset(text, token_begin)}"
                        )
                else:
                    quote = t[i]
                    i += 1
                    chars: list[str] = []
                    while t[i] != quote and t[i] != "":
                        if t[i] == "&":
                            decoded, end = _decode_html_entity(text, i)
                            if decoded is not None:
                                chars.append(decoded)
                                i = end
                                continue
                        chars.append(t[i])
                        i += 1
                    if t[i] == quote:
                        i += 1
                    value = "".join(chars)
                if t[i] == "":
                    raise err(f"Unclosed start tag at byte offset {begin_off}")
                if tag == "a" and attr_name == "href":
                    argument = value
                elif tag == "code" and attr_name == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attr_name == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attr_name == "emoji-id":
                    argument = value
            if tag == "span" and argument != "spoiler":
                raise err(f'Tag "span" must have class "tg-spoiler" at byte offset {begin_off}')
            stack.append(_OpenTag(tag, argument, utf16, len(out), expandable))
            i += 1  # the ">"
            continue

        # an end tag
        if not stack:
            raise err(f"Unexpected end tag at byte offset {begin_off}")
        while not is_space(t[i]) and t[i] != ">":
            i += 1
        end_tag = text[begin + 2 : i].lower()
        while t[i] != "" and is_space(t[i]):
            i += 1
        if t[i] != ">":
            raise err(f"Unclosed end tag at byte offset {begin_off}")
        open_tag = stack[-1]
        if end_tag and end_tag != open_tag.tag:
            raise err(
                f'Unmatched end tag at byte offset {begin_off}, expected "</{open_tag.tag}>", '
                f'found "</{end_tag}>"'
            )
        if utf16 > open_tag.utf16_offset:
            _close_html_entity(open_tag, utf16, out, entities)
        stack.pop()
        i += 1

    if stack:
        raise err(f"Can't find end tag corresponding to start tag {stack[-1].tag}")
    result = "".join(out)
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in result):
        raise err(
            "Text contains invalid Unicode characters after decoding HTML entities, "
            "check for unmatched surrogate code units"
        )
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
    return ParsedText(result, sort_entities(entities))


def _close_html_entity(
    open_tag: _OpenTag, utf16: int, out: list[str], entities: list[dict[str, Any]]
) -> None:
    offset = open_tag.utf16_offset
    length = utf16 - offset
    tag = open_tag.tag
    simple = _SIMPLE_TAGS.get(tag) or ("spoiler" if tag == "span" else None)
    if simple is not None:
        entities.append({"type": simple, "offset": offset, "length": length})
    elif tag == "tg-emoji":
        if not re.fullmatch(r"-?\d{1,19}", open_tag.argument) or int(open_tag.argument) == 0:
            raise EntityParseError("Invalid custom emoji identifier specified")
        entities.append(
            {
                "type": "custom_emoji",
                "offset": offset,
                "length": length,
                "custom_emoji_id": open_tag.argument,
            }
        )
    elif tag == "a":
        url = open_tag.argument or "".join(out[open_tag.out_index :])
        user = re.fullmatch(r"tg://user\?id=(\d+)", url)
        if user:
            entities.append(
                {
                    "type": "text_mention",
                    "offset": offset,
                    "length": length,
                    "user": {"id": int(user.group(1)), "is_bot": False, "first_name": ""},
                }
            )
        elif url:
            entities.append({"type": "text_link", "offset": offset, "length": length, "url": url})
    elif tag == "pre":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "code"
            and (last["offset"], last["length"]) == (offset, length)
            and last.get("language")
        ):
            last["type"] = "pre"
        else:
            entities.append({"type": "pre", "offset": offset, "length": length})
    elif tag == "code":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "pre"
            and (last["offset"], last["length"]) == (offset, length)
            and open_tag.argument
        ):
            last["language"] = open_tag.argument
        else:
            entity: dict[str, Any] = {"type": "code", "offset": offset, "length": length}
            if open_tag.argument:
                entity["language"] = open_tag.argument  # dropped unless a <pre> wraps it
            entities.append(entity)
    elif tag == "blockquote":
        kind = "expandable_blockquote" if open_tag.expandable else "blockquote"
        entities.append({"type": kind, "offset": offset, "length": length})
