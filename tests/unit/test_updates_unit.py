"""The update intake's pieces on their own: batch checking, ids, types, the rate-limited log."""

from __future__ import annotations

import json
import logging

import pytest

from bot.clock import FakeClock
from bot.telegram.updates import RateLimitedLog, UpdateIntake, update_id_of, update_kind

GOOD = {
    "update_id": 7,
    "message": {"message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}},
}


def batch(*items: object) -> bytes:
    """A getUpdates answer holding `items`."""
    return json.dumps({"ok": True, "result": list(items)}).encode()


def test_a_clean_batch_is_passed_through_untouched() -> None:
    body = batch(GOOD, {**GOOD, "update_id": 8})
    assert UpdateIntake(FakeClock()).sanitize_batch(body) is body


def test_bad_updates_are_reduced_to_their_id_and_ones_without_an_id_dropped() -> None:
    intake = UpdateIntake(FakeClock())
    bad = {"update_id": 9, "message": {"message_id": 1, "date": 1, "chat": {"id": 1}}}
    body = batch(GOOD, bad, {"message": {}}, {"update_id": True}, {"update_id": "10"}, 5, None)
    clean = intake.sanitize_batch(body)
    assert clean is not None
    assert json.loads(clean)["result"] == [GOOD, {"update_id": 9}]
    assert intake.stats.unparseable == {"message": 2, "none": 4}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"nope",
        b"[]",
        b'{"ok": false}',
        b'{"ok": true}',
        b'{"ok": true, "result": {}}',
        b"[" * 50_000,
    ],
)
def test_an_answer_that_is_no_batch_is_refused(body: bytes) -> None:
    assert UpdateIntake(FakeClock()).sanitize_batch(body) is None


def test_update_ids_and_kinds_are_bounded() -> None:
    assert update_id_of({"update_id": 3}) == 3
    assert update_id_of({"update_id": False}) is None
    assert update_id_of({"update_id": 3.0}) is None
    assert update_id_of([]) is None
    assert update_kind({"update_id": 1, "poll": {}}) == "poll"
    assert update_kind({"update_id": 1, "<script>": {}}) == "unknown"  # never a free label
    assert update_kind({"update_id": 1}) == "none"


def test_the_rate_limited_log_says_how_many_it_suppressed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    logs = RateLimitedLog(logging.getLogger("tests.ratelimited"), clock.monotonic, period=60)
    with caplog.at_level(logging.WARNING, logger="tests.ratelimited"):
        assert logs.warning("refused: %s", "a", key="k", event="e")
        assert not logs.warning("refused: %s", "b", key="k", event="e")
        assert not logs.warning("refused: %s", "c", key="k", event="e")
        assert logs.warning("other", key="other", event="e")  # its own budget
        clock.advance(61)
        assert logs.warning("refused: %s", "d", key="k", event="e")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "refused: a",
        "other",
        "refused: d (2 more like it suppressed in the last 61 s)",
    ]


def test_backoff_doubles_from_one_second_to_a_cap() -> None:
    intake = UpdateIntake(FakeClock())
    waits = []
    for _ in range(8):
        intake.round_trip_failed("HTTP 502")
        waits.append(intake.stats.last_backoff)
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]
    intake.round_trip_failed("HTTP 429", retry_after=45)
    assert intake.stats.last_backoff == 45  # Telegram's retry_after wins when longer
    intake.round_trip_ok()
    assert intake.next_backoff() == 0
