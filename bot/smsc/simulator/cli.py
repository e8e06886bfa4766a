"""`python -m bot simulate-smsc`: serve the demo SMSC account on a local port."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from aiohttp import web

from bot.clock import SystemClock
from bot.smsc.simulator.app import create_app
from bot.smsc.simulator.scenario import demo_state

# Long enough for a small answer in flight to finish, short enough that Ctrl+C feels immediate
# even while someone is pulling the 60 MB demo file.
SHUTDOWN_TIMEOUT = 2.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot simulate-smsc",
        description="Serve a fake SMSC /sys/downloads.php with a scripted demo account.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8081, help="port (0 picks a free one)")
    parser.add_argument("--login", default="demo", help="accepted login")
    parser.add_argument("--password", default="demo", help="accepted password (psw)")
    parser.add_argument("--apikey", default=None, help="accepted API key (default: none)")
    return parser


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _serve(args: argparse.Namespace) -> int:
    state = demo_state(SystemClock(), login=args.login, password=args.password, apikey=args.apikey)
    runner = web.AppRunner(create_app(state), shutdown_timeout=SHUTDOWN_TIMEOUT)
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port)
        try:
            await site.start()
        except OSError as exc:
            print(f"Cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
            return 1
        port = runner.addresses[0][1]
        creds = f"login={args.login} psw={args.password}"
        if args.apikey:
            creds += f" apikey={args.apikey}"

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Not available on Windows; there Ctrl+C arrives as KeyboardInterrupt instead.
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        # Announce only once a SIGTERM would be handled: scripts start sending at this line.
        print(f"SMSC simulator on {_url(args.host, port)} ({creds}); stop with Ctrl+C", flush=True)
        await stop.wait()
        return 0
    finally:
        await runner.cleanup()


def main(argv: list[str]) -> int:
    """Run the simulator until SIGTERM or SIGINT; return the process exit code."""
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
