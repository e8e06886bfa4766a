"""The playground in a real headless browser: Debian's chromium, driven by Playwright.

Each step saves a screenshot under the test's temporary folder. The bot runs in-process on a
FakeClock (tests/fakes/playground_support.py), so SMSC's windows pass without waiting. In CI these
tests must run: a missing chromium fails them there instead of skipping.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from bot.playground import world
from bot.playground.runner import Playground
from bot.smsc.models import TaskStatus
from tests.fakes.playground_support import PENDING, SMALL, poll, running_playground

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000  # a loaded 2-core machine can be slow; this is a safety net, not a target

try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # pragma: no cover - the dev extra installs it
    async_playwright = None  # type: ignore[assignment]

_missing = None
if async_playwright is None:
    _missing = "playwright is not installed (make install-dev)"
elif not Path(CHROMIUM).exists():
    _missing = "chromium is not installed (apt-get install chromium)"
if _missing and os.environ.get("CI") == "true":
    raise RuntimeError(f"browser tests must run in CI: {_missing}")
# One browser for the module (starting chromium is the slow part), so one event loop too.
pytestmark = [
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
    pytest.mark.asyncio(loop_scope="module"),
]


@pytest_asyncio.fixture(loop_scope="module")
async def pg(tmp_path: Path) -> AsyncIterator[Playground]:
    async with running_playground(tmp_path) as playground:
        yield playground


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


class Steps:
    """A page, with one numbered screenshot per step and every script error kept."""

    def __init__(self, page: Page, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.errors: list[str] = []
        self.count = 0
        folder.mkdir(parents=True, exist_ok=True)
        page.on("pageerror", lambda err: self.errors.append(str(err)))

    async def shot(self, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        await self.page.screenshot(path=str(path))
        return path

    async def send(self, text: str) -> None:
        box = self.page.locator("#composer-input")
        await box.fill(text)
        await box.press("Enter")

    def bot_says(self, words: str) -> Any:
        return self.page.locator("li.msg.bot", has_text=words).last

    async def open_chat(self, key: str) -> None:
        await self.page.locator(f'.chat-item[data-key="{key}"]').click()


CONTEXTS: list[Any] = []


@pytest_asyncio.fixture(loop_scope="module", autouse=True)
async def _close_contexts(pg: Playground) -> AsyncIterator[None]:
    yield  # set up after `pg`, so torn down before it
    while CONTEXTS:
        await CONTEXTS.pop().close()  # before the playground stops: no page left streaming


async def open_page(browser: Browser, pg: Playground, tmp_path: Path, **context: Any) -> Steps:
    expect.set_options(timeout=WAIT_MS)
    ctx = await browser.new_context(accept_downloads=True, **context)
    CONTEXTS.append(ctx)
    page = await ctx.new_page()
    steps = Steps(page, tmp_path / "screenshots")
    await page.goto(pg.url)
    await expect(page.locator("#live")).to_have_text("live")
    return steps


async def test_tasks_older_and_a_download(browser: Browser, pg: Playground, tmp_path: Path) -> None:
    steps = await open_page(browser, pg, tmp_path, viewport={"width": 1280, "height": 820})
    page = steps.page
    await expect(page.locator("#chat-title")).to_have_text(world.BOT_NAME)
    await steps.shot("open")
    await page.get_by_role("button", name="Start").click()
    await expect(steps.bot_says("/tasks")).to_contain_text("SMSC deferred tasks")

    await steps.send("/tasks")
    listing = steps.bot_says("Deferred tasks")
    await expect(listing).to_contain_text(f"#{PENDING}")
    await expect(listing.locator("strong").first).to_have_text("Deferred tasks")  # <b> rendered
    await expect(page.locator("li.msg.bot")).to_have_count(2)  # the help, the list
    await steps.shot("tasks")

    await listing.get_by_role("button", name="Older ▶").click()
    await expect(listing).to_contain_text(f"#{SMALL}")  # the same message, edited in place
    await expect(listing).to_contain_text("edited")
    await expect(page.locator("li.msg.bot")).to_have_count(2)  # edited, not a new message
    await steps.shot("older")

    await steps.send(f"/get {SMALL}")
    card = page.locator(".file").last
    await expect(card).to_be_visible()
    async with page.expect_download() as info:
        await card.get_by_role("link").click()
    download = await info.value
    saved = tmp_path / "downloaded.csv"
    await download.save_as(saved)
    assert saved.read_bytes() == pg.sim.file_bytes(SMALL)
    await steps.shot("get")
    assert steps.errors == []


async def test_an_alert_from_the_panel_and_an_injected_fault(
    browser: Browser, pg: Playground, tmp_path: Path
) -> None:
    steps = await open_page(browser, pg, tmp_path, viewport={"width": 1280, "height": 820})
    page = steps.page
    await steps.open_chat("team-alerts")
    await expect(page.locator("#chat-title")).to_contain_text("Alerts")

    await page.get_by_role("button", name=f"Complete task {PENDING}").click()
    await expect(page.locator("#tasks .task", has_text=f"#{PENDING}")).to_contain_text("completed")
    assert pg.sim.tasks[PENDING].status == TaskStatus.COMPLETED
    await poll(pg)
    alert = page.locator("li.msg.bot", has=page.locator(".file"))
    await expect(alert).to_contain_text("Fresh export")
    await expect(alert.locator(".file-name")).to_contain_text(".csv")
    await steps.shot("alert-in-topic")

    await page.get_by_role("button", name="HTTP 500 from SMSC").click()
    await expect(page.locator("#fault-now")).to_contain_text("HTTP 500")
    await steps.open_chat("private")
    pg.clock.advance(61)  # type: ignore[attr-defined] - past the list cache
    await steps.send("/tasks")
    await expect(steps.bot_says("HTTP 500")).to_contain_text("⚠️")
    await steps.shot("http-500")

    await page.get_by_role("button", name="Clear the fault").click()
    await expect(page.locator("#fault-now")).to_have_text("SMSC behaves.")
    assert steps.errors == []


async def test_the_stranger_is_refused_at_phone_width(
    browser: Browser, pg: Playground, tmp_path: Path
) -> None:
    steps = await open_page(
        browser, pg, tmp_path, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    page = steps.page
    await page.locator(".tabs").get_by_role("button", name="Chats").click()
    await expect(page.locator("#chat-list")).to_be_visible()
    await expect(page.locator("#messages")).to_be_hidden()  # one pane at a time
    await steps.shot("phone-chats")
    await steps.open_chat("stranger")
    await expect(page.locator("#chat-about")).to_contain_text("not in ALLOWED_CHAT_IDS")

    # Keyboard only: the command menu opens, a command is chosen with Enter.
    await page.locator("#menu-button").focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#menu")).to_be_visible()
    await expect(page.locator("#menu .menu-item").first).to_be_focused()
    await page.locator("#menu .menu-item", has_text="/tasks").focus()
    await page.keyboard.press("Enter")
    refusal = steps.bot_says("not allowed")
    await expect(refusal).to_contain_text(str(world.MALLORY))
    await expect(refusal.locator("code")).to_have_text(str(world.MALLORY))
    await steps.shot("phone-stranger")

    await page.locator(".tabs").get_by_role("button", name="SMSC").click()
    await expect(page.locator("#panel")).to_be_visible()
    await steps.shot("phone-panel")
    assert steps.errors == []


RICH = (
    "<b>bold</b> <i>italic</i> <u>under</u> <s>struck</s> <code>code()</code> "
    '<a href="https://example.org/x">a link</a> <tg-spoiler>the secret</tg-spoiler>\n'
    '<pre><code class="language-python">print("hi")</code></pre>'
    "<blockquote>quoted <b>and bold</b></blockquote>"
    "<blockquote expandable>a long quote</blockquote>"
)


async def test_html_parse_mode_renders_as_telegram_does(
    browser: Browser, pg: Playground, tmp_path: Path
) -> None:
    steps = await open_page(browser, pg, tmp_path, viewport={"width": 1280, "height": 820})
    page = steps.page
    # Whatever the bot may send: the Bot API call it would make, through the emulator's parser.
    async with aiohttp.ClientSession() as http:
        url = f"{pg.emu.url}/bot{world.BOT_TOKEN}/sendMessage"
        body = {"chat_id": world.ALICE, "text": RICH, "parse_mode": "HTML"}
        async with http.post(url, json=body) as resp:
            assert resp.status == 200, await resp.text()
    bubble = steps.bot_says("bold")
    await expect(bubble.locator("strong").first).to_have_text("bold")
    await expect(bubble.locator("em")).to_have_text("italic")
    await expect(bubble.locator("u")).to_have_text("under")
    await expect(bubble.locator("s")).to_have_text("struck")
    await expect(bubble.locator("code").first).to_have_text("code()")
    await expect(bubble.locator('a[href="https://example.org/x"]')).to_have_text("a link")
    await expect(bubble.locator("pre")).to_have_attribute("data-language", "python")
    await expect(bubble.locator("blockquote").first).to_contain_text("quoted and bold")
    await expect(bubble.locator("blockquote strong")).to_have_text("and bold")
    await expect(bubble.locator("blockquote.expandable")).to_have_text("a long quote")
    spoiler = bubble.locator(".spoiler")
    await expect(spoiler).not_to_have_class("spoiler revealed")
    await steps.shot("rich-hidden-spoiler")
    await spoiler.focus()
    await page.keyboard.press("Enter")
    await expect(spoiler).to_have_class("spoiler revealed")
    await steps.shot("rich-revealed")
    assert steps.errors == []
