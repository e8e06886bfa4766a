"""Say how fresh a task list is: the note a reply built from an old list carries.

"⚠️ List as of 12:03:15 MSK (2 min ago); SMSC answered HTTP 500 at 12:04:02 MSK, next try in
40 s." Every text that comes from SMSC or an exception is HTML-escaped here; the words are the
chat's language (`Translator`), the SMSC error's cause is translated by bot/texts/error_words.py.
"""

from __future__ import annotations

from datetime import datetime

from bot.smsc.listing import TaskListing
from bot.texts.error_words import translate_error
from bot.texts.i18n import SOURCE, Translator
from bot.texts.markup import MESSAGE_LIMIT, esc, shorten, utf16_len

_CAUSE_LIMIT = 200


def clock_time(moment: datetime, t: Translator = SOURCE) -> str:
    """A time of day as the team reads it (SMSC's own zone, like the rest of the bot)."""
    return t.clock(moment)


def ago(moment: datetime, now: datetime, t: Translator = SOURCE) -> str:
    """How long ago, coarsely: "just now", "40 s ago", "2 min ago", "3 h 05 min ago"."""
    _ = t.gettext
    seconds = int((now - moment).total_seconds())
    if seconds < 1:
        return _("just now")
    if seconds < 60:
        return _("{seconds} s ago").format(seconds=seconds)
    if seconds < 3600:
        return _("{minutes} min ago").format(minutes=seconds // 60)
    hours, rest = divmod(seconds // 60, 60)
    return _("{hours} h {minutes} min ago").format(hours=hours, minutes=f"{rest:02d}")


def freshness_note(listing: TaskListing, now: datetime, t: Translator = SOURCE) -> str:
    """The note for a list that is not fresh (HTML, one line); "" for a fresh one."""
    _ = t.gettext
    if listing.fresh or listing.failure is None:
        return ""
    if listing.fetched_at is None:
        head = _("No task list from SMSC yet")
    else:
        head = _("List as of {time} ({ago})").format(
            time=t.clock(listing.fetched_at), ago=ago(listing.fetched_at, now, t)
        )
    err = listing.failure
    cause = esc(shorten(translate_error(err.cause, t), _CAUSE_LIMIT))
    if listing.failed_at is not None:
        # A refusal of our own is a state since then; an answer (or a request) is an event.
        when = _("{cause} at {time}") if err.sent else _("{cause} since {time}")
        cause = when.format(cause=cause, time=t.clock(listing.failed_at))
    text = f"⚠️ <i>{esc(head)}; {cause}"
    if listing.next_attempt_at is not None and listing.next_attempt_at > now:
        wait = t.format_wait((listing.next_attempt_at - now).total_seconds())
        text += ", " + _("next try in {wait}").format(wait=wait)
    text += ".</i>"
    return text


def listing_line(listing: TaskListing, now: datetime, t: Translator = SOURCE) -> str:
    """The /status line about the task list: its age, and the note when it is not fresh."""
    note = freshness_note(listing, now, t)
    if note:
        return note
    if listing.fetched_at is None:
        return t.gettext("Task list: not fetched yet")
    return t.ngettext(
        "Task list: as of {time} ({ago}), {n} task",
        "Task list: as of {time} ({ago}), {n} tasks",
        len(listing.tasks),
    ).format(
        time=t.clock(listing.fetched_at), ago=ago(listing.fetched_at, now, t), n=len(listing.tasks)
    )


def room_for(note: str, limit: int = MESSAGE_LIMIT) -> int:
    """How much of a message's budget is left for the rest once `note` is added."""
    return limit if not note else limit - utf16_len(note) - 2


def with_note(text: str, note: str) -> str:
    """`text` with the freshness note under it (unchanged when there is no note)."""
    return f"{text}\n\n{note}" if note else text
