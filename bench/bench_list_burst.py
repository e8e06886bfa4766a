"""A burst of concurrent `list_tasks()` calls: how many upstream requests does it cost?"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from bot.clock import SystemClock
from bot.smsc.client import SmscClient, SmscClientConfig, SmscCredentials
from bot.smsc.models import TaskStatus
from bot.smsc.simulator import SimTask, SimulatorState, create_app

LOGIN = PASSWORD = "bench"


@dataclass(frozen=True)
class BurstResult:
    """What one burst cost."""

    calls: int
    tasks: int
    pages: int
    upstream_requests: int
    seconds: float
    second_burst_requests: int  # the same burst again, inside the cache TTL

    @property
    def per_call(self) -> float:
        """Upstream requests per list_tasks() call."""
        return self.upstream_requests / self.calls

    def describe(self) -> str:
        """One line of figures, as `python -m bench` prints it."""
        return (
            f"list_burst: {self.calls} concurrent list_tasks() over {self.tasks} tasks "
            f"({self.pages} pages) -> {self.upstream_requests} upstream requests "
            f"= {self.per_call:.3f} per call in {self.seconds * 1000:.0f} ms; "
            f"a second burst within the cache TTL -> {self.second_burst_requests}"
        )


async def run(calls: int = 100, tasks: int = 450, page_size: int = 200) -> BurstResult:
    """Fire `calls` concurrent list_tasks() at a simulator holding `tasks` tasks."""
    state = SimulatorState(SystemClock(), login=LOGIN, password=PASSWORD)
    for task_id in range(1, tasks + 1):
        state.add_task(SimTask(task_id, f"Task {task_id}", TaskStatus.COMPLETED))
    runner = web.AppRunner(create_app(state), shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as session:
            client = SmscClient(
                session,
                SmscCredentials(login=LOGIN, password=PASSWORD),
                config=SmscClientConfig(base_url=url, page_size=page_size),
            )
            started = time.perf_counter()
            results = await asyncio.gather(*(client.list_tasks() for _ in range(calls)))
            seconds = time.perf_counter() - started
            first = len(state.requests)
            await asyncio.gather(*(client.list_tasks() for _ in range(calls)))
            second = len(state.requests) - first
    finally:
        await runner.cleanup()
    if any(len(r) != tasks for r in results):
        raise RuntimeError("a caller got an incomplete list")
    return BurstResult(calls, tasks, -(-tasks // page_size), first, seconds, second)


def main(argv: list[str] | None = None) -> int:
    """Run the burst benchmark alone."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_list_burst")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=450)
    args = parser.parse_args(argv)
    print(asyncio.run(run(args.calls, args.tasks)).describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
