"""Say how fresh a task list is: the note a reply built from an old list carries.

"⚠️ List as of 12:03:15 MSK (2 min ago); SMSC answered HTTP 500 at 12:04:02 MSK, next try in
40 s." Every text that comes from SMSC or an exception is HTML-escaped here.
"""

from __future__ import annotations

from datetime import datetime

from bot.render import MESSAGE_LIMIT, esc, shorten, utf16_len
from bot.smsc.etiquette import format_wait
from bot.smsc.listing import TaskListing
from bot.smsc.models import SMSC_TZ

_CAUSE_LIMIT = 200


def clock_time(moment: datetime) -> str:
    """A time of day as the team reads it (SMSC's own zone, like the rest of the bot)."""
    return f"{moment.astimezone(SMSC_TZ):%H:%M:%S} MSK"


def ago(moment: datetime, now: datetime) -> str:
    """How long ago, coarsely: "just now", "40 s ago", "2 min ago", "3 h 05 min ago"."""
    seconds = int((now - moment).total_seconds())
    if seconds < 1:
        return "just now"
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    hours, rest = divmod(seconds // 60, 60)
    return f"{hours} h {rest:02d} min ago"


def freshness_note(listing: TaskListing, now: datetime) -> str:
    """The note for a list that is not fresh (HTML, one line); "" for a fresh one."""
    if listing.fresh or listing.failure is None:
        return ""
    if listing.fetched_at is None:
        head = "No task list from SMSC yet"
    else:
        head = f"List as of {clock_time(listing.fetched_at)} ({ago(listing.fetched_at, now)})"
    err = listing.failure
    cause = esc(shorten(err.cause, _CAUSE_LIMIT))
    if listing.failed_at is not None:
        # A refusal of our own is a state since then; an answer (or a request) is an event.
        word = "at" if err.sent else "since"
        cause += f" {word} {clock_time(listing.failed_at)}"
    text = f"⚠️ <i>{esc(head)}; {cause}"
    if listing.next_attempt_at is not None and listing.next_attempt_at > now:
        text += f", next try in {format_wait((listing.next_attempt_at - now).total_seconds())}"
    text += ".</i>"
    return text


def listing_line(listing: TaskListing, now: datetime) -> str:
    """The /status line about the task list: its age, and the note when it is not fresh."""
    note = freshness_note(listing, now)
    if note:
        return note
    if listing.fetched_at is None:
        return "Task list: not fetched yet"
    return (
        f"Task list: as of {clock_time(listing.fetched_at)} ({ago(listing.fetched_at, now)}), "
        f"{len(listing.tasks)} tasks"
    )


def room_for(note: str, limit: int = MESSAGE_LIMIT) -> int:
    """How much of a message's budget is left for the rest once `note` is added."""
    return limit if not note else limit - utf16_len(note) - 2


def with_note(text: str, note: str) -> str:
    """`text` with the freshness note under it (unchanged when there is no note)."""
    return f"{text}\n\n{note}" if note else text
