"""storage.fencing: each term's epoch grows; only the current term's claim lets a send go out."""

from __future__ import annotations

import storage
from storage import NewAlert, due_deliveries, mark_delivered, mark_dropped, mark_retry, record_poll
from storage.fencing import Claim, begin_term, claim_delivery, current_epoch
from tests.fakes.storage_support import T0, at


async def _pending(db: storage.Database, chats: int = 1) -> list[int]:
    for chat in range(1, chats + 1):
        await storage.subscribe(db, chat, None, T0)
    await record_poll(db, tasks=[], alerts=[NewAlert("failed", 7, {"task": 7})], now=T0)
    return [d.delivery_id for d in await due_deliveries(db, at(1))]


async def _claimed_epoch(db: storage.Database, delivery_id: int) -> int | None:
    async with db.execute(
        "SELECT claimed_epoch FROM deliveries WHERE id = ?", (delivery_id,)
    ) as cur:
        row = await cur.fetchone()
    assert row is not None
    return None if row[0] is None else int(row[0])


async def test_every_term_gets_a_strictly_greater_epoch(db: storage.Database) -> None:
    assert await current_epoch(db) == 0  # no term yet (SQLite never begins one)
    first = await begin_term(db, "one", at(1))
    second = await begin_term(db, "two", at(2))
    third = await begin_term(db, "one", at(3))
    assert 0 < first < second < third
    assert await current_epoch(db) == third
    async with db.execute("SELECT replica, since FROM leader_term") as cur:
        rows = list(await cur.fetchall())
    assert len(rows) == 1
    assert rows[0][0] == "one"


async def test_only_the_current_terms_claim_succeeds(db: storage.Database) -> None:
    (delivery,) = await _pending(db)
    old = await begin_term(db, "old", at(1))
    assert await claim_delivery(db, delivery, old) is Claim.CLAIMED
    assert await claim_delivery(db, delivery, old) is Claim.CLAIMED  # its own retry, same term
    new = await begin_term(db, "new", at(2))
    assert await claim_delivery(db, delivery, old) is Claim.SUPERSEDED
    assert await _claimed_epoch(db, delivery) == old  # the stale claim wrote nothing
    assert await claim_delivery(db, delivery, new) is Claim.CLAIMED
    assert await _claimed_epoch(db, delivery) == new
    assert await claim_delivery(db, delivery, new + 1) is Claim.SUPERSEDED  # no future terms


async def test_a_row_claimed_then_cut_off_goes_to_the_next_term_exactly_once(
    db: storage.Database,
) -> None:
    first, second = await _pending(db, chats=2)
    crashed = await begin_term(db, "crashed", at(1))
    assert await claim_delivery(db, first, crashed) is Claim.CLAIMED
    assert await mark_delivered(db, first, at(1), message_id=1)  # sent and recorded
    assert await claim_delivery(db, second, crashed) is Claim.CLAIMED  # then the process died
    successor = await begin_term(db, "successor", at(2))
    due = [d.delivery_id for d in await due_deliveries(db, at(2))]
    assert due == [second]  # the cut-off row is still owed, the recorded one is not
    assert await claim_delivery(db, first, successor) is Claim.SETTLED
    assert await claim_delivery(db, second, successor) is Claim.CLAIMED
    assert await mark_delivered(db, second, at(2), message_id=2)
    # Settled now: neither term can claim it again, whoever asks.
    assert await claim_delivery(db, second, successor) is Claim.SETTLED
    assert await claim_delivery(db, second, crashed) is Claim.SUPERSEDED
    assert await due_deliveries(db, at(3)) == []


async def test_a_retried_or_dropped_row_claims_as_pending_or_settled(
    db: storage.Database,
) -> None:
    first, second = await _pending(db, chats=2)
    epoch = await begin_term(db, "me", at(1))
    assert await mark_retry(db, first, error="Telegram unreachable", next_attempt_at=at(5))
    assert await claim_delivery(db, first, epoch) is Claim.CLAIMED
    assert await mark_dropped(db, second, reason="chat gone", now=at(1))
    assert await claim_delivery(db, second, epoch) is Claim.SETTLED
    assert await claim_delivery(db, 10**12, epoch) is Claim.SETTLED  # no such row: nothing to send
