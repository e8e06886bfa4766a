"""Cost of checking each update before PTB sees it (bot/telegram/updates.py), on the real corpus.

Telegram hands out at most 100 updates per getUpdates; the check is a dry-run parse of each,
so its price is about one more `Update.de_json` per update: the figure to compare with.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from telegram import Update

from bot.telegram.updates import UpdateIntake

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus" / "updates"
BATCH = 100  # Telegram's getUpdates limit


@dataclass(frozen=True)
class CheckResult:
    """Per-update costs of the check and of PTB's own parse."""

    updates: int
    check_us: float
    parse_us: float

    def describe(self) -> str:
        """One line of figures."""
        batch_ms = self.check_us * BATCH / 1000
        return (
            f"update_check: {self.check_us:.0f} us/update (PTB's own parse {self.parse_us:.0f} "
            f"us/update); a full {BATCH}-update batch adds {batch_ms:.1f} ms "
            f"({self.updates} real samples)"
        )


def run(rounds: int = 20) -> CheckResult:
    """Time `sanitize_batch` and `Update.de_json` over the corpus, best of `rounds`."""
    samples = [json.loads(p.read_text()) for p in sorted(CORPUS.glob("*.json"))]
    body = json.dumps({"ok": True, "result": samples}).encode()
    intake = UpdateIntake()
    logger = logging.getLogger("bot.telegram.updates")
    level = logger.level
    logger.setLevel(logging.ERROR)  # measure the work, not the log
    try:
        check, parse = _time(intake, body, samples, rounds)
    finally:
        logger.setLevel(level)
    n = len(samples)
    return CheckResult(n, check / n * 1e6, parse / n * 1e6)


def _time(
    intake: UpdateIntake, body: bytes, samples: list[dict[str, object]], rounds: int
) -> tuple[float, float]:
    check = parse = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        intake.sanitize_batch(body)
        check = min(check, time.perf_counter() - started)
        started = time.perf_counter()
        for data in samples:
            try:
                Update.de_json(data, None)  # type: ignore[arg-type]
            except Exception:  # noqa: BLE001, S112 - the unparseable ones cost too
                continue
        parse = min(parse, time.perf_counter() - started)
    return check, parse


if __name__ == "__main__":
    print(run().describe())
