"""What the SMSC budget tests share: the default rules, a list request, a process's budget view."""

from __future__ import annotations

from bot.clock import FakeClock
from bot.smsc.budget import BudgetRules, BudgetStore, SharedBudget
from bot.smsc.etiquette import RequestKey

RULES = BudgetRules()
LIST = RequestKey.for_list(200, None)


def budget(store: BudgetStore, clock: FakeClock) -> SharedBudget:
    """A fresh process's view of the budget in `store`."""
    return SharedBudget(store, clock, RULES)
