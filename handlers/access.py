"""The allowlist, enforced in one place for every update (commands and callback queries).

A chat is allowed when its id is in ALLOWED_CHAT_IDS, or when it is the supergroup an allowed
group was upgraded to (`chat_migrations`). Everyone else is a stranger, and strangers must never
take the bot away from its team: a refusal used to wait out Telegram's per-chat pacing inside a
handler slot, so 200 `/start` from one stranger delayed an allowed `/tasks` by minutes. Now:

* a stranger chat gets at most one "not allowed" reply per `window` (remembered in a bounded
  LRU, on the injected clock); the rest of its commands are dropped silently;
* the reply is sent as background work (`application.create_task`), never in the handler
  slot, at the lowest priority (`DISPOSABLE`: background pacing, which yields slots to replies
  to people, and abandoned rather than kept waiting more than two seconds, so neither alerts
  nor a stop wait for it); at most `max_pending` are in flight, more are dropped;
* the verdict "stranger" is remembered for the window too, so a flood costs no database reads.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import Application, ApplicationHandlerStop, ExtBot, TypeHandler

import storage
from bot.context import Context, Services
from bot.telegram.pacing import DISPOSABLE, SendAbandoned, SendOptions
from bot.texts.commands import COMMAND_NAMES
from bot.texts.help import not_allowed_text
from bot.texts.i18n import Translator, translator
from handlers.language import default_language

log = logging.getLogger(__name__)

# Runs before every other handler group (those are >= 0), after membership (handlers.membership).
ACCESS_GROUP = -100

REFUSAL_WINDOW = 300.0  # seconds: one "not allowed" per stranger chat per five minutes
MAX_STRANGERS = 4096  # chats remembered; the least recently seen is forgotten first
MAX_PENDING_REFUSALS = 32  # refusals waiting for a send slot; more are dropped


@dataclass(slots=True)
class _Stranger:
    checked_at: float  # when the chat was last found not allowed
    replied_at: float | None = None  # when it was last told so


@dataclass(slots=True)
class RefusalStats:
    """What the gate did with strangers' updates, for tests and benchmarks."""

    refused: int = 0  # updates stopped
    replies_sent: int = 0  # "not allowed" messages sent
    suppressed: int = 0  # commands not answered: the chat was told within the window
    dropped: int = 0  # commands not answered: too many refusals already waiting
    failed: int = 0  # refusal sends Telegram refused


