"""Shared test setup."""

from __future__ import annotations

import os

# As `python -m bot` does: PTB 22 warns on every RetryAfter unless time periods are timedeltas,
# and warnings are errors in this suite.
os.environ.setdefault("PTB_TIMEDELTA", "true")
