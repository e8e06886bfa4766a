"""Membership from the updates: the bot removed from a chat, and groups upgraded to supergroups.

Both run before the access gate: a kicked bot's chat may no longer pass the gate's checks, and
the upgraded group's first update comes from an id the allowlist does not name yet.
"""

from __future__ import annotations

import logging

from telegram import ChatMemberRestricted, Update
from telegram.constants import ChatMemberStatus
from telegram.ext import (
    ApplicationHandlerStop,
    ChatMemberHandler,
    MessageHandler,
    filters,
)

import storage
from bot.context import Context
from bot.texts.i18n import Translator
from handlers.access import gate_of

log = logging.getLogger(__name__)

MEMBERSHIP_GROUP = -200  # before the access gate
_GONE = frozenset({ChatMemberStatus.LEFT, ChatMemberStatus.BANNED})
MAX_SHOWN = 5  # migrations listed in /status


async def on_my_chat_member(update: Update, context: Context) -> None:
    """End a chat's subscriptions as soon as the bot is removed, kicked or blocked there."""
    change = update.my_chat_member
    if change is None:
        raise ApplicationHandlerStop
    member = change.new_chat_member
    chat_id = change.chat.id
    gone = member.status in _GONE or (
        isinstance(member, ChatMemberRestricted) and not member.is_member
    )
    if gone:
        services = context.bot_data.services
        removed = await storage.remove_chat(
            services.db,
            chat_id,
            now=services.clock.now(),
            reason=f"the bot's membership became {member.status}",
        )
        log.warning(
            "bot removed from a chat (%s): %d subscription(s) ended",
            member.status,
            removed,
            extra={"event": "bot_removed", "chat_id": chat_id},
        )
    else:
        log.info(
            "bot membership changed to %s",
            member.status,
            extra={"event": "bot_membership", "chat_id": chat_id},
        )
    raise ApplicationHandlerStop


async def on_migration(update: Update, context: Context) -> None:
    """Follow a group to the supergroup it became (either of Telegram's two service messages)."""
    message = update.effective_message
    if message is not None:
        if message.migrate_to_chat_id is not None:
            await record_migration(context, message.chat_id, message.migrate_to_chat_id)
        elif message.migrate_from_chat_id is not None:
            await record_migration(context, message.migrate_from_chat_id, message.chat_id)
    raise ApplicationHandlerStop


async def record_migration(context: Context, old_chat_id: int, new_chat_id: int) -> None:
    """Move an allowed (or subscribed) group's subscriptions and access to its new id.

    Strangers' upgrades are not recorded: only Telegram sends these service messages, but
    what a stranger's group becomes is none of our business.
    """
    services = context.bot_data.services
    gate = gate_of(context.application)
    settings = services.settings
    permitted = (
        old_chat_id in settings.alert_chat_ids
        or await storage.has_subscriptions(services.db, old_chat_id)
        or await gate.is_allowed(services, old_chat_id)
    )
    if not permitted:
        return
    now = services.clock.now()
    db = services.db
    news = await storage.record_chat_migration(db, old_chat_id, new_chat_id, now=now)
    if not news and (await storage.migration_targets(db)).get(old_chat_id) != new_chat_id:
        log.warning(
            "ignored a second, different upgrade of group %d (to %d)",
            old_chat_id,
            new_chat_id,
            extra={"event": "chat_migration_conflict", "chat_id": new_chat_id},
        )
        return
    moved = await storage.migrate_chat(db, old_chat_id, new_chat_id, now=now)
    if await gate.is_allowed(services, old_chat_id):
        gate.allow_migrated(new_chat_id)
    if news:  # Telegram announces it twice (both service messages): log it once
        log.warning(
            "group %d became supergroup %d: its subscriptions and access follow",
            old_chat_id,
            new_chat_id,
            extra={"event": "chat_migrated", "chat_id": new_chat_id, "old_chat_id": old_chat_id},
        )
    if moved:
        log.info(
            "moved %d subscription(s) of group %d to %d",
            moved,
            old_chat_id,
            new_chat_id,
            extra={"event": "subscriptions_migrated", "chat_id": new_chat_id},
        )


async def migrations_note(context: Context, t: Translator) -> str:
    """Lines for /status listing upgraded groups (empty when there are none)."""
    migrations = await storage.list_chat_migrations(context.bot_data.services.db)
    if not migrations:
        return ""
    lines = [t.gettext("Upgraded groups (access and alerts follow):")]
    lines += [
        f"  <code>{m.old_chat_id}</code> → <code>{m.new_chat_id}</code>"
        f" ({t.format_when(m.migrated_at)})"
        for m in migrations[:MAX_SHOWN]
    ]
    more = len(migrations) - MAX_SHOWN
    if more > 0:
        lines.append("  " + t.ngettext("and {n} more", "and {n} more", more).format(n=more))
    return "\n" + "\n".join(lines)


def membership_handlers() -> list[ChatMemberHandler[Context, None] | MessageHandler[Context, None]]:
    """The handlers to register in MEMBERSHIP_GROUP."""
    return [
        ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER),
        MessageHandler(filters.StatusUpdate.MIGRATE, on_migration),
    ]
