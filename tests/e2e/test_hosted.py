"""End-to-end: hosted operation — health, readiness, metrics, webhook mode, lifecycle (issue 5)."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

import storage
from bot.clock import FakeClock
from bot.runtime.lifecycle import StopTimes
from bot.runtime.web import SECRET_HEADER
from bot.settings import Settings
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import Fault, SimTask, SimulatorState, create_app
from bot.tg_emulator import ApiFailure, TelegramEmulator
from tests.fakes.endpoints import get_endpoint
from tests.fakes.rig import (
    ADMIN_CHAT,
    LOGIN,
    PASSWORD,
    REPO,
    TOKEN,
    Rig,
    bot_env,
    bot_process,
    running_rig,
    serve,
)
from tests.fakes.webhook_support import webhook_bot


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with running_rig(tmp_path) as rig:
        yield rig


async def test_health_and_readiness(rig: Rig) -> None:
    assert await get_endpoint(rig, "/healthz") == (200, "ok\n")
    status, text = await get_endpoint(rig, "/readyz")
    assert status == 503
    assert "no SMSC poll yet" in text
    rig.sim.inject(Fault("error", code=4))
    await rig.poll()
    status, text = await get_endpoint(rig, "/readyz")
    assert status == 503
    assert "blocked" in text  # says why
    rig.clock.advance(31 * 60)  # past the client's pause after error 4
    await rig.poll()
    assert await get_endpoint(rig, "/readyz") == (200, "ready\n")


async def test_health_fails_when_the_database_does(rig: Rig) -> None:
    await rig.services.db.close()
    status, text = await get_endpoint(rig, "/healthz")
    assert status == 503
    assert "database" in text


async def test_metrics_before_and_after_an_smsc_fault(rig: Rig) -> None:
    rig.sim.add_task(SimTask(1, "secret-task-name", TaskStatus.COMPLETED))
    await rig.poll()
    await rig.reply_text(ADMIN_CHAT, "/tasks")
    status, text = await get_endpoint(rig, "/metrics")
    assert status == 200
    assert 'smsc_requests_total{code="",kind="list",outcome="ok"}' in text
    assert 'watcher_polls_total{outcome="ok"} 1.0' in text
    assert 'smsc_tasks{status="completed"} 1.0' in text
    assert 'bot_commands_total{command="tasks"} 1.0' in text
    assert "smsc_request_seconds_bucket" in text
    assert "alerts_queued 0.0" in text
    rig.sim.inject(Fault("error", code=4))
    await rig.poll()
    _, text = await get_endpoint(rig, "/metrics")
    assert 'smsc_requests_total{code="4",kind="list",outcome="api_error"} 1.0' in text
    assert 'watcher_polls_total{outcome="error"} 1.0' in text
    # No chat ids or task names as label values.
    assert str(ADMIN_CHAT) not in text
    assert "secret-task-name" not in text


async def test_sigterm_path_during_fan_out_loses_no_alert(tmp_path: Path) -> None:
    chats = [5000 + i for i in range(6)]
    async with running_rig(tmp_path, allowed_chat_ids=",".join(map(str, chats))) as rig:
        for chat in chats:
            await storage.subscribe(rig.services.db, chat, None, rig.clock.now())
        rig.emu.fail("sendMessage", ApiFailure.timeout(), count=1, chat_id=chats[3])
        await rig.finish_task(SimTask(9, "fan", TaskStatus.RUNNING), TaskStatus.FAILED)
        await rig.emu.wait_for("sendMessage", count=len(chats))  # one of them hangs
        await rig.stop()  # what SIGTERM does: bounded wait, then close everything
        rig.emu.release_held()
        delivered_before = {c.chat_id for c in rig.emu.calls_to("sendMessage", ok=True)}
        assert chats[3] not in delivered_before
        await rig.restart()
        await rig.emu.wait_until(
            lambda: {c.chat_id for c in rig.emu.calls_to("sendMessage", ok=True)} >= set(chats)
        )
        counts = [len(rig.emu.calls_to("sendMessage", chat_id=c, ok=True)) for c in chats]
        assert counts == [1] * len(chats)


async def test_webhook_mode(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with webhook_bot(
        tmp_path, tasks=[SimTask(3, "via webhook", TaskStatus.COMPLETED)]
    ) as bot:
        emu, port = bot.emu, bot.port
        calls = await emu.wait_for("setWebhook", timeout=10)
        assert calls[0].params["url"] == f"http://127.0.0.1:{port}/telegram/hook"
        assert calls[0].params["secret_token"] == "s3cret_Hook-token"
        assert emu.calls_to("getUpdates") == []  # no polling in webhook mode
        emu.send_message(ADMIN_CHAT, "/tasks")  # posted to our webhook by the emulator
        reply = await emu.wait_for("sendMessage", timeout=10)
        assert "#3" in reply[0].params["text"]
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/telegram/hook"
            body = '{"update_id": 1, "message": {"text": "evil-body"}}'
            async with http.post(url, data=body) as resp:
                assert resp.status == 403
            async with http.post(url, data=body, headers={SECRET_HEADER: "wrong"}) as resp:
                assert resp.status == 403
            async with http.post(
                url, data="not json", headers={SECRET_HEADER: "s3cret_Hook-token"}
            ) as resp:
                assert resp.status == 400
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
        assert "evil-body" not in caplog.text
        assert "wrong or missing secret token" in caplog.text
    started = [r for r in caplog.records if r.getMessage() == "bot started"]
    stopped = [r for r in caplog.records if r.getMessage() == "bot stopped"]
    assert (len(started), len(stopped)) == (1, 1)  # resources opened and closed exactly once


def test_dockerfile_runs_the_bot_and_checks_a_real_endpoint() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r'^CMD \["python", "-m", "bot"\]$', text, re.M)
    assert "/healthz" in text
    assert re.search(r"^USER bot$", text, re.M)
    assert "useradd" in text
    assert 'VOLUME ["/data"]' in text
    assert "STOPSIGNAL SIGTERM" in text
    assert text.count("FROM ") == 2
    # One pinned base for both stages (the venv links to the build stage's interpreter).
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-bookworm$", text, re.M)
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    # An init as PID 1 forwards SIGTERM from the first instant; code found from any directory.
    assert re.search(r'^ENTRYPOINT \["tini", "-e", "143", "--"\]$', text, re.M)
    assert "install --yes --no-install-recommends tini" in text
    assert re.search(r"^\s+PYTHONPATH=/app \\$", text, re.M)
    assert "pip uninstall --yes pip setuptools" in text  # no installer in the runtime venv
    from bot.runtime.web import create_web_app  # the endpoint the healthcheck hits exists

    routes = {r.resource.canonical for r in create_web_app(object()).router.routes()}  # type: ignore[arg-type]
    assert "/healthz" in routes


async def test_entry_point_runs_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The README's contract: `python -m bot` with the required variables, SIGTERM → exit 0."""
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        env = bot_env(emu.url, sim_url, tmp_path / "bot.sqlite3", LOG_LEVEL="DEBUG")
        async with bot_process(env, tmp_path) as proc:
            await emu.wait_until(lambda: emu.active_polls > 0, timeout=20)
            emu.send_message(ADMIN_CHAT, "/start")
            reply = await emu.wait_for("sendMessage", timeout=10)
            assert "not allowed" in reply[0].params["text"]  # ALLOWED_CHAT_IDS empty: nobody
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 10)  # the run contract: within 10 s
        _, stderr = await proc.communicate()
        log = stderr.decode()
        assert code == 0, log
        assert "bot stopped" in log
        assert TOKEN not in log
        assert PASSWORD not in log
        assert "Traceback" not in log


