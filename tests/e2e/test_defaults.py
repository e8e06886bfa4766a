"""HTML and "no quote" come from the application's Defaults: every reply still carries them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask
from tests.fakes.rig import TEAM_GROUP, Rig, running_rig

GROUP = {"chat_type": "supergroup", "title": "Team"}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with running_rig(tmp_path) as rig:
        yield rig


async def test_group_replies_are_html_and_never_quote_the_command(rig: Rig) -> None:
    # In a group PTB quotes by default: only Defaults(do_quote=False) keeps replies unthreaded.
    rig.sim.add_task(SimTask(7, "Export <b>&", TaskStatus.FAILED, created="01.11.2026 10:00:00"))
    for command in ("/help", "/tasks", "/status", "/tasks failed", "/get 7"):
        await rig.say(TEAM_GROUP, command, **GROUP)
    calls = rig.emu.calls_to("sendMessage", chat_id=TEAM_GROUP, ok=True)
    assert len(calls) == 5
    for call in calls:
        assert call.params["parse_mode"] == "HTML", call.params
        assert "reply_parameters" not in call.params
        assert "reply_to_message_id" not in call.params
    tasks = str(calls[1].response["result"]["text"])
    assert "Export <b>&" in tasks  # the name, escaped by us, shown as typed
    assert "<b>" not in str(calls[0].response["result"]["text"])  # markup parsed, not shown


async def test_document_caption_is_html(rig: Rig) -> None:
    rig.sim.add_task(
        SimTask(
            9,
            "Done",
            TaskStatus.COMPLETED,
            created="01.11.2026 10:00:00",
            time="01.11.2026 10:01:00",
            rows=5,
        )
    )
    call = await rig.say(TEAM_GROUP, "/get 9", wait="sendDocument", **GROUP)
    assert call is not None
    assert call.status == 200, call.response
    assert call.params["parse_mode"] == "HTML"
    caption = str(call.response["result"]["caption"])
    assert "#9" in caption
    assert "<b>" not in caption
