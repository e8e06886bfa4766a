"""SMSC's limits, durable: the request budget shared by every process and restart on one database.

`Etiquette` keeps the rules for one process on the monotonic clock. This module keeps the same
facts in a `BudgetStore` (the `smsc_budget` table in production), so that a crash loop, a
redeploy or a second process cannot send what this process would not: at most
`identical_limit` identical requests a minute, nothing during a backoff after errors 9 and 4,
and one login attempt per `auth_retry_interval` after error 2.

Every decision is one atomic `transact` on the store: check the rows, and record the request
BEFORE it is sent, so a crash right after sending still counts it. Request keys are stored as a
digest of the operation and its arguments; credentials are never part of them.

Stored times are wall-clock UTC (processes share no monotonic clock). The store moves a row
stamped in the future to "now", so a step back cannot lock the budget for ever; a step forward
could make old rows look expired, which is why the client also keeps checking its monotonic
`Etiquette`: within a process a step unlocks nothing early.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, Protocol, TypeVar

from bot.clock import Clock
from bot.smsc.etiquette import RequestKey, Throttle
from storage.smsc_budget import BudgetChange, BudgetRecord, Decide, clamp_future

T = TypeVar("T")

ACCOUNT = "*"  # scope of the facts about the whole account
SENT, PROBE, LOGIN_FAILED, LOGIN_OK = "sent", "probe", "login_failed", "login_ok"
BLOCK_IP, BLOCK_AUTH, BLOCK_PAUSE, BLOCK_KEY = (
    "block_ip",
    "block_auth",
    "block_pause",
    "block_rate_limited",
)
_ACCOUNT_BLOCKS = frozenset({BLOCK_IP, BLOCK_AUTH, BLOCK_PAUSE})

Outcome = Literal["ok", "answer", "rate_limited", "ip_blocked", "auth_failed", "no_answer"]


class BudgetStore(Protocol):
    """Where the budget's rows live; `transact` is atomic across every user of the store."""

    async def transact(self, now: datetime, decide: Decide[T]) -> tuple[T, list[int]]:
        """Run `decide` over all rows and apply its change atomically; return (result, new ids)."""
        ...


class MemoryBudgetStore:
    """The budget in memory: for unit tests, and for a client without a database."""

    def __init__(self) -> None:
        self._rows: dict[int, BudgetRecord] = {}
        self._next_id = 1
        self._lock = asyncio.Lock()

    @property
    def rows(self) -> list[BudgetRecord]:
        """Every row, oldest first."""
        return list(self._rows.values())

    async def transact(self, now: datetime, decide: Decide[T]) -> tuple[T, list[int]]:
        """Run `decide` over all rows and apply its change; return (result, new ids)."""
        async with self._lock:
            for moved in clamp_future(list(self._rows.values()), now):
                self._rows[moved.id or 0] = moved
            change = decide(list(self._rows.values()))
            for record in change.replace:
                self._rows[record.id or 0] = record
            for row_id in change.delete:
                self._rows.pop(row_id, None)
            added: list[int] = []
            for record in change.add:
                row_id = self._next_id
                self._next_id += 1
                self._rows[row_id] = BudgetRecord(
                    scope=record.scope,
                    event=record.event,
                    at=record.at,
                    until=record.until,
                    id=row_id,
                )
                added.append(row_id)
            return change.result, added


@dataclass(frozen=True, slots=True)
class BudgetRules:
    """The numbers, from `SmscClientConfig`."""

    identical_limit: int = 2
    window: float = 61.0  # SMSC's 60 s plus our margin
    arrival_bound: float = 30.0  # a request sent this long ago has reached SMSC or never will
    rate_limit_backoff: float = 60.0
    rate_limit_pause: float = 5.0
    ip_block_backoff: float = 1800.0
    auth_retry_interval: float = 600.0
    auth_max_failures: int = 3
    auth_failure_span: float = 1801.0


@dataclass(frozen=True, slots=True)
class Ticket:
    """A request the budget let out: its `sent` row and, before the login is proven, its probe."""

    key: RequestKey
    sent_id: int
    probe_id: int | None


