"""`python -m bot`: run the bot; `demo`: the playground; `simulate-smsc`: an SMSC simulator."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from bot.redaction import Redactor, redact_std_streams, secrets_in_environment

if TYPE_CHECKING:
    from pydantic import ValidationError

    from bot.settings import Settings

EXIT_CONFIG = 2
_USAGE = """usage: python -m bot                 run the bot (settings from the environment, .env)
       python -m bot simulate-smsc   run a local SMSC simulator (see --help)
       python -m bot demo            the playground: the bot in a web chat, nothing to set up
"""


def config_errors(err: ValidationError) -> list[str]:
    """One line per invalid setting, naming the environment variable, without its value."""
    lines = []
    for problem in err.errors():
        name = ".".join(str(p) for p in problem["loc"]).upper() or "configuration"
        message = str(problem["msg"]).removeprefix("Value error, ")
        if problem["type"] == "missing":
            message = "is required but not set"
        lines.append(
            f"config error: {name}: {message}" if problem["loc"] else f"config error: {message}"
        )
    return lines


def _exit_now(signum: int, frame: FrameType | None) -> None:
    """A stop signal before anything was started: nothing to clean up, just leave."""
    raise SystemExit(0)


def _api_root(settings: Settings) -> str:
    """Scheme, host and port of the Bot API (never its path or user info)."""
    url = settings.telegram_api_url
    return f"{url.scheme}://{url.host}:{url.port}"


def run_bot(redactor: Redactor | None = None) -> int:
    """Load settings, then run the bot until SIGTERM/SIGINT."""
    redactor = redactor or Redactor()
    from pydantic import ValidationError

    # PTB 22 hands out time periods as timedelta with this set, and warns on every 429 without.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    from bot.settings import Settings

    try:
        settings = Settings()  # pyright: ignore[reportCallIssue] - values come from the environment
    except ValidationError as err:
        for line in config_errors(err):
            print(line, file=sys.stderr)
        return EXIT_CONFIG
    # .env values too; what the environment held was known from the start (main).
    redactor.add(settings.secrets)

    from telegram.error import InvalidToken, NetworkError, TelegramError

    from bot.logs import configure_logging
    from bot.runtime.serving import run_polling, run_webhook
    from bot.texts.i18n import CatalogMissingError, check_catalogs
    from storage import StorageError, check_database
    from storage.instance_lock import AnotherInstanceError, instance_lock

    try:
        check_catalogs()  # speaking English to a Russian chat by accident is no fallback
    except CatalogMissingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    configure_logging(settings.log_level, settings.log_format, redactor)
    log = logging.getLogger("bot")
    lock = instance_lock(settings.database_url)
    try:
        # Before anything talks to Telegram or SMSC: a database another process runs on, or
        # one we cannot use, is a setup error. The lock is held until the process ends.
        # (On PostgreSQL replicas share the database: the lock is a no-op, they elect a leader.)
        lock.acquire()
        asyncio.run(check_database(settings.database_url))
    except AnotherInstanceError as err:
        print(f"error: DATABASE_URL: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except StorageError as err:
        print(f"config error: DATABASE_URL: {err}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if settings.webhook_url is not None:
            asyncio.run(run_webhook(settings))
        else:
            run_polling(settings)
    except InvalidToken:
        print("config error: TELEGRAM_BOT_TOKEN: Telegram rejected the token", file=sys.stderr)
        return EXIT_CONFIG
    except NetworkError as err:
        # One line, no traceback: the cause is outside the bot (logs.StartupNoiseFilter
        # keeps PTB's own traceback of it off stderr).
        print(
            f"error: cannot reach the Telegram Bot API at {_api_root(settings)}: {err}",
            file=sys.stderr,
        )
        return 1
    except TelegramError as err:  # e.g. a proxy's HTML error page instead of the API's JSON
        print(
            f"error: the Telegram Bot API at {_api_root(settings)} failed: {err}", file=sys.stderr
        )
        return 1
    except Exception:
        log.exception("the bot stopped on an error")
        return 1
    finally:
        lock.release()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch the subcommand."""
    # Until the bot installs its own handlers, a stop signal means a quiet exit 0 (the
    # interpreter's defaults would die by the signal, or print a KeyboardInterrupt trace).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_now)
    # Before anything can print: every line on stdout/stderr (prints, tracebacks, log lines)
    # goes through one redactor, which learns the .env secrets once the settings are loaded.
    redactor = Redactor(secrets_in_environment(os.environ))
    redact_std_streams(redactor)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        return run_bot(redactor)
    if args[0] == "simulate-smsc":
        from bot.smsc.simulator.cli import main as simulate

        return simulate(args[1:])
    if args[0] == "demo":
        from bot.playground.cli import main as demo

        return demo(args[1:])
    if args[0] in ("-h", "--help", "help"):
        print(_USAGE, end="")
        return 0
    print(_USAGE, end="", file=sys.stderr)
    return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
