"""The bot's own membership in a chat: `my_chat_member` updates and what they block."""

from __future__ import annotations

from .chats import DEFAULT_USER_ID, ChatsMixin, make_user
from .records import JSONDict

__all__ = ["MembershipMixin"]

# ChatMemberRestricted / ChatMemberAdministrator's required booleans, as recent Bot API versions
# send them (python-telegram-bot refuses the whole update when one is missing).
_RESTRICTED_RIGHTS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
    "can_edit_tag",
    "can_react_to_messages",
)
_ADMIN_RIGHTS = (
    "is_anonymous",
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)


class MembershipMixin(ChatsMixin):
    """`set_bot_membership`: a ChatMemberUpdated for the bot, as recent Bot API versions send it."""

    def set_bot_membership(
        self,
        chat_id: int,
        status: str,
        *,
        old_status: str = "member",
        user_id: int | None = None,
        can_manage_topics: bool = False,
    ) -> JSONDict:
        """The bot's own membership in a chat changed: a `my_chat_member` update.

        `status` "left" or "kicked" (in a private chat: the user blocked the bot) also makes
        later sends to the chat fail with 403, as Telegram's would; "member" or
        "administrator" undoes that. An "administrator" with `can_manage_topics` may post in
        the chat's closed forum topics.
        """
        if chat_id not in self._chats:
            self.add_chat(chat_id)
        chat = self._chats[chat_id]
        if user_id is None:
            user_id = chat_id if chat.type == "private" else DEFAULT_USER_ID
        if status in ("left", "kicked"):
            self._blocked.add(chat_id)
        else:
            self._blocked.discard(chat_id)
        chat.bot_manages_topics = status == "administrator" and can_manage_topics
        new_member = self._bot_member(status)
        if chat.bot_manages_topics:
            new_member["can_manage_topics"] = True
        change: JSONDict = {
            "chat": chat.as_dict(),
            "from": make_user(user_id, "alice"),
            "date": self._now(),
            "old_chat_member": self._bot_member(old_status),
            "new_chat_member": new_member,
        }
        return self._queue_update({"my_chat_member": change})

    def _bot_member(self, status: str) -> JSONDict:
        member: JSONDict = {"status": status, "user": self.bot_user}
        if status == "kicked":
            member["until_date"] = 0  # for ever
        elif status == "restricted":
            member.update(
                {
                    "is_member": False,
                    "until_date": 0,
                    **dict.fromkeys(_RESTRICTED_RIGHTS, False),
                }
            )
        elif status == "administrator":
            member.update(dict.fromkeys(_ADMIN_RIGHTS, False))
            member["can_be_edited"] = False
        return member
