"""Which characters from outside may reach a chat, and as what.

Three kinds of text take outside characters, and each cleans them for its own reason:

- `neutralise` (every HTML message, through `markup.esc`): characters that reorder or hide text
  (bidi controls, zero-width characters) go; other controls become a visible U+FFFD; newlines
  stay, since messages are laid out in lines; everything else is shown as it is.
- `without_controls` (plain text with no markup to lean on: the last-resort alert of
  `bot.alerts.fallback`, file names in `bot.smsc.files`): every Unicode "other" character goes,
  so nothing invisible is left to hide in one short line.
- `bot.smsc.parsing.clean_text` (what SMSC sends, before it is stored): only what SQLite and
  Telegram cannot carry at all (NUL, lone surrogates), so the stored name is SMSC's; the two
  above apply when it is shown.
"""

from __future__ import annotations

import unicodedata

# Characters that rearrange or hide text rather than show it: bidi embeddings, overrides,
# isolates and marks, and zero-width characters. A task name holding U+202E could otherwise make
# the status word after it read backwards.
_BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]
_ZERO_WIDTH = [*range(0x200B, 0x200E), *range(0x2060, 0x2065), 0xFEFF, 0x180E]
_INVISIBLE: dict[int, str | None] = dict.fromkeys([*_BIDI, *_ZERO_WIDTH])
# C0 and C1 control characters (and DEL) become a visible replacement character; newline stays
# where the text is laid out in lines, tab and carriage return read as a space, and U+2028/U+2029
# become plain line breaks.
_CONTROLS: dict[int, str | None] = {
    **dict.fromkeys([*range(0x20), 0x7F, *range(0x80, 0xA0)], "\ufffd"),
    0x09: " ",
    0x0A: "\n",
    0x0D: " ",
    0x2028: "\n",
    0x2029: "\n",
}
_NEUTRAL = str.maketrans({**_CONTROLS, **_INVISIBLE})


def neutralise(text: object) -> str:
    """Drop characters that reorder or hide text; make control characters visible."""
    return str(text).translate(_NEUTRAL)


def without_controls(text: str) -> str:
    """Drop every Unicode category C character: controls, format (bidi, zero-width), surrogate,
    private use and unassigned ones. Whitespace, a control or not, becomes a plain space.
    """
    return "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )
