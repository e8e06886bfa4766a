"""What the bot says about itself: /help, and the one reply a chat outside the allowlist gets."""

from __future__ import annotations

from bot.texts.commands import usage_lines
from bot.texts.i18n import SOURCE, Translator
from bot.texts.markup import fit


def usage_text(t: Translator = SOURCE) -> str:
    """The /help text: what the bot does and every command."""
    _ = t.gettext
    return fit(
        "<b>"
        + _("SMSC deferred tasks")
        + "</b>\n"
        + _(
            "I show your SMSC export tasks, send their CSV files, and alert subscribed chats when "
            "an export completes (with the file) or fails."
        )
        + "\n\n"
        + "\n".join(usage_lines(t))
    )


def not_allowed_text(chat_id: int, t: Translator = SOURCE) -> str:
    """The only reply a chat outside the allowlist gets."""
    _ = t.gettext
    return fit(
        _("This chat is not allowed to use this bot.")
        + "\n"
        + _("Chat id: {id}").format(id=f"<code>{chat_id}</code>")
        + "\n"
        + _("Ask an administrator to add it to ALLOWED_CHAT_IDS.")
    )
