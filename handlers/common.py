"""Small helpers every handler uses: replying in the right topic, explaining SMSC errors."""

from __future__ import annotations

from telegram import Message, Update

from bot.context import Context
from bot.smsc.errors import SmscError, SmscSlowError
from bot.smsc.listing import TaskListing
from bot.texts.error_words import translate_error
from bot.texts.i18n import N_, SOURCE, Translator
from bot.texts.markup import esc

# What a person is told when a handler failed on our side (a command reply or a button's answer).
SORRY = N_("Something went wrong on our side. It has been logged; please try again in a moment.")


async def reply(update: Update, text: str) -> Message | None:
    """Reply in the update's chat (and forum topic); HTML and no quote are the app's Defaults."""
    message = update.effective_message
    if message is None:
        return None
    return await message.reply_text(text, disable_web_page_preview=True)


def smsc_error_text(err: SmscError, t: Translator = SOURCE) -> str:
    """A short, human explanation of an SMSC failure, naming its real cause."""
    text = translate_error(str(err), t)
    text = text[:1].upper() + text[1:]
    if isinstance(err, SmscSlowError):
        text += t.gettext(". Try again in a moment")
    if not text.endswith((".", "!", "?", ")")):
        text += "."
    return f"⚠️ {esc(text)}"


async def task_listing_or_reply(
    update: Update, context: Context, t: Translator
) -> TaskListing | None:
    """SMSC's task list (maybe cached), or None once the chat was told why there is none."""
    try:
        return await context.bot_data.services.smsc.task_listing()
    except SmscError as err:
        await reply(update, smsc_error_text(err, t))
        return None


def thread_of(update: Update) -> int | None:
    """The forum topic the update came from, if any."""
    message = update.effective_message
    if message is None or not message.is_topic_message:
        return None
    return message.message_thread_id
