"""bot.alerts.model / storage.alert_kinds: the typed alert contract and its rows in the outbox."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import storage
from bot.alerts.fallback import minimal_text
from bot.alerts.model import (
    Alert,
    AlertKind,
    AlertPayloadError,
    CanceledAlert,
    CompletedAlert,
    DeliveryState,
    FailedAlert,
    SmscProblemAlert,
    SmscRecoveredAlert,
    from_outbox,
    from_payload,
    task_alert,
    to_outbox,
    to_payload,
)
from bot.smsc.models import SMSC_TZ, Task, TaskStatus
from tests.fakes.storage_support import T0, outbox_stats

STORAGE = Path(storage.__file__).parent

TASK = Task(
    id=7,
    name="Отчёт <b>&amp;</b>",
    status=TaskStatus.COMPLETED,
    created_raw="25.11.2026 11:00:00",
    time_raw="25.11.2026 12:00:00",
    created=datetime(2026, 11, 25, 11, tzinfo=SMSC_TZ),
    time=datetime(2026, 11, 25, 12, tzinfo=SMSC_TZ),
    file="https://smsc.ru/x.csv",
)
DETECTED = datetime(2026, 11, 25, 9, 0, 30, 123456, tzinfo=UTC)

# Payload columns exactly as the code before the typed model wrote them (watcher.task_payload()
# and {"problem": ...}): databases in service hold these rows.
OLD_TASK_ROW = (
    '{"task": {"id": 7, "name": "Отчёт <b>&amp;</b>", "status": 2, "created_raw": '
    '"25.11.2026 11:00:00", "time_raw": "25.11.2026 12:00:00", "created": '
    '"2026-11-25T11:00:00+03:00", "time": "2026-11-25T12:00:00+03:00", "file": '
    '"https://smsc.ru/x.csv"}, "detected_at": "2026-11-25T09:00:30.123456+00:00"}'
)
OLD_PROBLEM_ROW = '{"problem": "SMSC refused the login (code 2)"}'

EVERY_ALERT: list[Alert] = [
    CompletedAlert(TASK, DETECTED),
    FailedAlert(TASK.model_copy(update={"status": TaskStatus.FAILED}), DETECTED),
    CanceledAlert(TASK.model_copy(update={"status": TaskStatus.CANCELED, "file": ""}), DETECTED),
    SmscProblemAlert("SMSC refused the login (code 2)"),
    SmscRecoveredAlert("SMSC refused the login (code 2)"),
]


def test_every_kind_has_exactly_one_typed_alert() -> None:
    assert sorted(a.kind for a in EVERY_ALERT) == sorted(AlertKind)
    assert [a.task_id for a in EVERY_ALERT] == [7, 7, 7, None, None]
    assert {a.kind for a in EVERY_ALERT if a.kind.is_outcome} == storage.OUTCOME_KINDS


@pytest.mark.parametrize("alert", EVERY_ALERT, ids=lambda a: str(a.kind))
def test_json_round_trip(alert: Alert) -> None:
    text = json.dumps(to_payload(alert), ensure_ascii=False, allow_nan=False)
    back = from_payload(str(alert.kind), json.loads(text))
    assert back == alert
    assert type(back) is type(alert)


@pytest.mark.parametrize("alert", EVERY_ALERT, ids=lambda a: str(a.kind))
async def test_round_trip_through_the_outbox(db: storage.Database, alert: Alert) -> None:
    await storage.subscribe(db, 10, None, T0)
    await storage.record_poll(db, tasks=[], alerts=[to_outbox(alert)], now=T0)
    (delivery,) = await storage.due_deliveries(db, T0)
    assert delivery.kind is alert.kind
    assert delivery.task_id == alert.task_id
    assert from_outbox(delivery) == alert


def test_the_written_shape_is_the_one_stored_rows_have() -> None:
    # A rollback to the code before the model reads new rows, too.
    assert to_payload(CompletedAlert(TASK, DETECTED)) == json.loads(OLD_TASK_ROW)
    assert to_payload(SmscProblemAlert("SMSC refused the login (code 2)")) == json.loads(
        OLD_PROBLEM_ROW
    )
    assert task_alert(AlertKind.FAILED, TASK, DETECTED) == FailedAlert(TASK, DETECTED)


@pytest.mark.parametrize(
    ("kind", "payload", "expected"),
    [
        ("completed", OLD_TASK_ROW, CompletedAlert(TASK, DETECTED)),
        ("failed", OLD_TASK_ROW, FailedAlert(TASK, DETECTED)),
        ("smsc_problem", OLD_PROBLEM_ROW, SmscProblemAlert("SMSC refused the login (code 2)")),
        ("smsc_recovered", OLD_PROBLEM_ROW, SmscRecoveredAlert("SMSC refused the login (code 2)")),
        # Lenient as rendering always was: a problem alert with an odd or missing text.
        ("smsc_recovered", "{}", SmscRecoveredAlert("")),
        ("smsc_problem", '{"problem": 502}', SmscProblemAlert("502")),
    ],
)
async def test_rows_written_before_the_model_read_back(
    db: storage.Database, kind: str, payload: str, expected: Alert
) -> None:
    when = "2026-11-25T09:00:30.123456Z"
    task_id = expected.task_id
    async with db.transaction():  # raw rows, as an older version of the bot wrote them
        await db.execute(
            "INSERT INTO alerts (id, kind, task_id, payload, created_at) VALUES (5, ?, ?, ?, ?)",
            (kind, task_id, payload, when),
        )
        await db.execute(
            "INSERT INTO deliveries (alert_id, chat_id, next_attempt_at, created_at)"
            " VALUES (5, 10, ?, ?)",
            (when, when),
        )
    (delivery,) = await storage.due_deliveries(db, DETECTED)
    alert = from_outbox(delivery)
    assert alert == expected
    assert type(alert) is type(expected)


@pytest.mark.parametrize(
    ("kind", "payload", "cause"),
    [
        ("completed", {}, "KeyError"),
        ("completed", {"task": "not a task", "detected_at": "2026-11-25T09:00:00"}, "Validation"),
        ("failed", {"task": {"id": -1, "name": "x", "status": 4}, "detected_at": "x"}, "Valid"),
        ("canceled", {"task": {"id": 1, "name": "x", "status": 3}}, "KeyError"),
        ("canceled", {"task": {"id": 1, "name": "x", "status": 3}, "detected_at": "soon"}, "Value"),
        ("failed", {"task": {"id": 1, "name": "x", "status": 9}, "detected_at": "x"}, "Valid"),
        ("exploded", {}, "unknown alert kind"),
    ],
)
def test_unreadable_payloads_raise_one_error(
    kind: str, payload: dict[str, Any], cause: str
) -> None:
    with pytest.raises(AlertPayloadError, match=cause):
        from_payload(kind, payload)
    assert issubclass(AlertPayloadError, ValueError)  # delivery's fallback catches ValueError


# --- the SQL says the same as the enums ----------------------------------------------------------


async def _check_values(db: storage.Database, table: str, column: str) -> set[str]:
    """The literals of `column`'s CHECK (... IN (...)) in the migrated schema."""
    rows = await db.execute_fetchall("SELECT sql FROM sqlite_master WHERE name = ?", (table,))
    (sql,) = (str(row[0]) for row in rows)
    match = re.search(rf"CHECK \(\s*{column} IN \(([^)]*)\)\s*\)", sql)
    assert match is not None, f"no CHECK on {table}.{column}"
    return set(re.findall(r"'(\w+)'", match.group(1)))


