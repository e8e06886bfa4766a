"""The outbox's vocabulary: which alerts exist and which states a delivery goes through.

Standard library only, so both sides can import it without a cycle: `storage/` (which imports
nothing from `bot/`) stores these values, and `bot.alerts.model` builds the typed payloads on
them. The migrations' CHECK constraints hold the same literals; tests/unit/test_alert_model.py
checks them (and every literal in storage's SQL) against these enums.

The SQL keeps the states as literals (`WHERE state = 'pending'`), word for word the predicates
of the partial indexes: a planner given a bound parameter instead (PostgreSQL's generic plans for
prepared statements) cannot prove such an index applies.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["OUTCOME_KINDS", "AlertKind", "DeliveryState"]


class AlertKind(StrEnum):
    """What an alert announces; the value is what the `alerts.kind` column holds."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    SMSC_PROBLEM = "smsc_problem"
    SMSC_RECOVERED = "smsc_recovered"

    @property
    def is_outcome(self) -> bool:
        """True for a task's outcome (the kinds `task_outcomes` records), not SMSC's health."""
        return self in OUTCOME_KINDS


# A task's final status as an alert kind: also the kinds of the `task_outcomes` table.
OUTCOME_KINDS: frozenset[AlertKind] = frozenset(
    {AlertKind.COMPLETED, AlertKind.FAILED, AlertKind.CANCELED}
)


class DeliveryState(StrEnum):
    """Where one alert's delivery to one chat is: pending, then delivered or dropped."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DROPPED = "dropped"
