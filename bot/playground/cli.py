"""`python -m bot demo`: the playground in the foreground until Ctrl+C or SIGTERM (exit 0)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot demo",
        description=(
            "Run the real bot on a simulated SMSC and a local Telegram Bot API, with a web chat "
            "to talk to it. Needs no configuration, no token and no SMSC account."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve the page on")
    parser.add_argument("--port", type=int, default=8080, help="port (0 picks a free one)")
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="keep the bot's SQLite database in this file (default: a throwaway one)",
    )
    return parser


async def _run(args: argparse.Namespace) -> int:
    from bot.playground.runner import Playground, PlaygroundOptions

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Not available on Windows; there Ctrl+C arrives as KeyboardInterrupt instead.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    playground = Playground(PlaygroundOptions(host=args.host, port=args.port, database=args.db))
    try:
        await playground.start()
    except OSError as err:
        print(f"error: cannot serve on {args.host}:{args.port}: {err.strerror}", file=sys.stderr)
        return 1
    try:
        print(
            f"Playground: open {playground.url} in a browser (stop with Ctrl+C)",
            flush=True,
        )
        await stop.wait()
        print("stopping…", file=sys.stderr, flush=True)
        playground.begin_stop()
    finally:
        await playground.stop()
    return 0


def main(argv: list[str]) -> int:
    """Run the playground; return the process exit code."""
    args = _parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        print("error: --port must be 0..65535", file=sys.stderr)
        return EXIT_USAGE
    # As `python -m bot` does: PTB 22 hands out time periods as timedelta with this set.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    from bot.logs import configure_logging
    from bot.playground import world

    configure_logging("INFO", "text", [world.BOT_TOKEN])
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
