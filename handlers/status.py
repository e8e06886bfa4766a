"""/status: SMSC health, the watcher, subscribers, version and uptime."""

from __future__ import annotations

from datetime import timedelta

from telegram import Update

import storage
from bot import __version__
from bot.context import Context
from bot.runtime.leadership import leader_line
from bot.texts.error_words import translate_error
from bot.texts.freshness import listing_line
from bot.texts.markup import esc
from bot.texts.status import StatusInfo, status_text
from handlers.common import reply
from handlers.language import chosen_language, translator_for
from handlers.membership import migrations_note


async def status_command(update: Update, context: Context) -> None:
    """Report how the bot and its SMSC connection are doing."""
    services = context.bot_data.services
    stats = services.smsc.stats
    error = stats.last_error
    now = services.clock.now()
    t = await translator_for(update, context)
    language = t.language_name(t.language)
    if await chosen_language(update, context) is None:
        language = t.gettext("{language}, chosen automatically").format(language=language)
    info = StatusInfo(
        version=__version__,
        uptime=timedelta(seconds=services.clock.monotonic() - services.started_mono),
        now=now,
        last_success=stats.last_success_at,
        last_error=translate_error(str(error), t) if error is not None else None,
        last_error_at=stats.last_error_at,
        last_poll=await services.watcher.last_poll(),
        subscribers=await storage.count_subscriptions(services.db),
        queued_alerts=await storage.count_pending(services.db),
        watching=services.watching,
        skipped_items=services.watcher.last_skipped,
        language=language,
    )
    # Cached only: /status must answer even while SMSC is down, and costs SMSC nothing.
    note = listing_line(services.smsc.listing(), now, t)
    text = status_text(info, t) + await migrations_note(context, t) + "\n" + note
    if services.leadership is not None:  # PostgreSQL replicas: who runs the watcher
        leadership = services.leadership
        text += "\n" + esc(leader_line(await leadership.leader(), leadership.replica, now, t))
    await reply(update, text)
