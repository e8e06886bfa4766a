"""End-to-end: names that fight the layout are neutralised in everything we send (issue 9).

A task or file name with a right-to-left override, an isolate or a zero-width character could
visually rewrite the status word next to it ("✅ completed" read backwards, or hidden). esc()
neutralises them in every message; these tests read the messages as the emulator stored them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import storage
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask
from bot.texts.characters import neutralise
from bot.texts.markup import esc
from tests.fakes.rig import ADMIN_CHAT, Rig, running_rig

BIDI = [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
CONTROLS = [chr(c) for c in [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0x85, 0x9F]]
FORBIDDEN = set(BIDI + ZERO_WIDTH + CONTROLS)

# With U+202E after "Report", everything after it would be shown right to left.
HOSTILE = "Report\u202e failed\u2066 \u200bok\u2069\u200f\x00\x1b[31m\u0085end"


def forbidden_in(text: str) -> set[str]:
    return {ch for ch in text if ch in FORBIDDEN}


@pytest.mark.parametrize("char", sorted(FORBIDDEN))
def test_esc_neutralises_every_layout_character(char: str) -> None:
    out = esc(f"a{char}b")
    assert forbidden_in(out) == set()
    assert out.startswith("a")
    assert out.endswith("b")


def test_esc_keeps_newlines_and_ordinary_text() -> None:
    assert esc("line 1\nline 2 <b>&") == "line 1\nline 2 &lt;b&gt;&amp;"
    assert esc("tab\there\r\n") == "tab here \n"
    assert esc("Рассылка 📦 עברית") == "Рассылка 📦 עברית"  # right-to-left *letters* stay
    assert neutralise("x\u202ey\x00") == "xy\ufffd"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with running_rig(tmp_path, options={"run_delivery": False}) as rig:
        yield rig


def shown(rig: Rig) -> list[str]:
    """Every text and caption the bot sent, as the user sees it (entities parsed)."""
    out: list[str] = []
    for call in rig.emu.calls:
        result = call.response.get("result")
        if call.ok and isinstance(result, dict):
            out += [str(result.get(k)) for k in ("text", "caption") if result.get(k)]
    return out


async def test_names_are_neutralised_in_lists_replies_alerts_and_captions(rig: Rig) -> None:
    rig.sim.add_task(SimTask(1, HOSTILE, TaskStatus.COMPLETED, file=HOSTILE + ".csv", rows=3))
    rig.sim.add_task(SimTask(2, HOSTILE, TaskStatus.RUNNING))
    text = await rig.reply_text(ADMIN_CHAT, "/tasks")
    assert "Report failed" in text  # the letters survive, in their own order
    await rig.reply_text(ADMIN_CHAT, "/get 2")  # "still running", with the name
    await rig.say(ADMIN_CHAT, "/get 1", wait="sendDocument")
    await rig.reply_text(ADMIN_CHAT, f"/get {HOSTILE}x")  # "not found", echoing the query
    await storage.subscribe(rig.services.db, ADMIN_CHAT, None, rig.clock.now())
    await rig.finish_task(SimTask(3, HOSTILE, TaskStatus.RUNNING), TaskStatus.FAILED)
    await rig.deliver()
    texts = shown(rig)
    assert sum(1 for t in texts if "Report" in t) >= 5
    for sent in texts:
        assert forbidden_in(sent) == set(), repr(sent)
