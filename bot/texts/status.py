"""The /status report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.texts.i18n import SOURCE, Translator
from bot.texts.markup import ERROR_LIMIT, WORD_LIMIT, esc, fit, shorten


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """Everything /status reports."""

    version: str
    uptime: timedelta
    now: datetime
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    last_poll: datetime | None
    subscribers: int
    queued_alerts: int
    watching: bool
    skipped_items: int = 0  # unusable SMSC list items in the last poll (Watcher.last_skipped)
    language: str | None = None  # this chat's language, in words, when /status shows it


def _ago(when: datetime | None, now: datetime, t: Translator) -> str:
    if when is None:
        return t.gettext("never")
    return t.gettext("{duration} ago ({when})").format(
        duration=t.format_duration(now - when), when=t.format_when(when)
    )


def status_text(info: StatusInfo, t: Translator = SOURCE) -> str:
    """Render /status."""
    _ = t.gettext
    lines = [
        "<b>" + _("Status") + "</b>",
        _("SMSC last success: {ago}").format(ago=_ago(info.last_success, info.now, t)),
    ]
    if info.last_error:
        error = esc(shorten(info.last_error, ERROR_LIMIT))
        lines.append(
            _("SMSC last error: {error} ({ago})").format(
                error=error, ago=_ago(info.last_error_at, info.now, t)
            )
        )
    else:
        lines.append(_("SMSC last error: none"))
    if info.watching:
        watcher = _("last poll {ago}").format(ago=_ago(info.last_poll, info.now, t))
    else:
        watcher = _("not running")
    if info.skipped_items:
        watcher += ", " + t.ngettext(
            "{n} unusable SMSC list item skipped (see the log)",
            "{n} unusable SMSC list items skipped (see the log)",
            info.skipped_items,
        ).format(n=info.skipped_items)
    lines += [
        _("Watcher: {watcher}").format(watcher=watcher),
        _("Subscribed chats: {n}").format(n=info.subscribers),
        _("Queued alerts: {n}").format(n=info.queued_alerts),
    ]
    if info.language is not None:
        lines.append(_("Language: {language}").format(language=esc(info.language)))
    lines.append(
        _("Version: {version}, up {uptime}").format(
            version=esc(shorten(info.version, WORD_LIMIT)), uptime=t.format_duration(info.uptime)
        )
    )
    return fit("\n".join(lines))