def scope_of(key: RequestKey) -> str:
    """The stored name of a request's identity: a digest, so file names stay out of the table."""
    raw = "\0".join((key.op, key.first, key.second)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()[:32]


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def verdict(
    records: Sequence[BudgetRecord], scope: str, now: datetime, *, probe: bool, rules: BudgetRules
) -> Throttle | None:
    """Why a request of `scope` may not go out at `now`, or None if it may (pure)."""
    window = timedelta(seconds=rules.window)
    blocks = {BLOCK_IP: "ip_blocked", BLOCK_AUTH: "auth", BLOCK_PAUSE: "rate_limited"}
    for event, reason in blocks.items():
        until = max((r.until for r in records if r.event == event), default=None)
        if until is not None and until > now:
            return Throttle(reason, _seconds(until - now))  # type: ignore[arg-type]
    if probe and not _login_known_good(records):
        # Another process is proving the login, or crashed doing so: one attempt at a time.
        for record in records:
            if record.event != PROBE:
                continue
            if record.until > now:
                return Throttle("probe", _seconds(record.until - now))
            # Its answer died with its process: it may have been a failed login.
            free_at = record.at + timedelta(seconds=rules.auth_retry_interval)
            if free_at > now:
                return Throttle("unconfirmed", _seconds(free_at - now))
    key_block = max(
        (r.until for r in records if r.event == BLOCK_KEY and r.scope == scope), default=None
    )
    if key_block is not None and key_block > now:
        return Throttle("rate_limited", _seconds(key_block - now))
    ends = sorted(
        r.until for r in records if r.event == SENT and r.scope == scope and r.until + window > now
    )
    if len(ends) >= rules.identical_limit:
        frees_at = ends[len(ends) - rules.identical_limit] + window
        return Throttle("window", max(_seconds(frees_at - now), 0.001))
    return None


def _login_known_good(records: Sequence[BudgetRecord]) -> bool:
    """Whether the last login verdict any process saw was a success (then probes are moot)."""
    ok = max((r.at for r in records if r.event == LOGIN_OK), default=None)
    failed = max((r.at for r in records if r.event == LOGIN_FAILED), default=None)
    return ok is not None and (failed is None or ok > failed)


def expired(records: Sequence[BudgetRecord], now: datetime, rules: BudgetRules) -> list[int]:
    """Ids of rows that no longer matter at `now` (so the table stays small)."""
    window = timedelta(seconds=rules.window)
    span = timedelta(seconds=rules.auth_failure_span)
    gone: list[int] = []
    for r in records:
        if r.event == SENT:
            dead = r.until + window <= now
        elif r.event in (LOGIN_FAILED, LOGIN_OK, PROBE):
            dead = r.at + span <= now
        else:
            dead = r.until <= now
        if dead and r.id is not None:
            gone.append(r.id)
    return gone


def next_login_at(failures: Sequence[datetime], now: datetime, rules: BudgetRules) -> datetime:
    """When the next login attempt may go, given the failed logins still counted (pure)."""
    span = timedelta(seconds=rules.auth_failure_span)
    recent = sorted(t for t in failures if t + span > now)
    next_at = now + timedelta(seconds=rules.auth_retry_interval)
    if len(recent) >= rules.auth_max_failures:
        # Wait until the oldest counted failure leaves SMSC's 30-minute window.
        next_at = max(next_at, recent[len(recent) - rules.auth_max_failures] + span)
    return next_at


class SharedBudget:
    """The client's side of the durable budget: reserve before sending, settle after."""

    def __init__(self, store: BudgetStore, clock: Clock, rules: BudgetRules) -> None:
        self._store = store
        self._clock = clock
        self._rules = rules
        # Monotonic time each row this process wrote was stamped: for its own rows the budget
        # knows the true age whatever the wall clock did since (a step back would otherwise
        # keep a slot shut for the whole step, a step forward free it early).
        self._own: dict[int, float] = {}

    async def _transact(self, now: datetime, decide: Decide[T]) -> tuple[T, list[int]]:
        """Run `decide` over the rows, this process's own rows aged by the monotonic clock."""
        mono = self._clock.monotonic()

        def aged(records: Sequence[BudgetRecord]) -> BudgetChange[T]:
            present = {r.id for r in records}
            self._own = {i: m for i, m in self._own.items() if i in present}
            fixed: dict[int, BudgetRecord] = {}
            for r in records:
                stamped = self._own.get(r.id or 0)
                if stamped is None:
                    continue
                at = now - timedelta(seconds=mono - stamped)
                if abs(_seconds(at - r.at)) > 1.0:
                    fixed[r.id or 0] = replace(r, at=at, until=at + (r.until - r.at))
            change = decide([fixed.get(r.id or 0, r) for r in records])
            untouched = [
                f
                for i, f in fixed.items()
                if i not in change.delete and all(r.id != i for r in change.replace)
            ]
            return BudgetChange(
                change.result,
                add=change.add,
                replace=[*change.replace, *untouched],
                delete=change.delete,
            )

        result, ids = await self._store.transact(now, aged)
        for row_id in ids:
            self._own[row_id] = mono
        return result, ids

    async def reserve(self, key: RequestKey, *, probe: bool) -> Ticket | Throttle:
        """Take a slot for `key` (recording it as sent) or say why not; `probe`: login unproven."""
        now = self._clock.now()
        scope = scope_of(key)
        rules = self._rules

        def decide(records: Sequence[BudgetRecord]) -> BudgetChange[Throttle | None]:
            gone = expired(records, now, rules)
            live = [r for r in records if r.id not in gone]
            throttle = verdict(live, scope, now, probe=probe, rules=rules)
            if throttle is not None:
                return BudgetChange(throttle, delete=gone)
            bound = now + timedelta(seconds=rules.arrival_bound)
            add = [BudgetRecord(scope, SENT, now, bound)]
            if probe:
                add.append(BudgetRecord(ACCOUNT, PROBE, now, bound))
            return BudgetChange(None, add=add, delete=gone)

        throttle, ids = await self._transact(now, decide)
        if throttle is not None:
            return throttle
        return Ticket(key, ids[0], ids[1] if probe else None)

    async def settle(self, ticket: Ticket, outcome: Outcome) -> float | None:
        """Record how a request ended; return the wait the outcome imposes (errors 2 and 4)."""
        now = self._clock.now()
        scope = scope_of(ticket.key)
        rules = self._rules

        def later(seconds: float) -> datetime:
            return now + timedelta(seconds=seconds)

        def decide(records: Sequence[BudgetRecord]) -> BudgetChange[float | None]:
            delete: set[int] = {ticket.probe_id} if ticket.probe_id is not None else set()
            add: list[BudgetRecord] = []
            wait: float | None = None
            # Ended now: SMSC counted it on arrival, at the latest now.
            replace = [
                BudgetRecord(r.scope, r.event, r.at, now, r.id)
                for r in records
                if r.id == ticket.sent_id and r.until > now
            ]
            if outcome in ("ok", "answer"):
                # The login and the IP work: the account's backoffs and every probe are moot.
                for r in records:
                    proven = r.event in _ACCOUNT_BLOCKS or r.event in (PROBE, LOGIN_OK)
                    if proven or (r.event == BLOCK_KEY and r.scope == scope):
                        delete.add(r.id or 0)
                # Remembered, so a later process's probe lost in a crash is not held against
                # a password known to work (it would otherwise cost 10 minutes of silence).
                add.append(BudgetRecord(ACCOUNT, LOGIN_OK, now, now))
            elif outcome == "rate_limited":
                add.append(BudgetRecord(scope, BLOCK_KEY, now, later(rules.rate_limit_backoff)))
                add.append(BudgetRecord(ACCOUNT, BLOCK_PAUSE, now, later(rules.rate_limit_pause)))
            elif outcome == "ip_blocked":
                add.append(BudgetRecord(ACCOUNT, BLOCK_IP, now, later(rules.ip_block_backoff)))
                wait = rules.ip_block_backoff
            elif outcome == "auth_failed":
                # Failed logins of earlier processes count too, and so do their lost probes.
                failures = [
                    r.at
                    for r in records
                    if r.event == LOGIN_FAILED or (r.event == PROBE and r.id not in delete)
                ]
                next_at = next_login_at([*failures, now], now, rules)
                add.append(BudgetRecord(ACCOUNT, LOGIN_FAILED, now, now))
                add.append(BudgetRecord(ACCOUNT, BLOCK_AUTH, now, next_at))
                wait = _seconds(next_at - now)
            return BudgetChange(wait, add=add, replace=replace, delete=delete)

        wait, _ = await self._transact(now, decide)
        return wait

    async def snapshot(self) -> list[BudgetRecord]:
        """Every live row (for tests and diagnostics)."""
        now = self._clock.now()
        rules = self._rules

        def decide(records: Sequence[BudgetRecord]) -> BudgetChange[list[BudgetRecord]]:
            gone = expired(records, now, rules)
            return BudgetChange([r for r in records if r.id not in gone], delete=gone)

        rows, _ = await self._transact(now, decide)
        return rows
