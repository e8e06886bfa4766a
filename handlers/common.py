"""Small helpers every handler uses: replying in the right topic, explaining SMSC errors."""

from __future__ import annotations

from telegram import Message, Update
from telegram.constants import ParseMode

from bot.error_words import translate_error
from bot.i18n import SOURCE, Translator
from bot.render import esc
from bot.smsc.errors import SmscError, SmscSlowError


async def reply(update: Update, text: str) -> Message | None:
    """Reply in the update's chat (and forum topic) with HTML parse mode."""
    message = update.effective_message
    if message is None:
        return None
    return await message.reply_text(
        text, parse_mode=ParseMode.HTML, disable_web_page_preview=True, do_quote=False
    )


def smsc_error_text(err: SmscError, t: Translator = SOURCE) -> str:
    """A short, human explanation of an SMSC failure, naming its real cause."""
    text = translate_error(str(err), t)
    text = text[:1].upper() + text[1:]
    if isinstance(err, SmscSlowError):
        text += t.gettext(". Try again in a moment")
    if not text.endswith((".", "!", "?", ")")):
        text += "."
    return f"⚠️ {esc(text)}"


def thread_of(update: Update) -> int | None:
    """The forum topic the update came from, if any."""
    message = update.effective_message
    if message is None or not message.is_topic_message:
        return None
    return message.message_thread_id
