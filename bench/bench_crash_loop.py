"""Crash-loop benchmark: restart the real `python -m bot` N times in a minute, count what SMSC saw.

Two runs side by side, each with its own SMSC simulator, Bot API emulator and database:

* `crash_loop`: the right password; every process polls once after start and is killed
  (SIGKILL, a crash) a few seconds later. SMSC's rule is 3 identical requests a minute (the 4th
  gets error 9); our budget is 2, whatever the number of restarts.
* `crash_loop_bad_password`: a wrong password; SMSC blocks the IP at 5 failed logins in 30 min,
  our budget is one failed login per 10 minutes.

Everything runs on the real clock (the processes are real). Each process is killed as soon as
its first poll is decided (its first poll is due 2 s after start): when its first request
reaches SMSC (before it can read the answer), or when it logs that the poll failed without one
(our budget said no). The first process alone is killed only once its answer is read: with the
login never proven, every later process would rightly wait (the lost answer may have been a
failed login), which is the bad-password run's case, not this one's. `every` seconds after
it first answers /healthz it is killed anyway (a process that never polled: counted apart,
`undecided`). Both runs share the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.clock import SystemClock
from bot.smsc.simulator import SimulatorState, create_app
from bot.tg_emulator import TelegramEmulator
from tests.fakes.processes import Stderr
from tests.fakes.rig import LOGIN, PASSWORD, TOKEN, bot_env, bot_process, serve

IDENTICAL_BUDGET = 2  # ours, per 60 s; SMSC's limit is 3
FAILED_LOGIN_BUDGET = 1  # ours, per 10 min; SMSC blocks the IP at 5 in 30 min
WINDOW = 60.0
_CREDENTIALS = frozenset({"login", "psw", "apikey"})


@dataclass(frozen=True)
class CrashLoopResult:
    """What the simulator saw during one crash loop."""

    name: str
    restarts: int
    seconds: float
    requests: int
    max_identical_60s: int
    error_9: int
    failed_logins: int
    undecided: int = 0  # processes killed at `every` before their first poll was decided

    def describe(self) -> str:
        """One line of figures against the limits."""
        return (
            f"{self.name}: {self.restarts} restarts in {self.seconds:.0f} s -> "
            f"{self.requests} SMSC requests, max {self.max_identical_60s} identical in 60 s "
            f"(budget {IDENTICAL_BUDGET}, SMSC limit 3), {self.error_9} error 9, "
            f"{self.failed_logins} failed logins (budget {FAILED_LOGIN_BUDGET} per 10 min, "
            "SMSC blocks at 5)"
        )


def max_in_window(times: list[float], window: float = WINDOW) -> int:
    """The most of `times` inside any `window` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def max_identical(sim: SimulatorState) -> int:
    """The most identical requests (credentials aside) SMSC received in any 60 s."""
    by_key: dict[tuple[tuple[str, str], ...], list[float]] = defaultdict(list)
    for rec in sim.requests:
        key = tuple(sorted((k, v) for k, v in rec.params.items() if k not in _CREDENTIALS))
        by_key[key].append(rec.at)
    return max((max_in_window(times) for times in by_key.values()), default=0)


async def wait_healthy(port: int, proc: asyncio.subprocess.Process, within: float = 30.0) -> None:
    """Wait until the bot on `port` answers /healthz (or its process ended)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with aiohttp.ClientSession() as http:
        while loop.time() < deadline and proc.returncode is None:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)


async def first_poll_decided(
    sim: SimulatorState,
    stderr: Stderr,
    proc: asyncio.subprocess.Process,
    *,
    within: float,
    answered: bool = False,
) -> bool:
    """Wait until the bot's first request reached SMSC, or it logged a poll failed without one.

    `answered`: wait for the answer to be read too (the first poll on a new database logs its
    baseline), so the login is proven for every later process.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    before = len(sim.requests)

    def decided() -> bool:
        events = stderr.events()
        if "poll_failed" in events:
            return True
        return "baseline" in events if answered else len(sim.requests) > before

    # The simulator offers no event to wait on, hence the short poll.
    while loop.time() < deadline and proc.returncode is None:
        if decided():
            return True
        await asyncio.sleep(0.02)
    return decided()


async def run(
    *, restarts: int = 6, every: float = 4.0, password: str = PASSWORD, name: str = "crash_loop"
) -> CrashLoopResult:
    """Start the bot `restarts` times, SIGKILLing each once its first poll is decided.

    `every`: the most seconds a process lives once up, waiting for that.
    """
    clock = SystemClock()
    undecided = 0
    sim = SimulatorState(clock, login=LOGIN, password=PASSWORD)
    started = clock.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-crash-") as tmp:
        tmp_path = Path(tmp)
        db_path = tmp_path / "bot.sqlite3"
        async with TelegramEmulator(token=TOKEN) as emu, serve(create_app(sim)) as sim_url:
            for restart in range(restarts):
                env = bot_env(
                    emu.url,
                    sim_url,
                    db_path,
                    SMSC_PASSWORD=password,
                    ALLOWED_CHAT_IDS="1001",
                    LOG_FORMAT="json",  # its "poll_failed" event says a poll sent nothing
                )
                async with bot_process(env, tmp_path) as proc:
                    stderr = Stderr(proc)
                    await wait_healthy(int(env["PORT"]), proc)
                    # Killed right after its request reaches SMSC (the harshest moment: the
                    # answer is never read), or once its poll failed without sending one. The
                    # first process reads its answer: a login never proven would rightly hold
                    # every later process back (the lost answer may have been a failed login).
                    first = restart == 0
                    if not await first_poll_decided(
                        sim, stderr, proc, within=every, answered=first
                    ):
                        undecided += 1
                    if proc.returncode is None:
                        proc.send_signal(signal.SIGKILL)
                    await proc.wait()
                    await stderr.finish()
    return CrashLoopResult(
        name=name,
        restarts=restarts,
        seconds=clock.monotonic() - started,
        requests=len(sim.requests),
        max_identical_60s=max_identical(sim),
        error_9=sum(1 for rec in sim.requests if rec.response_error == 9),
        failed_logins=len(sim.failed_logins),
        undecided=undecided,
    )


async def run_both(*, restarts: int = 6, every: float = 4.0) -> list[CrashLoopResult]:
    """Run the right-password and the wrong-password crash loops at the same time."""
    return list(
        await asyncio.gather(
            run(restarts=restarts, every=every),
            run(
                restarts=restarts,
                every=every,
                password="wrong-" + PASSWORD,
                name="crash_loop_bad_password",
            ),
        )
    )