async def test_sigterm_during_a_hung_upload_still_exits_within_the_stop_timeout(
    tmp_path: Path,
) -> None:
    """PTB's stop waits for running handlers; ours cuts them off after the grace period.

    The shortest STOP_TIMEOUT: the upload gets 0.5 s instead of the default's 7.5 s, and closing
    keeps the default's 2.5 s, so the stop's closing margins are those of production.
    """
    assert Settings.model_fields["stop_timeout"].default == StopTimes().deadline == 10.0
    timeout = 3.0
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    sim.add_task(SimTask(5, "stuck upload", TaskStatus.COMPLETED, rows=50))
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        env = bot_env(
            emu.url,
            sim_url,
            tmp_path / "bot.sqlite3",
            ALLOWED_CHAT_IDS=str(ADMIN_CHAT),
            STOP_TIMEOUT=str(timeout),
        )
        async with bot_process(env, tmp_path) as proc:
            await emu.wait_until(lambda: emu.active_polls > 0, timeout=20)
            emu.fail("sendDocument", ApiFailure.timeout(), count=1)
            emu.send_message(ADMIN_CHAT, "/get 5")
            await emu.wait_for("sendDocument", timeout=20)  # held: the upload never finishes
            started = asyncio.get_running_loop().time()
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 10)
            elapsed = asyncio.get_running_loop().time() - started
        _, stderr = await proc.communicate()
        log = stderr.decode()
        assert code == 0, log
        assert elapsed < timeout
        assert "cancelled 1 tasks still running after 0.5 s" in log
        assert "bot stopped" in log
