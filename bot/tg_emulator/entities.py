"""Telegram's text formatting, as the Bot API server applies it: HTML, MarkdownV2, Markdown.

`parse_html` is a port of TDLib's `parse_html` (td/telegram/MessageEntity.cpp), so the accepted
tags, the error wordings and the byte offsets are Telegram's. One deliberate difference: TDLib
keeps an unknown `&name;` or a bare `&` literally, while here `strict_entities=True` (the default)
refuses them, to catch text that was not passed through `html.escape`. MarkdownV2 follows TDLib's
`parse_markdown_v2` for the reserved-character rule and entity nesting; block quotes (`>` at a
line start, `**>` expandable) are approximated. Lengths and offsets are in UTF-16 code units, as
Telegram counts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

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
_SPACES = " \t\r\n\v"
_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"
_BOT_COMMAND_RE = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")


class EntityParseError(ValueError):
    """The text cannot be parsed; str(error) is Telegram's detail after "can't parse entities: "."""


class UnsupportedParseModeError(ValueError):
    """parse_mode is not HTML, MarkdownV2 or Markdown."""


@dataclass
class ParsedText:
    """Plain text plus Bot API MessageEntity dicts (offsets in UTF-16 code units)."""

    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units, the unit of Telegram's limits and offsets."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _sort_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


class _Cursor:
    """Index into a string whose reads past the end return "" (TDLib's NUL terminator)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __getitem__(self, index: int) -> str:
        return self.text[index] if 0 <= index < len(self.text) else ""


def _is_space(ch: str) -> bool:
    return ch == "" or ch in _SPACES


def _decode_html_entity(text: str, pos: int) -> tuple[str | None, int]:
    """Decode the character reference at `pos` ("&..."); (None, pos) if TDLib does not know it."""
    t = _Cursor(text)
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
    t = _Cursor(text)
    end = pos + 1
    while t[end] != "" and (t[end].isalnum() or t[end] == "#"):
        end += 1
    offset = _byte_offset(text, pos)
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
    t = _Cursor(text)
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
        begin_off = _byte_offset(text, begin)
        i += 1
        if t[i] != "/":
            while not _is_space(t[i]) and t[i] != ">":
                i += 1
            if t[i] == "":
                raise err(f"Unclosed start tag at byte offset {begin_off}")
            tag = text[begin + 1 : i].lower()
            if tag not in _SUPPORTED_TAGS:
                raise err(f'Unsupported start tag "{tag}" at byte offset {begin_off}')
            argument = ""
            expandable = False
            while t[i] != ">":
                while t[i] != "" and _is_space(t[i]):
                    i += 1
                if t[i] == ">":
                    break
                attr_begin = i
                while not _is_space(t[i]) and t[i] not in ("=", ">"):
                    i += 1
                attr_name = text[attr_begin:i]
                if not attr_name:
                    raise err(f'Empty attribute name in the tag "{tag}" at byte offset {begin_off}')
                while t[i] != "" and _is_space(t[i]):
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
                while t[i] != "" and _is_space(t[i]):
                    i += 1
                if t[i] == "":
                    raise err(f'Unclosed start tag "{tag}" at byte offset {begin_off}')
                if t[i] not in ("'", '"'):
                    token_begin = i
                    while t[i] != "" and ((t[i].isascii() and t[i].isalnum()) or t[i] in ".-"):
                        i += 1
                    value = text[token_begin:i].lower()
                    if not _is_space(t[i]) and t[i] != ">":
                        raise err(
                            "Unexpected end of name token at byte offset "
                            f"{_byte_offset(text, token_begin)}"
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
        while not _is_space(t[i]) and t[i] != ">":
            i += 1
        end_tag = text[begin + 2 : i].lower()
        while t[i] != "" and _is_space(t[i]):
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
    return ParsedText(result, _sort_entities(entities))


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


@dataclass
class _OpenMd:
    kind: str
    utf16_offset: int
    byte_offset: int
    out_index: int
    argument: str = ""


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
    t = _Cursor(text)
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
        if c == "\\" and t[i + 1] != "" and 0 < ord(t[i + 1]) <= 126:
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
        byte_off = _byte_offset(text, i)
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
                while not _is_space(t[lang_end]) and t[lang_end] != "`":
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
    return ParsedText("".join(out), _sort_entities(entities))


def _close_quote(
    quote: dict[str, Any], utf16: int, out: list[str], entities: list[dict[str, Any]]
) -> None:
    end = utf16 - (1 if out and out[-1] == "\n" else 0)
    if end > quote["offset"]:
        entities.append(
            {"type": quote["type"], "offset": quote["offset"], "length": end - quote["offset"]}
        )


def _md_ends(kind: str, t: _Cursor, i: int) -> bool:
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
    t = _Cursor(text)
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
                if text[i] == "\\" and t[i + 1] != "" and 0 < ord(t[i + 1]) <= 126:
                    chars.append(t[i + 1])
                    i += 2
                    continue
                chars.append(text[i])
                i += 1
            if t[i] != ")":
                what = "a custom emoji URL" if kind == "custom_emoji" else "a URL"
                raise EntityParseError(
                    f"Can't find end of {what} at byte offset {_byte_offset(text, url_begin)}"
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


def parse_markdown(text: str) -> ParsedText:  # noqa: PLR0915
    """Parse legacy Markdown (`*bold*`, `_italic_`, `` `code` ``, ```` ```pre``` ````, links)."""
    t = _Cursor(text)
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
        begin_off = _byte_offset(text, i)
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
    return ParsedText("".join(out), _sort_entities(entities))


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
