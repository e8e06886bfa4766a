"""End-to-end: alert delivery when the disk, the database file or Telegram misbehave (issue 8).

The bot runs for real (PTB over HTTP to the Bot API emulator, the SMSC simulator, a real SQLite
file); the faults are real too: a read-only connection (`PRAGMA query_only`), a full tmpfs, a
deleted database file, Telegram answering 5xx or refusing an alert's content.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

import storage
from bot.alerts.delivery import Deliverer
from bot.clock import FakeClock
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask, SimulatorState, create_app
from bot.tg_emulator import ApiFailure, Call, TelegramEmulator
from storage import health as db_health
from tests.fakes.rig import (
    ADMIN_CHAT,
    LOGIN,
    PASSWORD,
    TEAM_GROUP,
    TOKEN,
    Rig,
    bot_env,
    bot_process,
    running_rig,
    serve,
)
from tests.fakes.storage_support import outbox_stats

CHATS = (ADMIN_CHAT, TEAM_GROUP)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A bot whose delivery passes the test runs by hand, with two subscribed chats."""
    async with running_rig(tmp_path, options={"run_delivery": False}) as rig:
        await subscribe(rig, *CHATS)
        yield rig


async def subscribe(rig: Rig, *chat_ids: int) -> None:
    for chat_id in chat_ids:
        await storage.subscribe(rig.services.db, chat_id, None, rig.clock.now())


def sent(rig: Rig, method: str = "sendMessage") -> list[Call]:
    """Sends Telegram accepted (tests here send no commands, so all are alerts)."""
    return [c for c in rig.emu.calls_to(method) if c.status == 200]


def per_chat(calls: list[Call]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for call in calls:
        chat = int(call.params["chat_id"])
        counts[chat] = counts.get(chat, 0) + 1
    return counts


def downloads(rig: Rig) -> int:
    return sum(1 for r in rig.sim.requests if r.params.get("get_file"))


async def set_read_only(rig: Rig, *, on: bool) -> None:
    """Make the bot's own connection refuse writes (SQLITE_READONLY), as a bad disk does."""
    await rig.services.db.execute(f"PRAGMA query_only={'ON' if on else 'OFF'}")


async def healthz(rig: Rig) -> tuple[int, str]:
    web = rig.services.web
    assert web is not None
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{web.port}/healthz") as resp,
    ):
        return resp.status, await resp.text()


async def metrics_text(rig: Rig) -> str:
    web = rig.services.web
    assert web is not None
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{web.port}/metrics") as resp,
    ):
        return await resp.text()


# --- a failed write never causes a resend --------------------------------------------------------


async def test_a_send_whose_record_fails_is_never_sent_again(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's case: Telegram accepts, marking it delivered fails, the row is due again."""
    await rig.finish_task(SimTask(100, "disk trouble", TaskStatus.RUNNING), TaskStatus.FAILED)
    rig.emu.fail("sendMessage", ApiFailure.server_error(502), count=2)  # an outage first
    await rig.deliver()
    assert sent(rig) == []
    await set_read_only(rig, on=True)  # then the disk goes bad just as Telegram comes back
    caplog.set_level(logging.WARNING)
    for _ in range(16):  # the issue saw 16 copies, one every 5 s
        rig.clock.advance(600)
        await rig.deliver()
    assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
    assert rig.services.deliverer.unrecorded == 2  # the sent facts live in memory
    status, text = await healthz(rig)
    assert status == 503
    assert "database writes failing" in text
    assert "read-only" in text
    metrics = await metrics_text(rig)
    assert "bot_database_writable 0.0" in metrics
    for event in ("db_unwritable", "deliveries_held"):  # once per episode, not per retry
        assert len([r for r in caplog.records if getattr(r, "event", "") == event]) == 1

    await set_read_only(rig, on=False)
    await rig.deliver()
    assert rig.services.deliverer.unrecorded == 0
    assert await storage.count_pending(rig.services.db) == 0
    assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
    assert (await healthz(rig))[0] == 200
    assert "bot_database_writable 1.0" in await metrics_text(rig)
    assert any(getattr(r, "event", "") == "db_writable" for r in caplog.records)
    assert any(getattr(r, "event", "") == "deliveries_resumed" for r in caplog.records)


async def test_nothing_new_is_sent_while_the_database_takes_no_writes(rig: Rig) -> None:
    await rig.finish_task(SimTask(101, "held", TaskStatus.RUNNING), TaskStatus.FAILED)
    rig.emu.fail("sendMessage", ApiFailure.server_error(502), count=2)
    await set_read_only(rig, on=True)
    await rig.deliver()  # both sends fail and so does recording the retry: writes are off
    assert not db_health.write_health(rig.services.db).writable
    attempts = len(rig.emu.calls_to("sendMessage"))
    for _ in range(5):
        rig.clock.advance(600)
        assert await rig.deliver() == 0  # held: nothing tried while writes fail
    assert len(rig.emu.calls_to("sendMessage")) == attempts
    await set_read_only(rig, on=False)
    await rig.deliver()  # the probe write works again: deliveries resume
    assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)


