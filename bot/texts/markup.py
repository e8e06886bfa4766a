"""Telegram's HTML parse mode: escaping, and lengths that always fit its limits.

Every string that comes from outside (task names, file names, SMSC's error texts) passes through
`esc()`. Lengths are budgeted twice, so a message always fits Telegram's limits whatever the
input: each external field is cut to its own limit (`shorten`, in UTF-16 units, before escaping),
and every public renderer (`bot.texts.tasks`, `.status`, `.watcher_alerts`, `.help`) passes its
result through `fit()`, which measures the text as Telegram will count it (after parsing the HTML:
tags cost nothing, an entity one character) and, if it is still too long, cuts it between tags
and entities, closing any tag it cut into. Nothing is tuned to the English wording: budgets are
measured on the text actually rendered, in whichever language the `Translator`
(bot/texts/i18n.py) each renderer takes speaks.
"""

from __future__ import annotations

import html
import re

from bot.texts.characters import neutralise

MESSAGE_LIMIT = 4096  # UTF-16 units of a message's text after entity parsing
CAPTION_LIMIT = 1024  # the same, for a document's caption
# Per-field limits (UTF-16 units, before escaping): what is worth reading, far below the totals.
NAME_LIMIT = 80  # a task name
TIME_LIMIT = 40  # an SMSC time we could not parse, shown raw
ERROR_LIMIT = 300  # an error text (SMSC's, Telegram's, ours)
WORD_LIMIT = 30  # a filter word or the version
ELLIPSIS = "…"


def esc(text: object) -> str:
    """Escape any value for HTML parse mode, neutralising layout-changing characters."""
    return html.escape(neutralise(text), quote=False)


def shorten(text: str, limit: int = NAME_LIMIT) -> str:
    """Put `text` on one line and cut it to `limit` UTF-16 units with an ellipsis (before esc)."""
    text = " ".join(text.split())  # newlines in names would break the list layout
    if len(text) <= limit // 2 or utf16_len(text) <= limit:
        return text
    return _cut(text, limit - utf16_len(ELLIPSIS)) + ELLIPSIS


def _cut(text: str, units: int) -> str:
    """The longest prefix of `text` within `units` UTF-16 units (never half a surrogate pair)."""
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > units:
            return text[:index]
    return text


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# A tag, a character reference, or a run of plain text: the pieces `fit` never splits.
_HTML_TOKEN = re.compile(r"<[^<>]*>|&(?:[a-zA-Z]+|#[0-9]+|#x[0-9a-fA-F]+);|[^<&]+|[<&]")
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z][a-zA-Z0-9-]*)")


def visible_len(text: str) -> int:
    """UTF-16 length of HTML `text` as Telegram counts it: tags removed, entities decoded."""
    total = 0
    for match in _HTML_TOKEN.finditer(text):
        total += _shown(match.group())
    return total


_ENTITY_LEN = {"&lt;": 1, "&gt;": 1, "&amp;": 1, "&quot;": 1}  # what esc() writes


def _is_tag(token: str) -> bool:
    return len(token) > 1 and token[0] == "<" and token[-1] == ">"


def _shown(token: str) -> int:
    """UTF-16 units one token shows: none for a tag, its character for an entity."""
    if _is_tag(token):
        return 0
    if token[0] == "&" and len(token) > 1:
        return _ENTITY_LEN.get(token) or utf16_len(html.unescape(token))
    return utf16_len(token)


def fit(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Guarantee HTML `text` shows at most `limit` UTF-16 units: cut it with an ellipsis if not.

    The cut falls between tags and character references, never inside one, and every tag left
    open is closed again, so the result parses as well as the input did.
    """
    if utf16_len(text) <= limit:
        return text  # markup only ever shows shorter than it is written
    budget = limit - utf16_len(ELLIPSIS)
    out: list[str] = []
    open_tags: list[str] = []
    used = 0
    cut: str | None = None  # the text cut at the budget, once the scan has passed it
    for match in _HTML_TOKEN.finditer(text):
        token = match.group()
        if _is_tag(token):
            if cut is None:
                name = _TAG_NAME.match(token)
                if token.startswith("</"):
                    if open_tags:
                        open_tags.pop()
                elif name is not None:
                    open_tags.append(name.group(1).lower())
                out.append(token)
            continue
        cost = _shown(token)
        if cut is None and used + cost > budget:
            partial = "" if token[0] == "&" and len(token) > 1 else _cut(token, budget - used)
            closing = "".join(f"</{tag}>" for tag in reversed(open_tags))
            cut = "".join(out) + partial + ELLIPSIS + closing
        elif cut is None:
            out.append(token)
        used += cost
        if used > limit and cut is not None:
            return cut  # too long indeed; no need to read the rest
    return text
