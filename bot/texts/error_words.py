"""Our words about SMSC failures, in the chat's language.

The SMSC client raises errors with English texts (they are logged as they are, and the outbox
stores them language-neutral). They are our own words, not SMSC's: each is a catalog msgid listed
here, some with a placeholder ("SMSC answered HTTP {status}", "{cause}; next try in {wait}"), and
`translate_error` maps a finished English text back to its template and renders it in the chat's
language. SMSC's own error descriptions never go through here; a text we do not know is shown as
it is.
"""

from __future__ import annotations

import functools
import re

from bot.texts.i18n import N_, Translator

TEMPLATES: tuple[str, ...] = (
    # bot/smsc/errors.py defaults
    N_("SMSC request failed"),
    N_("SMSC rejected the request parameters"),
    N_("SMSC rejected the login or password (or this IP is not allowed)"),
    N_("SMSC has temporarily blocked this server's IP address"),
    N_("SMSC has no such task or file"),
    N_("SMSC answered error 9 (too many requests)"),
    N_("Our own SMSC request budget is used up"),
    N_("SMSC answered with error {code}"),
    N_("SMSC did not answer in time"),
    N_("SMSC has not answered yet (still waiting in the background)"),
    N_("Could not connect to SMSC"),
    N_("SMSC answered HTTP {status}"),
    N_("SMSC sent an answer we could not understand"),
    # bot/smsc/client.py
    N_("SMSC has not answered for {wait} (still waiting in the background)"),
    N_("SMSC has not yet answered the request sent"),
    N_("SMSC sent an empty file"),
    N_("SMSC sent a file that is not CSV text"),
    N_("The connection to SMSC broke during the answer"),
    N_("SMSC's answer is larger than expected"),
    N_("SMSC has blocked this server's IP address (error 4)"),
    N_("SMSC rejected the login or password, or this IP (error 2)"),
    N_("we are waiting out SMSC's error 9 (too many requests)"),
    N_("another of our processes is logging in to SMSC right now"),
    N_(
        "an earlier login attempt got no answer before the bot restarted "
        "(counted as a failed login)"
    ),
    N_("our own limit of identical SMSC requests a minute is used up (SMSC refused nothing)"),
    N_("{cause}; next attempt in {wait}"),
    N_("{cause}; next login attempt in {wait}"),
    N_("{cause}; next try in {wait}"),
    # bot/smsc/parsing.py, bot/smsc/files.py
    N_("SMSC sent an empty answer"),
    N_("SMSC sent JSON nested too deeply to read"),
    N_("SMSC sent an answer that is not a task list"),
    N_("SMSC sent a web page instead of an API answer"),
    N_("SMSC sent incomplete or unexpected JSON"),
    N_("The SMSC file is larger than this bot accepts"),
)

_PLACEHOLDER = re.compile(r"\\\{(\w+)\\\}")
_WAIT = re.compile(r"^(\d+) (s|min)$")


@functools.cache
def _patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Each template with placeholders as a regex, most literal text first."""
    shaped = [
        (re.compile("^" + _PLACEHOLDER.sub(r"(?P<\1>.+?)", re.escape(tpl)) + "$", re.S), tpl)
        for tpl in TEMPLATES
        if "{" in tpl
    ]
    return tuple(sorted(shaped, key=lambda p: -len(_PLACEHOLDER.sub("", re.escape(p[1])))))


def _wait(text: str, t: Translator) -> str:
    match = _WAIT.match(text)
    if match is None:
        return text
    seconds = int(match.group(1)) * (60 if match.group(2) == "min" else 1)
    return t.format_wait(seconds)


def translate_error(text: str, t: Translator) -> str:
    """Our English text about an SMSC failure, in `t`'s language (unknown texts unchanged)."""
    if t.language == "en" or not text:
        return text
    if text in TEMPLATES:
        return t.gettext(text)
    for pattern, template in _patterns():
        match = pattern.match(text)
        if match is None:
            continue
        parts = {
            name: _wait(value, t)
            if name == "wait"
            else translate_error(value, t)
            if name == "cause"
            else value
            for name, value in match.groupdict().items()
        }
        return t.gettext(template).format(**parts)
    return text
