"""The bot in webhook mode in-process (`run_webhook`), against the emulator and the simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.clock import FakeClock
from bot.runtime.serving import run_webhook
from bot.smsc.simulator import SimTask, SimulatorState, create_app
from bot.tg_emulator import TelegramEmulator
from tests.fakes.rig import LOGIN, PASSWORD, TOKEN, free_port, make_settings, serve

SECRET = "s3cret_Hook-token"


@dataclass
class Hooked:
    """A bot in webhook mode, its emulator and where it listens."""

    emu: TelegramEmulator
    port: int
    url: str  # WEBHOOK_URL as configured

    def local(self, path: str) -> str:
        """A URL on the bot's own server."""
        return f"http://127.0.0.1:{self.port}{path}"


@contextlib.asynccontextmanager
async def webhook_bot(
    tmp_path: Path, path: str = "/telegram/hook", *, tasks: Iterable[SimTask] = ()
) -> AsyncIterator[Hooked]:
    """Run `run_webhook` against the emulator, SMSC holding `tasks`, until the block ends.

    Entered once Telegram has been told the webhook (setWebhook).
    """
    sim = SimulatorState(FakeClock(autoadvance=True), login=LOGIN, password=PASSWORD)
    for task in tasks:
        sim.add_task(task)
    port = free_port()
    async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
        url = f"http://127.0.0.1:{port}{path}"
        settings = make_settings(
            tmp_path, emu.url, sim_url, webhook_url=url, webhook_secret=SECRET, port=port
        )
        stop = asyncio.Event()
        runner = asyncio.create_task(run_webhook(settings, stop))
        try:
            await emu.wait_for("setWebhook", timeout=10)
            yield Hooked(emu, port, str(settings.webhook_url))
        finally:
            stop.set()
            await asyncio.wait_for(runner, 15)
