"""The test-only waits `python -m bot` reads from its environment (bot/runtime/resources.py)."""

from __future__ import annotations

import pytest

from bot.runtime.resources import FIRST_POLL_DELAY, RuntimeOptions
from bot.telegram.updates import GET_UPDATES_BACKOFF, UpdateIntake


def test_unset_means_the_production_waits() -> None:
    options = RuntimeOptions.from_environment({"BOT_TEST_FIRST_POLL_DELAY": ""})
    assert options.first_poll_delay == FIRST_POLL_DELAY == 2.0
    assert options.get_updates_backoff == GET_UPDATES_BACKOFF == (1, 2, 4, 8, 16, 30)


def test_the_knobs_shorten_the_waits() -> None:
    options = RuntimeOptions.from_environment(
        {"BOT_TEST_FIRST_POLL_DELAY": "0", "BOT_TEST_GET_UPDATES_BACKOFF": "0.05,0.1,60"}
    )
    assert options.first_poll_delay == 0
    intake = UpdateIntake(backoff=options.get_updates_backoff)
    waits = []
    for _ in range(5):
        intake.round_trip_failed("test")
        waits.append(intake.stats.last_backoff)
    assert waits == [0.05, 0.1, 60, 60, 60]  # the last one repeats


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "1,,2"])
def test_a_bad_value_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="must be seconds"):
        RuntimeOptions.from_environment({"BOT_TEST_GET_UPDATES_BACKOFF": value})


def test_an_empty_backoff_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one wait"):
        UpdateIntake(backoff=())
