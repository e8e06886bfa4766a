"""Replay real Update payloads (tests/corpus/updates, see SOURCES.md) through both transports.

Whatever arrives, the bot neither crashes nor logs a traceback, consumes every update (the
offset moves past it, the webhook answers 200), counts the ones the library cannot parse, and
still answers an allowed /tasks afterwards.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from telegram import Update

from bot.telegram.updates import update_kind
from tests.e2e.test_webhook_edges import get, webhook_bot
from tests.fakes.rig import ADMIN_CHAT, running_rig

CORPUS = Path(__file__).parents[1] / "corpus" / "updates"
# Real payloads python-telegram-bot 22 cannot parse: older field sets (a PollAnswer before
# Bot API 9.6's option_persistent_ids, a CallbackQuery without chat_instance, ...). If a PTB
# upgrade learns to parse one, this list (and the bot's counters) must shrink with it.
UNPARSEABLE = {
    "015_poll_answer.json",
    "017_poll_answer.json",
    "018_message.json",
    "022_callback_query.json",
    "026_chat_join_request.json",
    "070_channel_post_unique_gift_info.json",
    "076_poll.json",
    "077_poll_answer_with_voter_chat.json",
    "078_poll_answer_with_both_user_and_voter_chat.json",
    "115_poll_all_types.json",
    "116_poll_answer_all_types.json",
}
EVERY_TYPE = {
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
}
SERVICE_FIELDS = {
    "new_chat_members",
    "left_chat_member",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "pinned_message",
    "forum_topic_created",
    "forum_topic_closed",
    "group_chat_created",
    "new_chat_title",
}


def corpus() -> list[tuple[str, dict[str, Any]]]:
    """Every sample, by file name."""
    return [(p.name, json.loads(p.read_text())) for p in sorted(CORPUS.glob("*.json"))]


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    """Fail on any error record or exception logged."""
    bad = [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert bad == []


def test_the_corpus_covers_every_update_type_and_the_hard_cases() -> None:
    samples = corpus()
    assert len(samples) >= 60
    kinds = Counter(next(k for k in data if k != "update_id") for _, data in samples)
    assert set(kinds) >= EVERY_TYPE, EVERY_TYPE - set(kinds)
    messages = [d.get("message") or d.get("channel_post") or {} for _, d in samples]
    fields = {key for m in messages for key in m}
    assert fields >= SERVICE_FIELDS, SERVICE_FIELDS - fields
    assert "sender_chat" in fields  # anonymous admins and channels
    assert "is_topic_message" in fields  # forum topics
    sources = (CORPUS / "SOURCES.md").read_text()
    for name, _ in samples:
        assert f"| {name} |" in sources, f"{name} has no source"


@pytest.mark.parametrize(("name", "data"), corpus(), ids=[n for n, _ in corpus()])
def test_each_sample_parses_unless_listed(name: str, data: dict[str, Any]) -> None:
    try:
        Update.de_json(data, None)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - which exception is the library's business
        parsed = False
    else:
        parsed = True
    assert parsed == (name not in UNPARSEABLE)


def expected_unparseable() -> Counter[str]:
    """The counts the bot must report, by update type."""
    return Counter(update_kind(data) for name, data in corpus() if name in UNPARSEABLE)


async def test_replay_by_polling(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with running_rig(tmp_path) as rig:
        rig.emu.ignore_allowed_updates = True  # every type, not only the ones the bot asks for
        for _, data in corpus():
            rig.emu.queue_raw_update(data)
        # Every update consumed: Telegram (the emulator) dropped each once confirmed.
        await rig.emu.wait_until(lambda: rig.emu.pending_updates == [], timeout=60)
        text = await rig.reply_text(ADMIN_CHAT, "/tasks")
        assert "task" in text.lower()
        assert Counter(rig.app.bot_data.updates.stats.unparseable) == expected_unparseable()
        polls = len(rig.emu.calls_to("getUpdates"))
        assert polls < 50  # batches, not a retry storm
        assert rig.app.bot_data.updates.stats.get_updates_failures == 0
    no_tracebacks(caplog)


async def test_replay_by_webhook(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with webhook_bot(tmp_path) as bot:
        # Telegram's side (the emulator) POSTs each one to the bot's server, over real HTTP.
        bot.emu.ignore_allowed_updates = True
        samples = corpus()
        for _, data in samples:
            bot.emu.queue_raw_update(data)
        await bot.emu.wait_for_deliveries(len(samples), timeout=60)
        statuses = [status for _, status in bot.emu.webhook_deliveries]
        assert statuses == [200] * len(samples)  # anything else and Telegram resends it
        assert bot.emu.pending_updates == []
        bot.emu.send_message(ADMIN_CHAT, "/tasks")
        await bot.emu.wait_for("sendMessage", chat_id=ADMIN_CHAT, timeout=30)
        _, metrics = await get(bot.local("/metrics"))
        for kind, count in expected_unparseable().items():
            assert f'telegram_updates_unparseable_total{{type="{kind}"}} {count:.1f}' in metrics
        assert (await get(bot.local("/healthz")))[0] == 200
    no_tracebacks(caplog)


def test_the_update_check_benchmark_runs() -> None:
    from bench import bench_updates

    result = bench_updates.run(rounds=1)
    assert result.updates == len(corpus())
    assert result.check_us > 0
    assert "us/update" in result.describe()