@pytest.mark.sqlite_only  # reads the schema from sqlite_master; the CHECKs are the same SQL
async def test_the_schema_checks_hold_exactly_the_enums(db: storage.Database) -> None:
    assert await _check_values(db, "alerts", "kind") == set(AlertKind)
    assert await _check_values(db, "deliveries", "state") == set(DeliveryState)
    assert await _check_values(db, "task_outcomes", "kind") == set(storage.OUTCOME_KINDS)


def test_every_literal_in_storage_sql_is_an_enum_value() -> None:
    code = "\n".join(p.read_text(encoding="utf-8") for p in sorted(STORAGE.rglob("*.py")))
    states = set(re.findall(r"\bstate\s*(?:=|<>|!=)\s*'(\w+)'", code))
    kinds = set(re.findall(r"\bkind\s*(?:=|<>|!=)\s*'(\w+)'", code))
    # Non-empty: the patterns still find them (e.g. `WHERE state = 'pending'`, awaiting_files').
    assert states
    assert states <= set(DeliveryState)
    assert kinds
    assert kinds <= set(AlertKind)


async def test_outbox_stats_count_every_delivery_state(db: storage.Database) -> None:
    stats = await outbox_stats(db)
    assert set(stats) == {*DeliveryState, "retrying"}
    assert set(stats.values()) == {0}


def test_the_minimal_fallback_has_its_own_words_for_every_kind() -> None:
    texts = {kind: minimal_text(kind, 5, to_payload(EVERY_ALERT[0])) for kind in AlertKind}
    assert len(set(texts.values())) == len(AlertKind)
    assert "/get 5" in texts[AlertKind.COMPLETED]
    assert texts[AlertKind.SMSC_PROBLEM].startswith("SMSC problem")
