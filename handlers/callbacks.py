"""Inline buttons: every callback query is answered exactly once, whatever its data.

Telegram shows a spinner on a pressed button until the bot answers, and refuses a second answer
("query is too old and response timeout expired or query ID is invalid"). So each callback
handler answers through one `OneAnswer`, whose guard answers on the way out of any path that
did not (an unexpected error included), and the error handler never answers a query itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telegram import CallbackQuery, Update
from telegram.error import TelegramError

from bot.context import Context
from bot.texts.characters import neutralise
from bot.texts.i18n import N_, SOURCE, Translator
from handlers.common import SORRY
from handlers.language import translator_for

log = logging.getLogger(__name__)

STALE = N_("This button is no longer valid.")
ANSWER_LIMIT = 200  # characters Telegram shows in a callback answer


class OneAnswer:
    """Answers one callback query at most once."""

    def __init__(self, query: CallbackQuery) -> None:
        self.query = query
        self.answered = False
        self.t: Translator = SOURCE  # the chat's language, once the handler knows it

    async def __call__(self, text: str | None = None, *, show_alert: bool = False) -> None:
        """Answer the query, unless it has been answered already."""
        if self.answered:
            return
        self.answered = True  # before the call: a failed answer is not retried
        short = neutralise(text)[:ANSWER_LIMIT] if text else None
        await self.query.answer(short, show_alert=show_alert)


@asynccontextmanager
async def answering(query: CallbackQuery) -> AsyncIterator[OneAnswer]:
    """Yield the query's one answer; answer it on the way out if the block did not."""
    answer = OneAnswer(query)
    try:
        yield answer
    except Exception:
        if not answer.answered:
            await _answer_quietly(answer, answer.t.gettext(SORRY), show_alert=True)
        raise
    if not answer.answered:
        await _answer_quietly(answer, None)


async def _answer_quietly(answer: OneAnswer, text: str | None, *, show_alert: bool = False) -> None:
    try:
        await answer(text, show_alert=show_alert)
    except TelegramError as err:
        log.info("could not answer a callback query: %s", err)


async def stale_button(update: Update, context: Context) -> None:
    """Any button no other handler claims: forged, stale or from an older version of the bot."""
    query = update.callback_query
    if query is None:
        return
    async with answering(query) as answer:
        answer.t = await translator_for(update, context)
        await answer(answer.t.gettext(STALE))
