"""Who is in the playground: a private chat, a team forum group with an alerts topic, a stranger.

The bot allows the first two (ALLOWED_CHAT_IDS) and alerts the group's topic; the stranger shows
the gate. Ids look like Telegram's: a private chat's id is its user's id, a supergroup's starts
with -100.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BOT_TOKEN = "424242:playground-demo-token"  # noqa: S105 - the emulator accepts only this one
BOT_USERNAME = "smsc_tasks_bot"
BOT_NAME = "SMSC Tasks"
SMSC_LOGIN = "demo"  # the simulator's documented demo account
SMSC_PASSWORD = "demo"  # noqa: S105 - public demo credentials, like SMSC_LOGIN

ALICE = 5_100_001  # the visitor, in her private chat and in the team group
MALLORY = 5_100_666  # someone who found the bot but is not on the allowlist
TEAM_GROUP = -1_001_234_567_890
ALERTS_TOPIC = 12  # the group's forum topic subscribed to alerts


@dataclass(frozen=True)
class User:
    """A person the visitor types as."""

    id: int
    username: str
    first_name: str


@dataclass(frozen=True)
class Conversation:
    """One entry in the chat list: a chat, or one forum topic of a group."""

    key: str
    chat_id: int
    thread_id: int | None
    title: str
    topic: str | None  # a forum topic's name
    about: str
    user: User
    allowed: bool
    subscribed: bool = False

    @property
    def chat_type(self) -> str:
        """Telegram's chat type."""
        return "private" if self.chat_id > 0 else "supergroup"

    def as_json(self) -> dict[str, Any]:
        """As the JSON API shows it."""
        return {
            "key": self.key,
            "chat_id": self.chat_id,
            "thread_id": self.thread_id,
            "type": self.chat_type,
            "title": self.title,
            "topic": self.topic,
            "about": self.about,
            "as_user": {"id": self.user.id, "first_name": self.user.first_name},
            "allowed": self.allowed,
            "subscribed": self.subscribed,
        }


_ALICE = User(ALICE, "alice", "Alice")
_MALLORY = User(MALLORY, "mallory", "Mallory")
GROUP_TITLE = "Ops team"

CONVERSATIONS: tuple[Conversation, ...] = (
    Conversation(
        "private",
        ALICE,
        None,
        BOT_NAME,
        None,
        "your private chat with the bot · allowed",
        _ALICE,
        allowed=True,
    ),
    Conversation(
        "team-general",
        TEAM_GROUP,
        None,
        GROUP_TITLE,
        "General",
        "team group · allowed",
        _ALICE,
        allowed=True,
    ),
    Conversation(
        "team-alerts",
        TEAM_GROUP,
        ALERTS_TOPIC,
        GROUP_TITLE,
        "Alerts",
        "forum topic · allowed · subscribed to alerts",
        _ALICE,
        allowed=True,
        subscribed=True,
    ),
    Conversation(
        "stranger",
        MALLORY,
        None,
        BOT_NAME,
        None,
        "Mallory's private chat · not in ALLOWED_CHAT_IDS",
        _MALLORY,
        allowed=False,
    ),
)

ALLOWED_CHAT_IDS = (ALICE, TEAM_GROUP)


def find_conversation(chat_id: int, thread_id: int | None) -> Conversation | None:
    """The conversation a chat id and topic belong to, if the playground has it."""
    for conv in CONVERSATIONS:
        if conv.chat_id == chat_id and conv.thread_id == thread_id:
            return conv
    return None


def known_chat(chat_id: int) -> bool:
    """Whether the playground has this chat."""
    return any(conv.chat_id == chat_id for conv in CONVERSATIONS)
