"""End-to-end: the CSV an alert needs is kept until delivered, and content Telegram refuses
goes out once as a minimal alert.
"""

from __future__ import annotations

import logging

import pytest

import storage
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask
from bot.tg_emulator import ApiFailure
from tests.e2e.delivery.support import CHATS, downloads, per_chat, sent, set_read_only
from tests.fakes.rig import ADMIN_CHAT, TEAM_GROUP, Rig

# --- the CSV is kept until its alert is delivered ------------------------------------------------


async def test_csv_downloaded_once_across_a_telegram_outage(rig: Rig) -> None:
    await rig.finish_task(
        SimTask(120, "outage file", TaskStatus.RUNNING, rows=40), TaskStatus.COMPLETED
    )
    rig.emu.fail("sendDocument", ApiFailure.server_error(502), count=5)
    for _ in range(8):
        await rig.deliver()
        rig.clock.advance(600)
    assert downloads(rig) == 1
    docs = sent(rig, "sendDocument")
    assert per_chat(docs) == dict.fromkeys(CHATS, 1)
    assert sum(1 for c in rig.emu.calls_to("sendDocument") if c.files) == 6  # 5 refused, 1 taken
    assert rig.emu.documents[
        next(c for c in docs if c.files).response["result"]["document"]["file_id"]
    ] == rig.sim.file_bytes(120)
    assert rig.services.files.kept == []  # settled: the kept file is gone
    assert list(rig.services.settings.files_dir.iterdir()) == []


async def test_a_restart_keeps_the_file_a_pending_alert_needs(rig: Rig) -> None:
    await rig.finish_task(SimTask(121, "restart", TaskStatus.RUNNING, rows=5), TaskStatus.COMPLETED)
    rig.emu.fail("sendDocument", ApiFailure.server_error(502), count=2)
    await rig.deliver()
    assert rig.services.files.kept == [121]
    files_dir = rig.services.settings.files_dir
    (files_dir / "leftover.part").write_bytes(b"junk")
    (files_dir / "999").mkdir()
    (files_dir / "121" / ".smsc-x.part").write_bytes(b"partial")
    await rig.restart()
    assert sorted(p.name for p in files_dir.iterdir()) == ["121"]
    assert [p.name for p in (files_dir / "121").iterdir()] == ["task.csv"]
    rig.clock.advance(3600)
    await rig.deliver()
    assert downloads(rig) == 1  # the restart did not cost another download
    assert per_chat(sent(rig, "sendDocument")) == dict.fromkeys(CHATS, 1)
    assert list(files_dir.iterdir()) == []


async def test_a_file_id_the_database_refused_is_kept_and_written_later(rig: Rig) -> None:
    await rig.finish_task(SimTask(122, "file id", TaskStatus.RUNNING, rows=5), TaskStatus.COMPLETED)
    rig.emu.fail("sendDocument", ApiFailure.server_error(502), count=1, chat_id=TEAM_GROUP)
    await set_read_only(rig, on=True)
    await rig.deliver()
    await set_read_only(rig, on=False)
    rig.clock.advance(3600)
    await rig.deliver()
    uploads = [c for c in rig.emu.calls_to("sendDocument") if c.files]
    assert len([c for c in uploads if c.status == 200]) == 1
    assert per_chat(sent(rig, "sendDocument")) == dict.fromkeys(CHATS, 1)
    assert await storage.get_cached_file(rig.services.db, 122) is not None
    assert downloads(rig) == 1


# --- content Telegram refuses: a minimal alert, once ---------------------------------------------


@pytest.mark.parametrize(
    "refusal", ["message is too long", "can't parse entities: unexpected end tag at byte 3"]
)
async def test_refused_alert_falls_back_to_a_minimal_text_once(rig: Rig, refusal: str) -> None:
    await rig.finish_task(SimTask(130, "x" * 50, TaskStatus.RUNNING), TaskStatus.FAILED)
    rig.emu.fail("sendMessage", ApiFailure.bad_request(refusal), count=1, chat_id=ADMIN_CHAT)
    await rig.deliver()
    assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
    minimal = next(c for c in sent(rig) if int(c.params["chat_id"]) == ADMIN_CHAT)
    text = minimal.response["result"]["text"]
    assert text.startswith("Task #130 (xxxx")
    assert "failed" in text
    assert "could not be sent" in text
    assert len(text) < 200
    assert "parse_mode" not in minimal.params
    assert await storage.count_pending(rig.services.db) == 0
    rig.clock.advance(3600)
    await rig.deliver()
    assert len(sent(rig)) == 2


async def test_refused_minimal_alert_is_dropped_with_the_reason(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    await rig.finish_task(SimTask(131, "refused", TaskStatus.RUNNING), TaskStatus.FAILED)
    rig.emu.fail(
        "sendMessage", ApiFailure.bad_request("message is too long"), count=2, chat_id=ADMIN_CHAT
    )
    caplog.set_level(logging.WARNING)
    await rig.deliver()
    assert per_chat(sent(rig)) == {TEAM_GROUP: 1}
    assert len(rig.emu.calls_to("sendMessage", chat_id=ADMIN_CHAT)) == 2  # full, then minimal
    assert await storage.count_pending(rig.services.db) == 0
    assert any("refused even the minimal alert" in r.getMessage() for r in caplog.records)
    rig.clock.advance(3600)
    await rig.deliver()
    assert len(rig.emu.calls_to("sendMessage", chat_id=ADMIN_CHAT)) == 2  # never again


async def test_refused_caption_sends_minimal_text_without_uploading_again(rig: Rig) -> None:
    await rig.finish_task(SimTask(132, "caption", TaskStatus.RUNNING, rows=5), TaskStatus.COMPLETED)
    rig.emu.fail("sendDocument", ApiFailure.bad_request("message caption is too long"), count=50)
    await rig.deliver()
    rig.clock.advance(3600)
    await rig.deliver()
    texts = [c.response["result"]["text"] for c in sent(rig)]
    assert len(texts) == 2
    assert all("Task #132 (caption) completed" in t and "/get 132" in t for t in texts)
    assert len(rig.emu.calls_to("sendDocument")) == 1  # one refused upload, no retries of it
    assert downloads(rig) == 1
    assert rig.services.files.kept == []


async def test_an_alert_that_cannot_be_rendered_goes_out_minimal(rig: Rig) -> None:
    await rig.poll()
    await storage.record_poll(
        rig.services.db,
        tasks=[],
        alerts=[storage.NewAlert("failed", 133, {"task": {"id": "not a task"}})],
        now=rig.clock.now(),
    )
    await rig.deliver()
    texts = [c.response["result"]["text"] for c in sent(rig)]
    assert texts == ["Task #133 failed. The full alert could not be sent."] * 2