class AccessGate:
    """The allowlist gate (see the module docstring); one per application."""

    def __init__(
        self,
        *,
        window: float = REFUSAL_WINDOW,
        max_strangers: int = MAX_STRANGERS,
        max_pending: int = MAX_PENDING_REFUSALS,
    ) -> None:
        self.window = window
        self.max_strangers = max_strangers
        self.max_pending = max_pending
        self.stats = RefusalStats()
        self.pending = 0  # refusal sends in flight
        self._strangers: collections.OrderedDict[int, _Stranger] = collections.OrderedDict()
        self._migrated: set[int] = set()  # supergroups of allowed groups, once looked up
        self._lookups: dict[int, asyncio.Event] = {}  # database lookups in flight, by chat

    @property
    def remembered(self) -> int:
        """How many stranger chats the gate remembers right now (at most `max_strangers`)."""
        return len(self._strangers)

    def handler(self) -> TypeHandler[Update, Context, None]:
        """The gate, to register in ACCESS_GROUP."""
        return TypeHandler(Update, self.enforce)

    async def enforce(self, update: Update, context: Context) -> None:
        """Stop any update from a chat outside the allowlist; tell commands why, rarely."""
        chat = update.effective_chat
        if chat is None:  # inline queries, polls...: nothing for us there
            raise ApplicationHandlerStop
        services = context.bot_data.services
        if await self.is_allowed(services, chat.id):
            return
        self.stats.refused += 1
        t = translator(default_language(update, context))
        if update.callback_query is not None:
            # Unpaced and cheap, and an unanswered button spins: every query gets its answer.
            try:
                await update.callback_query.answer(
                    t.gettext("This chat ({id}) is not allowed to use this bot.").format(
                        id=chat.id
                    ),
                    show_alert=True,
                )
            except TelegramError as err:
                log.info("could not answer a stranger's button: %s", err)
        elif update.message is not None and is_command_for_us(update.message, context.bot.username):
            self._refuse(context, update.message, services.clock.monotonic(), t)
        # Other messages (group chatter the bot can see) are ignored silently.
        raise ApplicationHandlerStop

    async def is_allowed(self, services: Services, chat_id: int) -> bool:
        """Whether the chat may use the bot: allowlisted, or an allowlisted group upgraded."""
        allowed = services.settings.allowed_chat_ids
        if chat_id in allowed or chat_id in self._migrated:
            return True
        now = services.clock.monotonic()
        known = self._strangers.get(chat_id)
        if known is not None and now - known.checked_at < self.window:
            self._strangers.move_to_end(chat_id)
            return False
        if chat_id > 0:  # a user's private chat: only groups are ever upgraded
            self._remember_stranger(chat_id, now)
            return False
        pending = self._lookups.get(chat_id)
        if pending is not None:  # the flood's other updates wait for the one lookup in flight
            await pending.wait()
            return chat_id in self._migrated
        self._lookups[chat_id] = pending = asyncio.Event()
        try:
            if any(old in allowed for old in await storage.migrated_from(services.db, chat_id)):
                self.allow_migrated(chat_id)
                return True
            self._remember_stranger(chat_id, now)
            return False
        finally:
            del self._lookups[chat_id]
            pending.set()

    def _remember_stranger(self, chat_id: int, now: float) -> None:
        known = self._strangers.get(chat_id)
        if known is None:
            self._strangers[chat_id] = _Stranger(checked_at=now)
            while len(self._strangers) > self.max_strangers:
                self._strangers.popitem(last=False)
        else:
            known.checked_at = now
            self._strangers.move_to_end(chat_id)

    def allow_migrated(self, chat_id: int) -> None:
        """Let a supergroup in that an allowed group became (the mapping is already stored)."""
        self._migrated.add(chat_id)
        self._strangers.pop(chat_id, None)

    def _refuse(self, context: Context, message: Message, now: float, t: Translator) -> None:
        chat_id = message.chat_id
        stranger = self._strangers.get(chat_id)
        if stranger is None:  # forgotten by the LRU meanwhile: remember it again
            stranger = self._strangers[chat_id] = _Stranger(checked_at=now)
        if stranger.replied_at is not None and now - stranger.replied_at < self.window:
            self.stats.suppressed += 1
            return
        if self.pending >= self.max_pending or not context.application.running:
            self.stats.dropped += 1  # not remembered as told: a later command may get the reply
            return
        stranger.replied_at = now
        self.pending += 1
        log.info(
            "refused a command from a chat outside the allowlist",
            extra={"event": "refused_stranger", "chat_id": chat_id},
        )
        topic = message.message_thread_id if message.is_topic_message else None
        context.application.create_task(
            self._send_refusal(context.bot, chat_id, topic, t), name="refusal"
        )

    async def _send_refusal(
        self, bot: ExtBot[SendOptions], chat_id: int, topic: int | None, t: Translator
    ) -> None:
        try:
            await bot.send_message(
                chat_id,
                not_allowed_text(chat_id, t),
                message_thread_id=topic,
                rate_limit_args=DISPOSABLE,
            )
            self.stats.replies_sent += 1
        except SendAbandoned:
            self.stats.dropped += 1  # the bot is busy with its team: the stranger can wait
        except TelegramError as err:
            self.stats.failed += 1
            log.info(
                "could not tell a stranger it is not allowed: %s",
                err,
                extra={"event": "refusal_failed", "chat_id": chat_id},
            )
        finally:
            self.pending -= 1


def is_command_for_us(message: Message, username: str | None) -> bool:
    """A command meant for this bot: `/cmd@thisbot`, one of ours, or any in a private chat.

    In a group, `/tasks@otherbot` and a bare `/foo` we do not have belong to someone else.
    """
    text = message.text
    if not text or not text.startswith("/"):
        return False
    name, at, addressee = text.split(maxsplit=1)[0][1:].partition("@")
    if at:
        return addressee.lower() == (username or "").lower()
    return message.chat.type == ChatType.PRIVATE or name.lower() in COMMAND_NAMES


def gate_of(app: Application[Any, Any, Any, Any, Any, Any]) -> AccessGate:
    """The gate registered on the application (handlers.register adds exactly one)."""
    for handler in app.handlers.get(ACCESS_GROUP, []):
        owner = getattr(handler.callback, "__self__", None)
        if isinstance(owner, AccessGate):
            return owner
    raise LookupError("no access gate registered")
