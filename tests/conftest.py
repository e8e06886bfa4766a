"""Shared test setup, and a run-wide check that no secret ever reaches a log record."""

from __future__ import annotations

import logging
import os

import pytest

from bot.logs import quiet_libraries

# Fixtures shared across test files live in these modules.
pytest_plugins = [
    "tests.fakes.smsc_support",
    "tests.fakes.pg_support",
    "tests.fakes.storage_support",
]

# As `python -m bot` does: PTB 22 warns on every RetryAfter unless time periods are timedeltas,
# and warnings are errors in this suite.
os.environ.setdefault("PTB_TIMEDELTA", "true")

# Every credential the suite hands the bot, the client or the emulator.
SECRETS = (
    "123456:TEST-token",  # the emulator's and the rig's bot tokens start with this
    "s3cret-Passw0rd",  # tests/fakes/rig.py
    "pa55-Секрет-0xC0FFEE",  # tests/fakes/smsc_support.py
    "key-6f1c2a9d4b7e",  # tests/fakes/smsc_support.py
    "s3cret_Hook-token",  # the webhook secret in tests/e2e/test_hosted.py
    "pg-Pa55word-C0FFEE",  # the PostgreSQL password, tests/fakes/pg_support.py
)


class _Collector(logging.Handler):
    """Keeps every record's raw text (not redacted: the bot must not log secrets at all)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]!r}"
        if any(secret in text for secret in SECRETS):
            self.leaks.append(f"{record.name}: {text[:300]}")


_collector = _Collector()


def pytest_configure(config: pytest.Config) -> None:
    """Collect INFO and above from every logger for the whole run, as production logs them."""
    root = logging.getLogger()
    root.addHandler(_collector)
    root.setLevel(min(root.level, logging.INFO))
    quiet_libraries()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any log record of any test carried a secret."""
    logging.getLogger().removeHandler(_collector)
    if _collector.leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("SECRETS IN LOG OUTPUT:", red=True)
            for leak in _collector.leaks[:20]:
                reporter.write_line(f"  {leak}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
