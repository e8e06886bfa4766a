"""End-to-end: Telegram commands on the real Application, the Bot API emulator and the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.smsc.models import TaskStatus
from bot.smsc.simulator import Fault, SimTask
from bot.texts.commands import COMMANDS
from bot.tg_emulator import ApiFailure
from tests.fakes.rig import ADMIN_CHAT, STRANGER, TEAM_GROUP, Rig, running_rig

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with running_rig(tmp_path) as rig:
        yield rig


def add_tasks(rig: Rig) -> None:
    rig.sim.add_task(
        SimTask(
            1,
            "Рассылка октябрь",
            TaskStatus.COMPLETED,
            created="01.11.2026 10:00:00",
            time="01.11.2026 10:01:00",
            rows=50,
        )
    )
    rig.sim.add_task(
        SimTask(2, "Export <weekly> & co", TaskStatus.FAILED, created="02.11.2026 10:00:00")
    )
    rig.sim.add_task(SimTask(3, "Pending one", TaskStatus.PENDING, created="03.11.2026 10:00:00"))
    rig.sim.add_task(
        SimTask(
            4,
            "Running one",
            TaskStatus.RUNNING,
            created="04.11.2026 10:00:00",
            time="04.11.2026 10:00:30",
        )
    )


async def test_commands_are_registered_in_the_menu(rig: Rig) -> None:
    calls = await rig.emu.wait_for("setMyCommands")
    names = [c["command"] for c in calls[0].params["commands"]]
    assert names == [c.name for c in COMMANDS]


@pytest.mark.parametrize("command", ["/start", "/help"])
async def test_help_lists_every_command(rig: Rig, command: str) -> None:
    text = await rig.reply_text(ADMIN_CHAT, command)
    for entry in COMMANDS:
        assert f"/{entry.name}" in text


async def test_group_command_addressed_to_the_bot(rig: Rig) -> None:
    add_tasks(rig)
    text = await rig.reply_text(
        TEAM_GROUP, "/tasks@smsc_tasks_bot", chat_type="supergroup", title="Team"
    )
    assert "#4" in text


async def test_stranger_gets_its_chat_id_and_no_task_data(rig: Rig) -> None:
    add_tasks(rig)
    text = await rig.reply_text(STRANGER, "/tasks")
    assert str(STRANGER) in text
    assert "not allowed" in text
    assert "Рассылка" not in text
    rig.emu.send_message(STRANGER, "/get 1")  # told once already: no second reply
    await rig.reply_text(ADMIN_CHAT, "/help")
    assert rig.sim.requests == []  # SMSC never asked on a stranger's behalf
    assert rig.emu.calls_to("sendDocument") == []


async def test_stranger_plain_messages_are_ignored(rig: Rig) -> None:
    rig.emu.send_message(STRANGER, "hello there")
    text = await rig.reply_text(STRANGER, "/start")  # the next reply is to the command
    assert "not allowed" in text
    assert len(rig.emu.calls_to("sendMessage", chat_id=STRANGER)) == 1


async def test_stranger_callback_is_refused(rig: Rig) -> None:
    add_tasks(rig)
    rig.emu.press_button(STRANGER, 1, "tasks::3")
    calls = await rig.emu.wait_for("answerCallbackQuery")
    assert calls[0].params.get("show_alert") is True
    assert str(STRANGER) in calls[0].params["text"]
    assert rig.sim.requests == []


async def test_tasks_newest_first_with_status_words(rig: Rig) -> None:
    add_tasks(rig)
    text = await rig.reply_text(ADMIN_CHAT, "/tasks")
    positions = [text.index(f"#{i}") for i in (4, 3, 2, 1)]
    assert positions == sorted(positions)
    for word in ("in progress", "pending", "failed", "completed"):
        assert word in text
    assert "Export <weekly> & co" in text  # escaped on the wire, shown as is
    assert "01.11.2026 10:00:00" in text


async def test_tasks_filter_and_bad_filter(rig: Rig) -> None:
    add_tasks(rig)
    text = await rig.reply_text(ADMIN_CHAT, "/tasks failed")
    assert "#2" in text
    assert "#1" not in text
    assert "Usage: /tasks" in await rig.reply_text(ADMIN_CHAT, "/tasks sideways")


async def test_tasks_empty_list(rig: Rig) -> None:
    assert "No tasks" in await rig.reply_text(ADMIN_CHAT, "/tasks")


async def test_tasks_paging_with_long_hostile_names_fits_the_limit(rig: Rig) -> None:
    for i in range(1, 41):
        rig.sim.add_task(
            SimTask(i, f"<b>&{'Ж' * 300}_*[]", TaskStatus.COMPLETED, created="01.11.2026 10:00:00")
        )
    call = await rig.say(ADMIN_CHAT, "/tasks")
    assert call is not None
    assert "#40" in call.params["text"]
    markup = call.params["reply_markup"]
    data = markup["inline_keyboard"][0][0]["callback_data"]
    message_id = call.response["result"]["message_id"]
    rig.emu.press_button(ADMIN_CHAT, message_id, data)
    edits = await rig.emu.wait_for("editMessageText")
    assert edits[0].status == 200
    older = edits[0].params["text"]
    assert "#40" not in older
    assert "older than" in older


async def test_get_sends_the_csv_then_reuses_the_upload(rig: Rig) -> None:
    add_tasks(rig)
    call = await rig.say(ADMIN_CHAT, "/get 1", wait="sendDocument")
    assert call is not None
    assert call.status == 200
    upload = next(iter(call.files.values()))
    assert upload.content == rig.sim.file_bytes(1)
    assert upload.filename == "Рассылка октябрь.csv"
    assert call.response["result"]["caption"] == "✅ #1 Рассылка октябрь"
    assert rig.emu.calls_to("sendChatAction", chat_id=ADMIN_CHAT)
    downloads = [r for r in rig.sim.requests if r.params.get("get_file")]
    again = await rig.say(ADMIN_CHAT, "/get 1", wait="sendDocument")
    assert again is not None
    assert not again.files
    assert again.params["document"] == call.response["result"]["document"]["file_id"]
    assert len([r for r in rig.sim.requests if r.params.get("get_file")]) == len(downloads)


async def test_get_by_name(rig: Rig) -> None:
    add_tasks(rig)
    call = await rig.say(ADMIN_CHAT, "/get Рассылка октябрь", wait="sendDocument")
    assert call is not None
    assert call.status == 200


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/get", "Usage: /get"),
        ("/get   ", "Usage: /get"),
        ("/get " + "x" * 300, "Usage: /get"),
        ("/get 999", "not found"),
        ("/get nothing-like-it", "not found"),
        ("/get 3", "waiting in the queue"),
        ("/get 4", "still running"),
        ("/get 2", "failed, so it has no file"),
    ],
)
async def test_get_explains_what_it_cannot_send(rig: Rig, command: str, expected: str) -> None:
    add_tasks(rig)
    assert expected in await rig.reply_text(ADMIN_CHAT, command)


async def test_get_zips_a_file_over_the_upload_limit(rig: Rig) -> None:
    rig.sim.add_task(SimTask(7, "big", TaskStatus.COMPLETED, rows=20_000))
    rig.services.files.upload_limit = len(rig.sim.file_bytes(7)) // 2
    call = await rig.say(ADMIN_CHAT, "/get 7", wait="sendDocument")
    assert call is not None
    assert call.status == 200
    upload = next(iter(call.files.values()))
    assert upload.filename == "big.zip"
    assert "zipped" in call.response["result"]["caption"]
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(upload.content)) as zf:
        assert zf.read("big.csv") == rig.sim.file_bytes(7)


async def test_get_says_plainly_when_even_zipped_too_large(rig: Rig) -> None:
    rig.sim.add_task(SimTask(8, "huge", TaskStatus.COMPLETED, rows=5_000))
    rig.services.files.upload_limit = 100
    text = await rig.reply_text(ADMIN_CHAT, "/get 8")
    assert "too large for Telegram" in text
    assert list(rig.services.settings.files_dir.iterdir()) == []  # temp files removed


async def test_slow_upload_does_not_hold_up_another_chat(rig: Rig) -> None:
    add_tasks(rig)
    rig.emu.fail("sendDocument", ApiFailure.timeout(), count=1)
    rig.emu.send_message(ADMIN_CHAT, "/get 1")
    await rig.emu.wait_for("sendDocument")  # the upload hangs now
    text = await rig.reply_text(TEAM_GROUP, "/tasks", chat_type="supergroup", title="Team")
    assert "#1" in text
    assert rig.emu.calls_to("sendDocument")[0].status == 0  # still uploading meanwhile
    rig.emu.release_held()


async def test_subscribe_unsubscribe_and_status(rig: Rig) -> None:
    assert "Subscribed" in await rig.reply_text(ADMIN_CHAT, "/subscribe")
    assert "already subscribed" in await rig.reply_text(ADMIN_CHAT, "/subscribe")
    status = await rig.reply_text(ADMIN_CHAT, "/status")
    assert "Subscribed chats: 1" in status
    assert "Version:" in status
    assert "Unsubscribed" in await rig.reply_text(ADMIN_CHAT, "/unsubscribe")
    assert "was not subscribed" in await rig.reply_text(ADMIN_CHAT, "/unsubscribe")
    assert "Subscribed chats: 0" in await rig.reply_text(ADMIN_CHAT, "/status")


async def test_subscribe_per_forum_topic(rig: Rig) -> None:
    text = await rig.reply_text(
        TEAM_GROUP, "/subscribe", chat_type="supergroup", title="Team", message_thread_id=77
    )
    assert "this topic" in text
    call = rig.emu.calls_to("sendMessage", chat_id=TEAM_GROUP)[-1]
    assert call.params.get("message_thread_id") == 77


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault("error", code=2), "login or password"),
        (Fault("error", code=4), "blocked"),
        (Fault("error", code=9), "SMSC answered error 9"),
        (Fault("error", code=1, fmt=0), "parameters"),
        (Fault("http_500"), "HTTP 500"),
        (Fault("garbage"), "could not understand"),
        (Fault("html"), "web page instead of an API answer"),
    ],
)
async def test_smsc_failures_become_clear_replies(rig: Rig, fault: Fault, expected: str) -> None:
    rig.sim.inject(fault, count=10)
    text = await rig.reply_text(ADMIN_CHAT, "/tasks")
    assert expected in text
    assert "Traceback" not in text


async def test_status_reports_the_last_smsc_error(rig: Rig) -> None:
    rig.sim.inject(Fault("error", code=2), count=10)
    await rig.reply_text(ADMIN_CHAT, "/tasks")
    status = await rig.reply_text(ADMIN_CHAT, "/status")
    assert "login or password" in status


async def test_unexpected_error_is_logged_and_user_told(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    add_tasks(rig)
    rig.emu.fail(
        "sendMessage", ApiFailure.chat_not_found(), count=1
    )  # the /tasks reply itself fails
    rig.emu.send_message(ADMIN_CHAT, "/tasks")
    calls = await rig.emu.wait_for("sendMessage", predicate=lambda c: c.status == 200)
    assert "Something went wrong" in calls[-1].params["text"]
    assert "parse_mode" not in calls[-1].params  # plain on purpose, whatever the Defaults
    assert any(r.levelname == "ERROR" for r in caplog.records)


async def test_concurrent_tasks_cost_one_smsc_request(rig: Rig) -> None:
    add_tasks(rig)
    for i in range(5):
        rig.emu.send_message(ADMIN_CHAT, "/tasks", user_id=10 + i)
    await rig.emu.wait_for("sendMessage", count=5, timeout=10)
    lists = [r for r in rig.sim.requests if r.params.get("get_list")]
    assert len(lists) <= 2  # one page, plus the empty page that ends paging
    await asyncio.sleep(0)


async def test_stranger_group_commands_for_other_bots_are_ignored(rig: Rig) -> None:
    group = -5550001
    rig.emu.send_message(group, "/tasks@some_other_bot", chat_type="supergroup", title="Other")
    text = await rig.reply_text(
        group, "/tasks@smsc_tasks_bot", chat_type="supergroup", title="Other"
    )
    assert "not allowed" in text
    assert len(rig.emu.calls_to("sendMessage", chat_id=group)) == 1  # only ours was answered


@pytest.mark.parametrize(
    "arg",
    [
        "²",
        "①",
        "₁₀₀₇",
        "٣",
        "#²",
        "1²",
        "-",
        "#",
        "--5",
        "#-5",
        "-5",
        "0",
        "99999999999999999999999",
    ],
)
async def test_get_with_odd_digits_or_ids_is_usage_or_not_found(rig: Rig, arg: str) -> None:
    add_tasks(rig)
    text = await rig.reply_text(ADMIN_CHAT, f"/get {arg}")
    assert "not found" in text or "Usage" in text
    assert "Something went wrong" not in text


async def test_get_accepts_the_ids_tasks_shows(rig: Rig) -> None:
    add_tasks(rig)
    listing = await rig.reply_text(ADMIN_CHAT, "/tasks")
    assert "#3" in listing
    for spelled in ("3", "#3"):
        assert "waiting in the queue" in await rig.reply_text(ADMIN_CHAT, f"/get {spelled}")


async def test_stranger_group_bare_unknown_command_is_ignored(rig: Rig) -> None:
    group = -5550003
    rig.emu.send_message(group, "/foo", chat_type="supergroup", title="Other")
    rig.emu.send_message(group, "/tasks@other_bot", chat_type="supergroup", title="Other")
    text = await rig.reply_text(group, "/tasks", chat_type="supergroup", title="Other")
    assert "not allowed" in text  # one of ours, bare: answered
    await rig.reply_text(ADMIN_CHAT, "/help")
    assert len(rig.emu.calls_to("sendMessage", chat_id=group)) == 1


async def test_stranger_private_chat_gets_the_reply_for_any_command(rig: Rig) -> None:
    text = await rig.reply_text(STRANGER + 1, "/foo")
    assert "not allowed" in text


@pytest.mark.parametrize("task_id", [-5, 0, 10**20])
async def test_odd_ids_are_consistent_between_tasks_and_get(rig: Rig, task_id: int) -> None:
    rig.sim.add_task(SimTask(task_id, "odd id", TaskStatus.PENDING, created="03.11.2026 10:00:00"))
    listing = await rig.reply_text(ADMIN_CHAT, "/tasks")
    answer = await rig.reply_text(ADMIN_CHAT, f"/get {task_id}")
    assert "Something went wrong" not in listing + answer
    # Whatever the policy for such ids, both commands follow the same one.
    assert (f"#{task_id}" in listing) == ("not found" not in answer), (listing, answer)