async def test_the_loop_retries_writes_with_a_pause_and_never_resends(tmp_path: Path) -> None:
    async with running_rig(tmp_path) as rig:  # the real delivery loop
        await subscribe(rig, *CHATS)
        rig.sim.add_task(SimTask(102, "loop", TaskStatus.RUNNING))
        await rig.poll()  # baseline
        rig.clock.autoadvance = False  # from here the test moves time: the loop's pauses count
        rig.emu.fail("sendMessage", ApiFailure.server_error(502), count=2)  # a short outage
        rig.sim.set_status(102, TaskStatus.FAILED)
        poll = asyncio.ensure_future(rig.poll())
        await step_until(rig, lambda: poll.done() and len(rig.emu.calls_to("sendMessage")) >= 2)
        for _ in range(1000):  # both retries recorded (time stands still: none is due yet)
            if (await outbox_stats(rig.services.db))["retrying"] == len(CHATS):
                break
            await asyncio.sleep(0.005)
        await set_read_only(rig, on=True)  # the disk goes bad before the retry is due
        deliverer = rig.services.deliverer
        await step_until(rig, lambda: deliverer.unrecorded >= 1)
        await step_until(rig, lambda: deliverer.write_failures >= 4, step=5.0)
        assert all(n == 1 for n in per_chat(sent(rig)).values())
        await set_read_only(rig, on=False)
        await step_until(rig, lambda: len(sent(rig)) >= 2 and deliverer.unrecorded == 0, step=5.0)
        await step_until(rig, _never, step=60.0, steps=20)  # and nothing more, later
        assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
        assert await storage.count_pending(rig.services.db) == 0


async def step_until(
    rig: Rig, condition: Callable[[], bool], *, step: float = 1.0, steps: int = 3000
) -> None:
    """Move the fake clock in steps, letting the bot run between them, until `condition`."""
    for _ in range(steps):
        if condition():
            return
        rig.clock.advance(step)
        await asyncio.sleep(0.002)
    if condition is not _never:
        raise AssertionError("condition never held")


def _never() -> bool:
    return False


# --- a full disk (tmpfs) during a Telegram outage ------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """Mount a small tmpfs at `path`; skip the test where mounting is not permitted."""
    path.mkdir()
    try:
        subprocess.run(  # noqa: S603 - fixed arguments
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],  # noqa: S607
            check=True,
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {err}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=10)  # noqa: S603, S607


