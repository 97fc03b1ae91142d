"""Concurrent IssueNumbers on one counter share transactions (db/coalesce.py), and every
guarantee of a lone call holds: no duplicate, no gap, one ISSUED event per call with its
own block and idempotency key, exactly once per key, and a failing call fails alone."""

import random
import threading
from functools import partial

from arcus.counters.v1 import counters_pb2 as pb
from sqlalchemy import text

from tests.tools import Threads

CALLERS = 24
CALLS_EACH = 12


def _advance(counters, key: str, counter_type=pb.COUNTER_TYPE_INVOICE, to: int = 0) -> None:
    counters.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=counter_type, advance_to=to, prefix="INV-"),
        metadata=(("authorization", f"Bearer {key}"),),
    )


def _issued_events(database, entity: str) -> list[tuple]:
    with database.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT first_value, last_value, old_value, new_value, idempotency_key"
                    " FROM counter_events WHERE entity_id = :e AND action = 'issue'"
                    " ORDER BY first_value"
                ),
                {"e": entity},
            )
        )


def test_concurrent_issues_are_gapless_unique_and_audited_call_by_call(
    server, counters, key, database, proof
):
    _advance(counters, key)
    auth = (("authorization", f"Bearer {key}"),)
    calls: list[tuple[int, str | None, pb.IssueNumbersResponse]] = []
    lock = threading.Lock()

    def caller(number: int) -> None:
        chooser = random.Random(number)
        for turn in range(CALLS_EACH):
            count = chooser.randint(1, 5)
            idempotency = f"k-{number}-{turn}" if chooser.random() < 0.5 else None
            metadata = auth + ((("idempotency-key", idempotency),) if idempotency else ())
            request = pb.IssueNumbersRequest(counter_type=pb.COUNTER_TYPE_INVOICE, count=count)
            reply = counters.IssueNumbers(request, metadata=metadata, timeout=30)
            if idempotency and chooser.random() < 0.3:  # a retry: the same answer, replayed
                again, call = counters.IssueNumbers.with_call(
                    request, metadata=metadata, timeout=30
                )
                assert again == reply
                assert ("idempotent-replayed", "true") in call.initial_metadata()
            with lock:
                calls.append((count, idempotency, reply))

    Threads([partial(caller, n) for n in range(CALLERS)]).results(timeout=240)

    total = sum(count for count, _, _ in calls)
    values: list[int] = []
    for count, _, reply in calls:
        assert reply.last_value - reply.first_value + 1 == count
        assert len(reply.numbers) == count
        assert reply.numbers[0] == f"INV-{reply.first_value:07d}"
        assert reply.counter.current_value == reply.last_value  # as if it had been alone
        values.extend(range(reply.first_value, reply.last_value + 1))
    assert sorted(values) == list(range(1, total + 1))  # no duplicate, no gap

    events = _issued_events(database, "acme")
    assert len(events) == len(calls)  # one ISSUED event per call, retries none
    by_block = {(r.first_value, r.last_value): idem for _, idem, r in calls}
    for first, last, old, new, idempotency in events:
        assert (old, new) == (first - 1, last)
        assert by_block[(first, last)] == idempotency

    committed = server.coalescer.members_committed
    proof(
        f"{len(calls)} concurrent issues ({total} numbers) by {CALLERS} callers: gapless, "
        f"unique, one event each; {committed} of them in {server.coalescer.groups_committed}"
        " shared transactions"
    )
    assert server.coalescer.groups_committed > 0


def test_one_idempotency_key_sent_at_once_by_many_issues_once(server, counters, key, database):
    """Calls with the same key never share a group: the first issues, the others wait for
    its record and replay it; other calls on the counter go on around them."""
    _advance(counters, key)
    auth = (("authorization", f"Bearer {key}"),)
    request = pb.IssueNumbersRequest(counter_type=pb.COUNTER_TYPE_INVOICE, count=3)

    def keyed() -> pb.IssueNumbersResponse:
        return counters.IssueNumbers(
            request, metadata=(*auth, ("idempotency-key", "once")), timeout=30
        )

    def plain() -> pb.IssueNumbersResponse:
        return counters.IssueNumbers(request, metadata=auth, timeout=30)

    replies = Threads([keyed if n % 2 else plain for n in range(24)]).results(timeout=120)
    once = {reply.first_value for n, reply in enumerate(replies) if n % 2}
    assert len(once) == 1  # every keyed caller got the same block
    events = _issued_events(database, "acme")
    assert [e for e in events if e[4] == "once"] == [
        (min(once), min(once) + 2, min(once) - 1, min(once) + 2, "once")
    ]
    assert len(events) == 1 + 12  # the keyed block once, and each plain call's
    values = sorted(v for first, last, *_ in events for v in range(first, last + 1))
    assert values == list(range(1, 1 + 3 * 13))
