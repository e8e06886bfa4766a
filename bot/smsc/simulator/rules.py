"""SMSC's request rules: credentials and the IP block (errors 2, 4), identical and concurrent
requests (error 9).

Runs on the injected `Clock`, so a test with `FakeClock` moves through the 60 s identical-request
window or the 30 min IP block by calling `clock.advance()`.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping

from bot.clock import Clock
from bot.smsc.simulator.records import FailedLogin

# The limits the SMSC API page states (and the IP block SMSC applies to password guessing).
IDENTICAL_LIMIT = 3  # identical requests allowed per window; the next one gets error 9
IDENTICAL_WINDOW = 60.0
CONCURRENT_LIMIT = 15  # a request arriving with this many already in flight gets error 9
FAILED_LOGIN_LIMIT = 5
FAILED_LOGIN_WINDOW = 30 * 60.0
IP_BLOCK_SECONDS = 30 * 60.0

Identity = tuple[tuple[str, str], ...]


class RequestRules:
    """The account and the bookkeeping behind errors 2, 4 and 9; `SimulatorState` builds on it."""

    def __init__(self, clock: Clock, *, login: str, password: str, apikey: str | None) -> None:
        self.clock = clock
        self.login = login
        self.password = password
        self.apikey = apikey
        self.failed_logins: list[FailedLogin] = []
        self.blocked_until: dict[str, float] = {}  # ip -> monotonic time the block ends
        self.max_concurrent_seen = 0
        self._identical: dict[Identity, deque[float]] = {}
        self._in_flight: Counter[str] = Counter()
        self._in_flight_total = 0

    # --- credentials and the IP block ----------------------------------------------------------

    def is_blocked(self, ip: str) -> bool:
        """Return True while `ip` is inside its 30-minute block (error 4)."""
        until = self.blocked_until.get(ip)
        if until is None:
            return False
        if self.clock.monotonic() < until:
            return True
        del self.blocked_until[ip]
        return False

    def authenticate(self, params: Mapping[str, str], ip: str) -> bool:
        """Check login+psw or apikey; a mismatch is a strike, and 5 in 30 min block the IP.

        A request with no credentials at all fails without a strike: it is not a login attempt.
        """
        apikey = params.get("apikey", "")
        login = params.get("login", "")
        if apikey:
            ok = self.apikey is not None and apikey == self.apikey
        elif login or params.get("psw"):
            ok = login == self.login and params.get("psw", "") == self.password
        else:
            return False
        if not ok:
            now = self.clock.monotonic()
            # Only the last 30 minutes matter for the rule; older failures are forgotten.
            self.failed_logins = [f for f in self.failed_logins if now - f.at < FAILED_LOGIN_WINDOW]
            self.failed_logins.append(FailedLogin(ip, login, now))
            recent = sum(
                1 for f in self.failed_logins if f.ip == ip and now - f.at < FAILED_LOGIN_WINDOW
            )
            # A block lasts as long as the strike window, so strikes that caused one have aged
            # out by the time it ends and never count twice.
            if recent >= FAILED_LOGIN_LIMIT:
                self.blocked_until[ip] = now + IP_BLOCK_SECONDS
        return ok

    # --- identical requests --------------------------------------------------------------------

    @staticmethod
    def identity(params: Mapping[str, str]) -> Identity:
        """Return the key of SMSC's "identical request" rule: all params, sorted by name.

        Every parameter counts (login, psw/apikey, get_list/get_file, cnt, after_id, id, name,
        fmt, charset, ...), whether it came in the query string or the body, and whatever the
        HTTP method: change any value and it is a different request.
        """
        return tuple(sorted(params.items()))

    def admit_identical(self, params: Mapping[str, str]) -> bool:
        """Admit a request unless 3 identical ones were admitted in the last 60 s (error 9).

        Only admitted requests fill the window, so a client that keeps retrying is let in again
        60 s after its earlier requests, not 60 s after its last rejected one.
        """
        now = self.clock.monotonic()
        key = self.identity(params)
        times = self._identical.setdefault(key, deque())
        while times and now - times[0] >= IDENTICAL_WINDOW:
            times.popleft()
        if len(times) >= IDENTICAL_LIMIT:
            return False
        times.append(now)
        if len(self._identical) > 4096:
            self._forget_old_identities(now)
        return True

    def _forget_old_identities(self, now: float) -> None:
        # Keep memory flat under benchmarks that send many distinct requests.
        for key in [k for k, t in self._identical.items() if not t or now - t[-1] >= 60.0]:
            del self._identical[key]

    # --- concurrent requests -------------------------------------------------------------------

    def enter_flight(self, account: str) -> int:
        """Count a request as in flight for `account`; return how many were already in flight."""
        already = self._in_flight[account]
        self._in_flight[account] += 1
        self._in_flight_total += 1
        self.max_concurrent_seen = max(self.max_concurrent_seen, self._in_flight_total)
        return already

    def leave_flight(self, account: str) -> None:
        """Stop counting a finished request."""
        self._in_flight[account] -= 1
        if self._in_flight[account] <= 0:
            del self._in_flight[account]
        self._in_flight_total -= 1

    @property
    def in_flight(self) -> int:
        """How many requests are being handled right now."""
        return self._in_flight_total
