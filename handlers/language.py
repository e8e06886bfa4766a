"""The language of each reply, and /language ru|en to choose it per chat.

Private chat: the chat's stored choice, else the user's Telegram `language_code` (`ru*` is
Russian, anything else English). Groups: the chat's choice, else BOT_LANGUAGE. Alerts follow the
same stored choice (bot/alerts/delivery.py), so a group that says /language ru gets Russian alerts.
"""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType

import storage
from bot.context import Context
from bot.texts.i18n import Language, Translator, language_for_user, parse_language, translator
from handlers.common import reply


async def chosen_language(update: Update, context: Context) -> Language | None:
    """The language this update's chat chose with /language, if it did."""
    chat = update.effective_chat
    if chat is None:
        return None
    return parse_language(await storage.get_chat_language(context.bot_data.services.db, chat.id))


async def language_of(update: Update, context: Context) -> Language:
    """The language to answer this update in."""
    chosen = await chosen_language(update, context)
    return chosen if chosen is not None else default_language(update, context)


def default_language(update: Update, context: Context) -> Language:
    """The language of a chat that chose none (read nothing: strangers' floods cost no I/O)."""
    chat = update.effective_chat
    user = update.effective_user
    if chat is not None and chat.type == ChatType.PRIVATE and user is not None:
        return language_for_user(user.language_code)
    return context.bot_data.services.settings.bot_language


async def translator_for(update: Update, context: Context) -> Translator:
    """The translator to answer this update with."""
    return translator(await language_of(update, context))


async def language_command(update: Update, context: Context) -> None:
    """`/language ru|en` stores the chat's language; `/language auto` forgets it; bare: show it."""
    chat = update.effective_chat
    if chat is None:
        return
    services = context.bot_data.services
    args = context.args or []
    word = args[0].strip().lower() if len(args) == 1 else ""
    if word == "auto":
        await storage.set_chat_language(services.db, chat.id, None, services.clock.now())
        t = await translator_for(update, context)
        await reply(
            update,
            t.gettext("Language: automatic ({language}).").format(
                language=t.language_name(t.language)
            ),
        )
        return
    chosen = parse_language(word) if word else None
    if chosen is None:
        t = await translator_for(update, context)
        current = t.language_name(t.language)
        if await chosen_language(update, context) is None:
            current = t.gettext("{language}, chosen automatically").format(language=current)
        await reply(
            update,
            t.gettext("Language: {language}.").format(language=current)
            + "\n"
            + t.gettext(
                "Usage: /language <i>ru</i> or /language <i>en</i> "
                "(/language <i>auto</i>: follow Telegram's setting)"
            ),
        )
        return
    await storage.set_chat_language(services.db, chat.id, chosen, services.clock.now())
    t = translator(chosen)
    await reply(
        update,
        t.gettext("🌐 Language of this chat: {language}.").format(language=t.language_name(chosen)),
    )
