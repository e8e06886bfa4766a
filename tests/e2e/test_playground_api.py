"""The playground's JSON API and event stream, driving the real bot in-process (no browser)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.playground import world
from bot.playground.api import STATIC
from bot.playground.runner import Playground
from bot.smsc.models import TaskStatus
from tests.fakes.playground_support import PENDING, SMALL, in_chat, poll, running_playground, say

ALICE, TEAM, TOPIC, MALLORY = world.ALICE, world.TEAM_GROUP, world.ALERTS_TOPIC, world.MALLORY


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[Playground]:
    async with running_playground(tmp_path) as playground:
        yield playground


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_state_shows_the_chats_the_menu_and_the_account(
    pg: Playground, http: aiohttp.ClientSession
) -> None:
    await pg.emu.wait_for("setMyCommands")
    state = await get_json(http, f"{pg.url}/api/state")
    convs = {c["key"]: c for c in state["conversations"]}
    assert set(convs) == {"private", "team-general", "team-alerts", "stranger"}
    assert convs["team-alerts"]["thread_id"] == TOPIC
    assert convs["team-alerts"]["subscribed"]
    assert not convs["stranger"]["allowed"]
    assert "tasks" in [c["command"] for c in state["commands"]]
    assert state["bot"]["username"] == world.BOT_USERNAME
    assert state["smsc"]["tasks"][0]["id"] == PENDING


async def test_tasks_older_and_get_serve_the_exact_file(
    pg: Playground, http: aiohttp.ClientSession
) -> None:
    first = await say(http, pg, ALICE, "/tasks")
    page = first.result
    assert "Older" in json.dumps(page["reply_markup"], ensure_ascii=False)
    url = f"{pg.url}/api/chats/{ALICE}/messages/{page['message_id']}/press"
    async with http.post(url, json={"text": "Older ▶"}) as resp:
        assert resp.status == 200, await resp.text()
    await pg.emu.wait_for("editMessageText", predicate=in_chat(ALICE), timeout=15.0)
    messages = (await get_json(http, f"{pg.url}/api/chats/{ALICE}/messages"))["messages"]
    edited = next(m for m in messages if m["message_id"] == page["message_id"])
    assert f"#{SMALL}" in edited["text"]
    assert "edit_date" in edited
    assert [m["text"] for m in messages if not m["from"]["is_bot"]] == ["/tasks"]

    sent = await say(http, pg, ALICE, f"/get {SMALL}")
    document = sent.result["document"]
    async with http.get(f"{pg.url}/api/files/{document['file_id']}") as resp:
        assert resp.status == 200
        body = await resp.read()
        assert document["file_name"] in resp.headers["Content-Disposition"]
    assert body == pg.sim.file_bytes(SMALL)


async def test_a_task_completed_in_the_panel_alerts_the_topic(
    pg: Playground, http: aiohttp.ClientSession
) -> None:
    async with http.patch(
        f"{pg.url}/api/smsc/tasks/{PENDING}", json={"status": "completed"}
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["task"]["status"] == "completed"
    await poll(pg)
    calls = await pg.emu.wait_for(
        "sendDocument", predicate=in_chat(TEAM, TOPIC), ok=True, timeout=15.0
    )
    assert calls[0].result["message_thread_id"] == TOPIC
    topic = await get_json(http, f"{pg.url}/api/chats/{TEAM}/messages?thread_id={TOPIC}")
    assert any("document" in m for m in topic["messages"])
    general = await get_json(http, f"{pg.url}/api/chats/{TEAM}/messages?thread_id=0")
    assert not any("document" in m for m in general["messages"])
    assert not pg.emu.calls_to("sendDocument", chat_id=ALICE)  # only the topic is subscribed


async def test_a_new_task_and_a_large_file_reach_smsc(
    pg: Playground, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{pg.url}/api/smsc/tasks", json={"name": "Board export <Q4>", "size_mb": 60}
    ) as resp:
        assert resp.status == 201
        task = (await resp.json())["task"]
    assert task["size_bytes"] == 60_000_000
    assert task["status"] == "pending"
    async with http.patch(f"{pg.url}/api/smsc/tasks/{PENDING}", json={"size_mb": 60}) as resp:
        assert resp.status == 200
    assert pg.sim.tasks[PENDING].size_bytes == 60_000_000
    await poll(pg)
    reply = await say(http, pg, ALICE, "/tasks")
    assert "Board export &lt;Q4&gt;" not in reply.result["text"]  # shown as text, not markup
    assert "Board export <Q4>" in reply.result["text"]


@pytest.mark.parametrize(
    ("kind", "words", "recover"),
    [
        ("http_500", "HTTP 500", 61),
        ("wrong_credentials", "login", 601),
        ("error_9", "error 9", 61),
    ],
)
async def test_an_injected_fault_gets_an_honest_reply_and_clears(
    pg: Playground, http: aiohttp.ClientSession, kind: str, words: str, recover: float
) -> None:
    await say(http, pg, ALICE, "/tasks")  # a list the client can fall back on
    async with http.put(f"{pg.url}/api/smsc/fault", json={"kind": kind}) as resp:
        assert resp.status == 200
    assert (await get_json(http, f"{pg.url}/api/smsc"))["fault"]["kind"] == kind
    pg.clock.advance(61)  # type: ignore[attr-defined] - past the list cache
    reply = (await say(http, pg, ALICE, "/tasks")).result["text"]
    # The list the bot has, saying plainly how old it is and why it is not fresh (issue 8).
    assert f"#{PENDING}" in reply
    assert "⚠️ List as of" in reply
    assert words in reply.rsplit("List as of", 1)[1]

    async with http.delete(f"{pg.url}/api/smsc/fault") as resp:
        assert resp.status == 200
    pg.clock.advance(recover)  # type: ignore[attr-defined] - the client's backoff
    reply = (await say(http, pg, ALICE, "/tasks")).result["text"]
    assert f"#{PENDING}" in reply
    assert "List as of" not in reply  # fresh again


async def test_the_hang_fault_holds_requests_until_cleared(
    pg: Playground, http: aiohttp.ClientSession
) -> None:
    async with http.put(f"{pg.url}/api/smsc/fault", json={"kind": "hang"}) as resp:
        assert (await resp.json())["fault"]["kind"] == "hang"
    assert pg.sim.pending_faults > 0
    async with http.delete(f"{pg.url}/api/smsc/fault") as resp:
        assert (await resp.json()) == {"fault": None}
    assert pg.sim.pending_faults == 0


async def test_the_stranger_is_refused(pg: Playground, http: aiohttp.ClientSession) -> None:
    reply = (await say(http, pg, MALLORY, "/tasks")).result["text"]
    assert "not allowed" in reply
    assert str(MALLORY) in reply


async def test_the_event_stream_carries_messages_live(
    pg: Playground, http: aiohttp.ClientSession
) -> None:
    seen: list[dict[str, Any]] = []
    async with http.get(f"{pg.url}/api/events?after={pg.feed.last_id}") as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        await say(http, pg, TEAM, "/help", thread_id=TOPIC)

        async def read() -> None:
            async for raw in stream.content:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    seen.append(json.loads(line[6:]))
                    if sum(e.get("type") == "message" for e in seen) >= 2:
                        return

        await asyncio.wait_for(read(), timeout=15.0)
    user, bot = (e["message"] for e in seen if e["type"] == "message")
    assert user["text"] == "/help"
    assert user["message_thread_id"] == TOPIC
    assert bot["from"]["is_bot"]
    assert bot["message_thread_id"] == TOPIC


async def test_the_stream_shows_chat_actions_and_restarts(
    pg: Playground, http: aiohttp.ClientSession
) -> None:
    await say(http, pg, ALICE, f"/get {SMALL}")
    actions = [e.data for e in pg.feed.since(0) or [] if e.data["type"] == "action"]
    assert {"type": "action", "chat_id": ALICE, "thread_id": None, "action": "upload_document"} in (
        actions
    )
    # A page that saw ids from before a restart is told to reload, not left waiting.
    headers = {"Last-Event-ID": str(pg.feed.last_id + 100)}
    async with http.get(f"{pg.url}/api/events?after=0", headers=headers) as stream:

        async def first_event() -> str:
            async for raw in stream.content:
                if raw.startswith(b"event: "):
                    return raw.decode().strip()
            return ""

        assert await asyncio.wait_for(first_event(), timeout=15.0) == "event: reload"


async def test_health_and_the_page_share_the_port(
    pg: Playground, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{pg.url}/healthz") as resp:
        assert resp.status == 200
    async with http.get(f"{pg.url}/") as resp:
        assert resp.status == 200
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        page = await resp.text()
    for asset in ("/static/app.js", "/static/app.css", "/static/favicon.svg"):
        assert asset in page
        async with http.get(pg.url + asset) as resp:
            assert resp.status == 200


def test_the_page_loads_nothing_from_elsewhere() -> None:
    files = sorted(STATIC.iterdir())
    assert {f.name for f in files} >= {"index.html", "app.js", "app.css"}
    for path in files:
        text = re.sub(r'xmlns="[^"]*"', "", path.read_text(encoding="utf-8"))  # a name, not a fetch
        # No absolute or protocol-relative address: no CDN, no web font, no analytics.
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name
        assert "@import" not in text
        assert 'fetch("http' not in text


async def test_the_demo_ignores_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_URL", "not a url")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "garbage")
    monkeypatch.setenv("POLL_INTERVAL", "1")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("ALLOWED_CHAT_IDS=nonsense\n")
    async with running_playground(tmp_path) as pg:
        assert pg.settings is not None
        assert pg.settings.webhook_url is None
        assert pg.settings.allowed_chat_ids == world.ALLOWED_CHAT_IDS


BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/api/chats/abc/messages", {"text": "x"}, 400, "chat id"),
    ("POST", "/api/chats/999/messages", {"text": "x"}, 404, "no chat 999"),
    ("POST", f"/api/chats/{ALICE}/messages", b"not json", 400, "JSON object"),
    ("POST", f"/api/chats/{ALICE}/messages", b"\xff\xfe", 400, "JSON object"),
    ("POST", f"/api/chats/{ALICE}/messages", [], 400, "JSON object"),
    ("POST", f"/api/chats/{ALICE}/messages", {"text": " "}, 400, "non-empty"),
    ("POST", f"/api/chats/{ALICE}/messages", {"text": 5}, 400, "non-empty"),
    ("POST", f"/api/chats/{ALICE}/messages", {"text": "x" * 4097}, 400, "at most 4096"),
    ("POST", f"/api/chats/{ALICE}/messages", b'{"text": "\\ud800"}', 400, "Unicode"),
    ("POST", f"/api/chats/{ALICE}/messages", {"text": "x", "thread_id": 99}, 404, "topic"),
    ("POST", f"/api/chats/{ALICE}/messages", {"text": "x", "thread_id": True}, 400, "thread_id"),
    ("POST", f"/api/chats/{ALICE}/messages", {"text": "x", "as": 1}, 400, "unknown field"),
    ("POST", f"/api/chats/{ALICE}/messages/{2**60}/press", {}, 400, "out of range"),
    ("POST", f"/api/chats/{ALICE}/messages/777/press", {"data": "x"}, 404, "no message 777"),
    ("GET", "/api/files/nope", None, 404, "no such file"),
    ("GET", f"/api/chats/{ALICE}/messages?thread_id=x", None, 400, "thread_id"),
    ("GET", "/api/events?after=x", None, 400, "after"),
    ("POST", "/api/smsc/tasks", {}, 400, "name"),
    ("POST", "/api/smsc/tasks", {"name": "x", "status": "done"}, 400, "status"),
    ("POST", "/api/smsc/tasks", {"name": "x", "size_mb": 0}, 400, "size_mb"),
    ("POST", "/api/smsc/tasks", {"name": "x", "size_mb": 1000}, 400, "size_mb"),
    ("POST", "/api/smsc/tasks", {"name": "x", "size_mb": "60"}, 400, "size_mb"),
    ("POST", "/api/smsc/tasks", {"name": "x", "size_mb": True}, 400, "size_mb"),
    ("POST", "/api/smsc/tasks", b'{"name": "x", "size_mb": NaN}', 400, "size_mb"),
    ("POST", "/api/smsc/tasks", {"name": "x" * 201}, 400, "name"),
    ("POST", "/api/smsc/tasks", {"name": "x", "colour": "red"}, 400, "unknown field"),
    ("PATCH", "/api/smsc/tasks/1", {"status": "completed"}, 404, "no task 1"),
    ("PATCH", "/api/smsc/tasks/abc", {"status": "completed"}, 400, "task id"),
    ("PATCH", f"/api/smsc/tasks/{PENDING}", {}, 400, "nothing to change"),
    ("PATCH", f"/api/smsc/tasks/{PENDING}", {"status": 2}, 400, "status"),
    ("PUT", "/api/smsc/fault", {"kind": "meteor"}, 400, "kind"),
    ("PUT", "/api/smsc/fault", {}, 400, "kind"),
    ("GET", "/api/nothing", None, 404, "no such API"),
    ("DELETE", f"/api/smsc/tasks/{PENDING}", None, 404, "no such API"),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=lambda c: f"{c[0]} {c[1][:40]} {c[3]}")
async def test_bad_requests_get_a_clear_error(
    pg: Playground, http: aiohttp.ClientSession, case: tuple[str, str, Any, int, str]
) -> None:
    method, path, body, status, words = case
    kwargs: dict[str, Any] = {}
    if isinstance(body, bytes):
        kwargs["data"] = body
    elif body is not None:
        kwargs["json"] = body
    async with http.request(method, pg.url + path, **kwargs) as resp:
        assert resp.status == status, await resp.text()
        assert words in (await resp.json())["error"]
    assert pg.app.running  # nothing crashed
    assert pg.sim.tasks[PENDING].status == TaskStatus.PENDING


async def test_pressing_needs_a_real_button(pg: Playground, http: aiohttp.ClientSession) -> None:
    page = (await say(http, pg, ALICE, "/tasks")).result
    url = f"{pg.url}/api/chats/{ALICE}/messages/{page['message_id']}/press"
    for body, status, words in [
        ({"data": "tasks::1"}, 404, "no button"),
        ({"text": "Newer"}, 404, "no button"),
        ({}, 400, "give"),
        ({"data": 5}, 400, "data"),
    ]:
        async with http.post(url, json=body) as resp:
            assert resp.status == status
            assert words in (await resp.json())["error"]


async def test_the_language_switch_makes_the_bot_answer_in_russian(
    pg: Playground, http: aiohttp.ClientSession
) -> None:
    russian = await say(http, pg, ALICE, "/tasks", language_code="ru")
    assert russian.result["text"].startswith("Отложенные задачи")
    button = russian.result["reply_markup"]["inline_keyboard"][0][0]
    assert button["text"] == "Старше ▶"
    english = await say(http, pg, ALICE, "/tasks", language_code="en")
    assert english.result["text"].startswith("Deferred tasks")
    assert "Deferred tasks" in (await say(http, pg, ALICE, "/tasks")).result["text"]


@pytest.mark.parametrize("bad", ["", "russian!", 7, None, "x" * 40])
async def test_a_bad_language_code_is_refused(
    pg: Playground, http: aiohttp.ClientSession, bad: object
) -> None:
    url = f"{pg.url}/api/chats/{ALICE}/messages"
    async with http.post(url, json={"text": "/help", "language_code": bad}) as resp:
        assert resp.status == 400
        assert "language_code" in (await resp.json())["error"]
