"""`python -m bench`: run every benchmark and print one line of figures each."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bench import (
    bench_crash_loop,
    bench_download,
    bench_list_burst,
    bench_parsing,
    bench_strangers,
    bench_updates,
    bench_watcher,
)


def main(argv: list[str] | None = None) -> int:
    """Run all benchmarks."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--size-mb", type=float, default=500.0, help="download size (MiB)")
    parser.add_argument("--rounds", type=int, default=5, help="download rounds")
    parser.add_argument("--calls", type=int, default=100, help="concurrent list_tasks() calls")
    parser.add_argument("--chats", type=int, default=1000, help="fan-out subscribers")
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks in the diffed list")
    parser.add_argument("--poll-interval", type=float, default=60.0, help="for alert latency")
    parser.add_argument("--skip-latency", action="store_true", help="skip the slow latency run")
    parser.add_argument("--crash-restarts", type=int, default=6, help="bot processes per loop")
    parser.add_argument(
        "--crash-every", type=float, default=4.0, help="seconds each process lives once up"
    )
    parser.add_argument("--skip-crash-loop", action="store_true", help="skip the crash loops")
    parser.add_argument(
        "--strangers", type=int, default=200, help="stranger commands (x10 webhook)"
    )
    parser.add_argument("--skip-failover", action="store_true", help="skip the PostgreSQL HA run")
    parser.add_argument("--only-fanout", action="store_true", help="run the fan-out alone")
    args = parser.parse_args(argv)
    if args.only_fanout:
        print(asyncio.run(bench_watcher.bench_fanout(args.chats)).describe(), flush=True)
        return 0
    download = asyncio.run(bench_download.run(args.size_mb, rounds=args.rounds))
    print(download.describe(f"download_{args.size_mb:g}mb"), flush=True)
    burst = asyncio.run(bench_list_burst.run(args.calls))
    print(burst.describe(), flush=True)
    print(bench_watcher.bench_diff(args.tasks).describe(), flush=True)
    print(asyncio.run(bench_watcher.bench_fanout(args.chats)).describe(), flush=True)
    for result in asyncio.run(bench_strangers.run(args.strangers, args.strangers * 10)):
        print(result.describe(), flush=True)
    if not args.skip_latency:
        latency = asyncio.run(bench_watcher.bench_latency(args.poll_interval))
        print(latency.describe(), flush=True)
    if not args.skip_crash_loop:
        loops = bench_crash_loop.run_both(restarts=args.crash_restarts, every=args.crash_every)
        for result in asyncio.run(loops):
            print(result.describe(), flush=True)
    print(bench_updates.run().describe(), flush=True)
    bench_parsing.main(n=args.tasks)
    if not args.skip_failover:
        from bench import bench_failover  # imports the PostgreSQL test support only when run

        print(bench_failover.run().describe(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
