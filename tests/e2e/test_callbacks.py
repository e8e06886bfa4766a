"""End-to-end: every callback query is answered exactly once, whatever its data (issue 9)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.smsc.models import TaskStatus
from bot.smsc.simulator import Fault, SimTask
from bot.tg_emulator import ApiFailure, Call
from tests.fakes.rig import ADMIN_CHAT, Rig, running_rig

pytestmark = pytest.mark.asyncio

STALE = "This button is no longer valid."


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with running_rig(tmp_path) as rig:
        for i in range(1, 41):
            rig.sim.add_task(
                SimTask(i, f"task {i}", TaskStatus.COMPLETED, created="01.11.2026 10:00:00")
            )
        yield rig


async def first_page(rig: Rig) -> tuple[int, str]:
    """Send /tasks; return the reply's message id and its "Older" button data."""
    call = await rig.say(ADMIN_CHAT, "/tasks")
    assert call is not None
    data = call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    return call.response["result"]["message_id"], data


def answers_to(rig: Rig, query_id: str) -> list[Call]:
    return [
        c
        for c in rig.emu.calls_to("answerCallbackQuery")
        if c.params["callback_query_id"] == query_id
    ]


async def press(rig: Rig, message_id: int, data: str) -> tuple[str, Call]:
    """Press a button; wait for its answer; return the query id and the answer call."""
    update = rig.emu.press_button(ADMIN_CHAT, message_id, data)
    query_id = update["callback_query"]["id"]
    calls = await rig.emu.wait_for(
        "answerCallbackQuery", predicate=lambda c: c.params["callback_query_id"] == query_id
    )
    return query_id, calls[0]


def no_errors(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
    assert all(r.exc_info is None for r in caplog.records)


@pytest.mark.parametrize(
    "data",
    [
        "garbage",
        "",
        "tasks",
        "tasks:x:y",
        "tasks:FAILED:1",
        "tasks::-5",
        "tasks:failed:1:extra",
        "get:1",
        "x" * 64,
        "tasks::\u0663",
        "\u202etasks::1",
        "tasks::1\n",
        "tasks:nonsense:1",
    ],
)
async def test_forged_or_unknown_data_is_told_no_longer_valid(
    rig: Rig, data: str, caplog: pytest.LogCaptureFixture
) -> None:
    message_id, _ = await first_page(rig)
    query_id, answer = await press(rig, message_id, data)
    assert answer.ok
    assert answer.params["text"] == STALE
    # Proof nothing else answered or edited: a later /help is handled after this press.
    await rig.reply_text(ADMIN_CHAT, "/help")
    assert len(answers_to(rig, query_id)) == 1
    assert rig.emu.calls_to("editMessageText") == []
    no_errors(caplog)


async def test_older_edits_the_page_in_place(rig: Rig) -> None:
    message_id, data = await first_page(rig)
    _, answer = await press(rig, message_id, data)
    assert answer.ok
    edits = await rig.emu.wait_for("editMessageText")
    assert edits[0].ok
    assert "#40" not in edits[0].params["text"]


async def test_older_under_a_deleted_message_sends_a_new_one(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    message_id, data = await first_page(rig)
    rig.emu.delete_message_by_user(ADMIN_CHAT, message_id)  # arrives as InaccessibleMessage
    query_id, answer = await press(rig, message_id, data)
    assert answer.ok
    sent = await rig.emu.wait_for("sendMessage", chat_id=ADMIN_CHAT, count=2)
    assert sent[-1].ok
    assert "#40" not in sent[-1].params["text"]
    assert "older than" in sent[-1].params["text"]
    assert rig.emu.calls_to("editMessageText") == []  # not even tried: Telegram would refuse
    assert len(answers_to(rig, query_id)) == 1
    no_errors(caplog)


@pytest.mark.parametrize(
    "refusal",
    [
        "Bad Request: message to edit not found",
        "Bad Request: message can't be edited",
        "Bad Request: MESSAGE_ID_INVALID",
    ],
)
async def test_older_when_the_edit_is_refused_sends_a_new_one(
    rig: Rig, refusal: str, caplog: pytest.LogCaptureFixture
) -> None:
    message_id, data = await first_page(rig)
    rig.emu.fail("editMessageText", ApiFailure.bad_request(refusal))
    query_id, answer = await press(rig, message_id, data)
    assert answer.ok
    sent = await rig.emu.wait_for("sendMessage", chat_id=ADMIN_CHAT, count=2)
    assert sent[-1].ok
    assert "older than" in sent[-1].params["text"]
    await rig.reply_text(ADMIN_CHAT, "/help")
    assert len(answers_to(rig, query_id)) == 1
    no_errors(caplog)


async def test_unexpected_edit_failure_is_logged_and_answered_once(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    message_id, data = await first_page(rig)
    rig.emu.fail("editMessageText", ApiFailure.bad_request("Bad Request: something new"))
    query_id, answer = await press(rig, message_id, data)
    assert answer.ok
    await rig.reply_text(ADMIN_CHAT, "/help")
    assert len(answers_to(rig, query_id)) == 1
    assert rig.emu.calls_to("answerCallbackQuery", ok=False) == []  # no second answer tried
    assert any(r.levelname == "ERROR" for r in caplog.records)


async def test_smsc_failure_with_a_list_is_one_answer_and_an_honest_page(rig: Rig) -> None:
    message_id, data = await first_page(rig)
    rig.clock.advance(61)  # past the list cache: the press asks SMSC again
    rig.sim.inject(Fault("error", code=2), count=10)
    edits = len(rig.emu.calls_to("editMessageText"))
    query_id, _ = await press(rig, message_id, data)
    calls = await rig.emu.wait_for("editMessageText", count=edits + 1)
    page = str(calls[-1].response["result"]["text"])
    assert "older than #31" in page  # the older page, from the list the bot has...
    assert "List as of" in page  # ...saying how old it is
    assert "SMSC rejected the login" in page  # and why it is not fresh
    await rig.reply_text(ADMIN_CHAT, "/help")
    assert len(answers_to(rig, query_id)) == 1


async def test_smsc_failure_without_a_list_is_one_alert_answer(rig: Rig) -> None:
    message_id, data = await first_page(rig)
    await rig.restart()  # a new process: no list to fall back on
    rig.clock.advance(61)
    rig.sim.inject(Fault("error", code=2), count=10)
    query_id, answer = await press(rig, message_id, data)
    assert answer.params.get("show_alert") is True
    assert len(answer.params["text"]) <= 200
    await rig.reply_text(ADMIN_CHAT, "/help")
    assert len(answers_to(rig, query_id)) == 1


async def test_the_same_query_answered_twice_is_refused_by_the_emulator(rig: Rig) -> None:
    message_id, data = await first_page(rig)
    query_id, answer = await press(rig, message_id, data)
    assert answer.ok
    with pytest.raises(Exception, match=r"(?i)query is too old"):
        await rig.app.bot.answer_callback_query(query_id)