def fill(folder: Path) -> Path:
    """Write a file until the filesystem is full; return it (delete it to free the space)."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 512, 1):  # big blocks, then the last few bytes: no page fits
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


async def test_full_disk_during_a_telegram_outage_then_each_chat_gets_it_once(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        url = f"sqlite:///{disk / 'bot.sqlite3'}"
        async with running_rig(tmp_path, options={"run_delivery": False}, database_url=url) as rig:
            await subscribe(rig, *CHATS)
            await rig.finish_task(SimTask(110, "tmpfs", TaskStatus.RUNNING), TaskStatus.FAILED)
            rig.emu.fail("sendMessage", ApiFailure.server_error(502), count=4)  # the outage
            await rig.deliver()
            rig.clock.advance(600)
            await rig.deliver()
            assert sent(rig) == []
            filler = fill(disk)  # the disk fills up just as Telegram comes back
            rig.clock.advance(600)
            await rig.deliver()  # sent, but marking them delivered hits the full disk
            assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
            assert db_health.write_health(rig.services.db).failures > 0
            assert rig.services.deliverer.unrecorded == len(CHATS)
            for _ in range(20):  # the bot resent on every pass from here
                rig.clock.advance(600)
                await rig.deliver()
            assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
            status, text = await healthz(rig)
            assert status == 503
            assert "database writes failing: disk full" in text
            filler.unlink()  # the operator frees space
            for _ in range(3):
                rig.clock.advance(600)
                await rig.deliver()
            assert per_chat(sent(rig)) == dict.fromkeys(CHATS, 1)
            assert await storage.count_pending(rig.services.db) == 0
            assert (await healthz(rig))[0] == 200


# --- the database file deleted under the running bot ---------------------------------------------


def delete_database_files(path: Path) -> None:
    """What an operator's stray `rm` does: the file and its WAL go, the bot keeps its handle."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def test_database_file_deleted_makes_healthz_fail_with_the_reason(rig: Rig) -> None:
    assert await healthz(rig) == (200, "ok\n")
    path = rig.settings.database_path
    delete_database_files(path)
    status, text = await healthz(rig)
    assert status == 503
    assert "was deleted" in text
    assert str(path) in text


async def test_database_file_replaced_makes_healthz_fail(rig: Rig) -> None:
    path = rig.settings.database_path
    os.replace(path, path.with_name("moved.sqlite3"))
    path.write_bytes(b"")
    status, text = await healthz(rig)
    assert status == 503
    assert "replaced" in text


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


# --- the delivery loop's wait --------------------------------------------------------------------


async def test_wait_leaves_no_pending_task_behind(tmp_path: Path) -> None:
    db = await storage.open_database(tmp_path / "wait.sqlite3")
    try:
        deliverer = Deliverer(None, db, None, FakeClock())  # type: ignore[arg-type]
        before = len(asyncio.all_tasks())
        for delay in (timedelta(0), timedelta(seconds=-3), timedelta(0)):
            await asyncio.wait_for(deliverer._wait(delay), 1)
        await asyncio.sleep(0)
        assert len(asyncio.all_tasks()) == before  # each early return used to leak a waiter
        deliverer.wake()
        await asyncio.wait_for(deliverer._wait(timedelta(seconds=30)), 1)  # woken: returns
        await asyncio.sleep(0)
        assert len(asyncio.all_tasks()) == before
    finally:
        await storage.close_database(db)


# --- the real `python -m bot` process ----------------------------------------------------------


async def wait_health(port: int, status: int, *, timeout: float = 60.0) -> str:  # noqa: ASYNC109
    """Poll the process's /healthz (real time: it runs the real clock) until it answers `status`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = "no answer"
    async with aiohttp.ClientSession() as http:
        while loop.time() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    last = f"{resp.status} {await resp.text()}"
                    if resp.status == status:
                        return await resp.text()
            await asyncio.sleep(0.2)
    raise AssertionError(f"/healthz never answered {status}; last: {last}")


@contextlib.asynccontextmanager
async def real_bot(tmp_path: Path, db_path: Path) -> AsyncIterator[tuple[TelegramEmulator, int]]:
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        env = bot_env(emu.url, sim_url, db_path, ALLOWED_CHAT_IDS=str(ADMIN_CHAT))
        async with bot_process(env, tmp_path, capture_stderr=False):
            port = int(env["PORT"])
            await wait_health(port, 200)
            yield emu, port


async def test_real_process_reports_its_database_file_deleted(tmp_path: Path) -> None:
    db_path = tmp_path / "bot.sqlite3"
    async with real_bot(tmp_path, db_path) as (_, port):
        delete_database_files(db_path)
        text = await wait_health(port, 503)
        assert "was deleted" in text


async def test_real_process_reports_a_full_disk_and_its_end(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "4m") as disk:
        async with real_bot(tmp_path, disk / "bot.sqlite3") as (emu, port):
            await emu.wait_until(lambda: emu.active_polls > 0, timeout=60)
            filler = fill(disk)
            emu.send_message(ADMIN_CHAT, "/subscribe")  # a write, refused by the full disk
            text = await wait_health(port, 503)
            assert "database writes failing" in text
            assert "disk full" in text
            filler.unlink()
            await wait_health(port, 200)  # the delivery loop's probe sees writes work again
