"""End-to-end in Russian: the real Application, the Bot API emulator and the SMSC simulator.

A private chat follows its user's Telegram `language_code` unless it chose with /language;
groups and alerts follow the chat's choice, else BOT_LANGUAGE. Alerts are rendered per chat at
delivery, one upload serving every chat whatever its language.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import storage
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import Fault, SimTask
from bot.texts.commands import COMMANDS
from tests.fakes.rig import ADMIN_CHAT, TEAM_GROUP, Rig, running_rig

pytestmark = pytest.mark.asyncio

RU = {"language_code": "ru"}
GROUP: dict[str, Any] = {"chat_type": "supergroup", "title": "Команда"}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with running_rig(tmp_path, options={"run_delivery": False}) as rig:
        yield rig


def add_every_kind(rig: Rig) -> None:
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
    rig.sim.add_task(SimTask(2, "Сбой", TaskStatus.FAILED, created="02.11.2026 10:00:00"))
    rig.sim.add_task(SimTask(3, "В очереди", TaskStatus.PENDING, created="03.11.2026 10:00:00"))
    rig.sim.add_task(
        SimTask(4, "Идёт", TaskStatus.RUNNING, created="04.11.2026 10:00:00", time="04.11.2026")
    )
    rig.sim.add_task(SimTask(5, "Отмена", TaskStatus.CANCELED, created="05.11.2026 10:00:00"))


async def test_menu_is_registered_in_both_languages(rig: Rig) -> None:
    await rig.emu.wait_for("setMyCommands", count=2)
    english = rig.emu.commands_for(None, "")
    russian = rig.emu.commands_for(None, "ru")
    assert [c["command"] for c in english] == [c["command"] for c in russian]
    assert [c["command"] for c in english] == [c.name for c in COMMANDS]
    assert english[0]["description"].startswith("Recent deferred tasks")
    assert russian[0]["description"].startswith("Последние отложенные задачи")
    assert "language" in [c["command"] for c in russian]


async def test_start_speaks_the_users_language(rig: Rig) -> None:
    russian = await rig.reply_text(ADMIN_CHAT, "/start", **RU)
    assert "Отложенные задачи SMSC" in russian
    assert "/language" in russian
    english = await rig.reply_text(ADMIN_CHAT, "/start", language_code="de")
    assert "SMSC deferred tasks" in english
    assert "SMSC deferred tasks" in await rig.reply_text(ADMIN_CHAT, "/help", language_code=None)


async def test_tasks_with_every_status_in_russian(rig: Rig) -> None:
    add_every_kind(rig)
    text = await rig.reply_text(ADMIN_CHAT, "/tasks", **RU)
    assert text.startswith("Отложенные задачи")
    for word in ("ожидает", "выполняется", "завершено", "отменено", "ошибка"):
        assert word in text, word
    assert "создана 01.11.2026 10:00:00" in text
    assert "запущена 01.11.2026 10:01:00" in text
    usage = await rig.reply_text(ADMIN_CHAT, "/tasks nonsense", **RU)
    assert usage.startswith("Использование: /tasks [фильтр]")


async def test_tasks_paging_footer_and_button_in_russian(rig: Rig) -> None:
    for i in range(1, 16):
        rig.sim.add_task(SimTask(i, f"Задача {i}", TaskStatus.COMPLETED, created="01.11.2026"))
    call = await rig.say(ADMIN_CHAT, "/tasks", **RU)
    assert call is not None
    assert "ещё 5 задач старше не показаны" in call.response["result"]["text"]
    button = call.params["reply_markup"]["inline_keyboard"][0][0]
    assert button["text"] == "Старше ▶"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/get", "Использование: /get"),
        ("/get 999", "Задача 999 не найдена."),
        ("/get 3", "ждёт в очереди"),
        ("/get 4", "ещё выполняется"),
        ("/get 5", "отменена, файла у неё нет"),
        ("/get 2", "завершилась ошибкой, файла у неё нет"),
    ],
)
async def test_get_explains_in_russian(rig: Rig, command: str, expected: str) -> None:
    add_every_kind(rig)
    assert expected in await rig.reply_text(ADMIN_CHAT, command, **RU)


async def test_get_a_file_and_a_zipped_file_in_russian(rig: Rig) -> None:
    add_every_kind(rig)
    rig.sim.add_task(SimTask(7, "большой", TaskStatus.COMPLETED, rows=20_000))
    call = await rig.say(ADMIN_CHAT, "/get 1", wait="sendDocument", **RU)
    assert call is not None
    assert call.status == 200
    assert call.response["result"]["caption"] == "✅ #1 Рассылка октябрь"
    rig.services.files.upload_limit = len(rig.sim.file_bytes(7)) // 2
    zipped = await rig.say(ADMIN_CHAT, "/get 7", wait="sendDocument", **RU)
    assert zipped is not None
    caption = zipped.response["result"]["caption"]
    assert "в архиве (" in caption
    assert "КБ в виде CSV)" in caption or "МБ в виде CSV)" in caption
    assert "," in caption.split("(")[1]  # a decimal comma


async def test_too_large_even_zipped_in_russian(rig: Rig) -> None:
    rig.sim.add_task(SimTask(8, "огромный", TaskStatus.COMPLETED, rows=5_000))
    rig.services.files.upload_limit = 100
    text = await rig.reply_text(ADMIN_CHAT, "/get 8", **RU)
    assert "слишком велик для Telegram" in text
    assert "КБ" in text


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault("http_500"), "SMSC ответил HTTP 500"),
        (Fault("error", code=2), "SMSC отклонил логин или пароль"),
        (Fault("html"), "SMSC прислал веб-страницу вместо ответа API"),
    ],
)
async def test_an_smsc_error_reply_in_russian(rig: Rig, fault: Fault, expected: str) -> None:
    rig.sim.inject(fault, count=10)
    text = await rig.reply_text(ADMIN_CHAT, "/tasks", **RU)
    assert text.startswith("⚠️ " + expected)
    status = await rig.reply_text(ADMIN_CHAT, "/status", **RU)
    assert "Последняя ошибка SMSC: " + expected in status


async def test_alerts_are_rendered_per_chat_and_uploaded_once(rig: Rig) -> None:
    assert "русский" in await rig.reply_text(TEAM_GROUP, "/language ru", **GROUP)
    await storage.subscribe(rig.services.db, ADMIN_CHAT, None, rig.clock.now())
    await storage.subscribe(rig.services.db, TEAM_GROUP, None, rig.clock.now())
    rig.sim.add_task(
        SimTask(10, "Рассылка ноябрь", TaskStatus.RUNNING, created="25.11.2026 11:00:00", rows=120)
    )
    rig.sim.add_task(SimTask(11, "Сбой <b>&", TaskStatus.RUNNING, created="25.11.2026 11:00:00"))
    await rig.poll()  # baseline
    rig.sim.set_status(10, TaskStatus.COMPLETED)
    rig.sim.set_status(11, TaskStatus.FAILED)
    await rig.poll()
    assert await rig.deliver() == 4

    docs = [c for c in rig.emu.calls_to("sendDocument") if c.status == 200]
    assert len(docs) == 2
    assert len([c for c in docs if c.files]) == 1  # one upload; the other chat got the file_id
    captions = {c.chat_id: c.response["result"]["caption"] for c in docs}
    assert captions[TEAM_GROUP].startswith("✅ Выгрузка завершена: #10 Рассылка ноябрь")
    assert "120 строк" in captions[TEAM_GROUP]
    assert captions[ADMIN_CHAT].startswith("✅ Export completed: #10 Рассылка ноябрь")
    assert "120 rows" in captions[ADMIN_CHAT]

    texts = {
        c.chat_id: c.response["result"]["text"]
        for c in rig.emu.calls_to("sendMessage")
        if c.status == 200 and "#11" in c.response["result"]["text"]
    }
    assert texts[TEAM_GROUP].startswith("❌ Выгрузка не удалась: #11 Сбой <b>&")
    assert "ошибка замечена" in texts[TEAM_GROUP]
    assert "МСК" in texts[TEAM_GROUP]
    assert texts[ADMIN_CHAT].startswith("❌ Export failed: #11 Сбой <b>&")


async def test_bot_language_is_the_default_for_groups_and_alerts(tmp_path: Path) -> None:
    async with running_rig(tmp_path, options={"run_delivery": False}, bot_language="ru") as rig:
        assert "Отложенные задачи SMSC" in await rig.reply_text(TEAM_GROUP, "/help", **GROUP)
        # A private chat still follows its user: English app, English replies.
        assert "SMSC deferred tasks" in await rig.reply_text(ADMIN_CHAT, "/help")
        await storage.subscribe(rig.services.db, ADMIN_CHAT, None, rig.clock.now())
        await rig.finish_task(SimTask(12, "x", TaskStatus.RUNNING), TaskStatus.FAILED)
        await rig.deliver()
        alert = rig.emu.calls_to("sendMessage", chat_id=ADMIN_CHAT)[-1]
        assert alert.response["result"]["text"].startswith("❌ Выгрузка не удалась")


async def test_language_command_switches_and_survives_a_restart(rig: Rig) -> None:
    assert "Язык этого чата: русский" in await rig.reply_text(ADMIN_CHAT, "/language ru")
    assert "Отложенные задачи SMSC" in await rig.reply_text(ADMIN_CHAT, "/help")  # en app
    status = await rig.reply_text(ADMIN_CHAT, "/status")
    assert "Язык: русский" in status
    await rig.restart()
    assert "Отложенные задачи SMSC" in await rig.reply_text(ADMIN_CHAT, "/help")
    switched = await rig.reply_text(ADMIN_CHAT, "/language en", **RU)
    assert "Language of this chat: English" in switched
    assert "SMSC deferred tasks" in await rig.reply_text(ADMIN_CHAT, "/help", **RU)
    assert "Language: English" in await rig.reply_text(ADMIN_CHAT, "/status", **RU)
    auto = await rig.reply_text(ADMIN_CHAT, "/language auto", **RU)
    assert "Язык: автоматически (русский)" in auto
    assert "русский, выбран автоматически" in await rig.reply_text(ADMIN_CHAT, "/language", **RU)


@pytest.mark.parametrize("args", ["fr", "ru en", "русский", "<b>", "x" * 500])
async def test_language_refuses_bad_words_with_its_usage(rig: Rig, args: str) -> None:
    text = await rig.reply_text(ADMIN_CHAT, f"/language {args}", **RU)
    assert "Использование: /language ru или /language en" in text
    assert await storage.get_chat_language(rig.services.db, ADMIN_CHAT) is None


async def test_smsc_problem_and_recovery_alerts_in_each_chats_language(rig: Rig) -> None:
    await storage.set_chat_language(rig.services.db, TEAM_GROUP, "ru", rig.clock.now())
    await storage.subscribe(rig.services.db, ADMIN_CHAT, None, rig.clock.now())
    await storage.subscribe(rig.services.db, TEAM_GROUP, None, rig.clock.now())
    await rig.poll()
    rig.sim.inject(Fault("error", code=2), count=1000)
    for _ in range(2):
        rig.clock.advance(700)  # past the client's 10-minute pause after a rejected login
        await rig.poll()
    await rig.deliver()
    rig.sim.clear_faults()
    rig.clock.advance(700)
    await rig.poll()
    await rig.deliver()
    texts: dict[int, list[str]] = {}
    for call in rig.emu.calls_to("sendMessage"):
        if call.status == 200:
            texts.setdefault(call.chat_id, []).append(call.response["result"]["text"])
    problem, recovered = texts[TEAM_GROUP]
    assert problem.startswith("⚠️ Проблема с SMSC: SMSC отклонил логин или пароль")
    assert "Оповещения приостановлены" in problem
    assert recovered.startswith("✅ SMSC снова отвечает (проблема была такая: SMSC отклонил")
    english_problem, english_recovered = texts[ADMIN_CHAT]
    assert english_problem.startswith("⚠️ SMSC problem: SMSC rejected the login or password")
    assert english_recovered.startswith("✅ SMSC answers again")
