"""Races on one counter: numbers are never issued twice nor skipped; advancing ends at the max."""

import functools
import random
import threading
import time

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from arcus.counters.v1 import counters_pb2_grpc
from sqlalchemy import func, select

from service.db import models
from tests.support import auth
from tests.tools import Threads

THREADS = 32
INVOICE = pb.COUNTER_TYPE_INVOICE


def run_in_threads(work, threads=THREADS):
    """work(0), ..., work(threads - 1), started together; fails if one raises or hangs."""
    barrier = threading.Barrier(threads, timeout=60)

    def start(index):
        barrier.wait()
        return work(index)

    return Threads([functools.partial(start, i) for i in range(threads)], name="racer").results(600)


def test_32_threads_issuing_200_numbers_each_get_6400_contiguous_numbers(server, key, database):
    target = f"127.0.0.1:{server.port}"
    with grpc.insecure_channel(target) as channel:
        counters_pb2_grpc.CounterServiceStub(channel).AdvanceCounter(
            pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=342665, prefix="INV-"),
            metadata=auth(key),
        )

    def issue_200(_):
        # A channel per thread: separate HTTP/2 connections, really concurrent calls.
        with grpc.insecure_channel(target) as channel:
            stub = counters_pb2_grpc.CounterServiceStub(channel)
            numbers = []
            for _ in range(200):
                response = stub.IssueNumbers(
                    pb.IssueNumbersRequest(counter_type=INVOICE), metadata=auth(key)
                )
                numbers.append((response.first_value, response.numbers[0]))
            return numbers

    issued = [n for per_thread in run_in_threads(issue_200) for n in per_thread]
    values = sorted(v for v, _ in issued)
    assert len(values) == 6400
    assert values == list(range(342666, 342666 + 6400))  # no duplicate, no gap
    assert len({text for _, text in issued}) == 6400
    with database.connect() as conn:
        assert (
            conn.execute(
                select(models.Counter.current_value).where(models.Counter.counter_type == "invoice")
            ).scalar_one()
            == 342665 + 6400
        )
        audited = conn.execute(
            select(func.count()).where(models.CounterEvent.action == "issue")
        ).scalar_one()
    assert audited == 6400


def test_racing_advances_end_at_the_max_and_create_once(server, key, database):
    targets = random.Random(7).sample(range(1, 1_000_000), THREADS)

    def advance(index):
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            return counters_pb2_grpc.CounterServiceStub(channel).AdvanceCounter(
                pb.AdvanceCounterRequest(
                    counter_type=INVOICE, advance_to=targets[index], prefix="INV-"
                ),
                metadata=auth(key),
            )

    responses = run_in_threads(advance)
    assert sum(r.created for r in responses) == 1
    assert max(r.counter.current_value for r in responses) == max(targets)
    with database.connect() as conn:
        final = conn.execute(select(models.Counter.current_value)).scalar_one()
        changes = conn.execute(
            select(models.CounterEvent.old_value, models.CounterEvent.new_value).order_by(
                models.CounterEvent.id
            )
        ).all()
    assert final == max(targets)
    # Every audited change raised the counter: it never went down, even mid-race.
    assert all(old is None or new > old for old, new in changes)
    assert [new for _, new in changes] == sorted(new for _, new in changes)
    assert sum(r.advanced for r in responses) == len(changes)


@pytest.mark.parametrize("batch", [False, True])
def test_many_callers_creating_one_counter_create_it_once(server, key, batch):
    def create(index):
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = counters_pb2_grpc.CounterServiceStub(channel)
            item = pb.AdvanceCounterRequest(
                counter_type=pb.COUNTER_TYPE_PO, advance_to=100, prefix="PO-"
            )
            if batch:
                result = stub.BatchAdvanceCounters(
                    pb.BatchAdvanceCountersRequest(counters=[item]), metadata=auth(key)
                ).results[0]
                assert result.status.code == 0
                return result.response
            return stub.AdvanceCounter(item, metadata=auth(key))

    responses = run_in_threads(create, threads=16)
    assert sum(r.created for r in responses) == 1
    assert sum(r.advanced for r in responses) == 1
    assert {r.counter.current_value for r in responses} == {100}


# Two periods of one series, and a second series, racing across a year boundary.
STREAMS = [("", "2025-12-31"), ("", "2026-01-01"), ("EU", "2025-12-31"), ("EU", "2026-01-01")]


def test_racing_issues_across_periods_and_series_each_stay_contiguous(server, key, database):
    target = f"127.0.0.1:{server.port}"
    with grpc.insecure_channel(target) as channel:
        stub = counters_pb2_grpc.CounterServiceStub(channel)
        for series in ("", "EU"):
            stub.AdvanceCounter(
                pb.AdvanceCounterRequest(
                    counter_type=INVOICE, series=series, advance_to=4711, period="2025",
                    prefix=f"INV{series}/{{YYYY}}/", padding=5, reset=pb.COUNTER_RESET_YEARLY,
                ),
                metadata=auth(key),
            )  # fmt: skip

    def issue_50(index):
        series, day = STREAMS[index % len(STREAMS)]
        with grpc.insecure_channel(target) as channel:
            stub = counters_pb2_grpc.CounterServiceStub(channel)
            runs = []
            for _ in range(50):
                response = stub.IssueNumbers(
                    pb.IssueNumbersRequest(
                        counter_type=INVOICE, series=series, document_date=day, count=2
                    ),
                    metadata=auth(key),
                )
                runs.append((series, response.counter.period, list(response.numbers)))
            return runs

    issued: dict[tuple[str, str], list[str]] = {}
    for series, period, numbers in (r for rs in run_in_threads(issue_50, 16) for r in rs):
        issued.setdefault((series, period), []).extend(numbers)
    # 4 threads per stream, 50 calls of 2 numbers each: 400 numbers per period.
    assert {k: sorted(v) for k, v in issued.items()} == {
        (series, period): [
            f"INV{series}/{period}/{value:05d}" for value in range(first, first + 400)
        ]
        for series in ("", "EU")
        for period, first in (("2025", 4712), ("2026", 1))
    }
    with database.connect() as conn:
        stored = set(
            conn.execute(
                select(models.Counter.series, models.Counter.period, models.Counter.current_value)
            )
        )
    assert stored == {
        ("", "2025", 5111),
        ("", "2026", 400),
        ("EU", "2025", 5111),
        ("EU", "2026", 400),
    }


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_period_or_series_held_by_a_slow_call_never_blocks_the_others(server, key, database):
    """While a transaction holds the 2025 invoice counter, issuing from 2026 or from
    another series goes on; only 2025 itself waits (and its caller's deadline ends that
    wait). PostgreSQL only: SQLite serialises every writer by design."""
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = counters_pb2_grpc.CounterServiceStub(channel)
        for series in ("", "EU"):
            stub.AdvanceCounter(
                pb.AdvanceCounterRequest(
                    counter_type=INVOICE, series=series, advance_to=10, period="2025",
                    prefix="I", reset=pb.COUNTER_RESET_YEARLY,
                ),
                metadata=auth(key),
            )  # fmt: skip
        stub.IssueNumbers(  # starts 2026, and marks the series in use
            pb.IssueNumbersRequest(counter_type=INVOICE, document_date="2026-01-01"),
            metadata=auth(key),
        )

        def issue(series, day, timeout):
            return stub.IssueNumbers(
                pb.IssueNumbersRequest(counter_type=INVOICE, series=series, document_date=day),
                metadata=auth(key),
                timeout=timeout,
            )

        with database.connect() as holder, holder.begin():
            holder.execute(
                select(models.Counter.current_value)
                .where(models.Counter.series == "", models.Counter.period == "2025")
                .with_for_update()
            ).one()
            assert issue("", "2026-06-30", 5).numbers[0] == "I0000002"
            assert issue("EU", "2025-12-31", 5).numbers[0] == "I0000011"
            assert issue("EU", "2026-01-01", 5).numbers[0] == "I0000001"
            with pytest.raises(grpc.RpcError) as caught:
                issue("", "2025-12-31", 1)
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            time.sleep(1)  # the server's own bound on that wait ends it too
        assert issue("", "2025-12-31", 5).numbers[0] == "I0000011"  # nothing was used up


def test_every_number_is_accounted_for_from_the_events_alone(server, key, database, proof):
    """Issuers racing on one counter void some of what they got (their document failed)
    while others issue. Then ListCounterEvents alone, read by the auditor page by page,
    shows every value from the first issued to current_value issued exactly once, and
    voids naming only issued numbers, each once."""
    target = f"127.0.0.1:{server.port}"
    with grpc.insecure_channel(target) as channel:
        counters_pb2_grpc.CounterServiceStub(channel).AdvanceCounter(
            pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=1000, prefix="INV-"),
            metadata=auth(key),
        )

    def work(index):
        rng = random.Random(index)
        with grpc.insecure_channel(target) as channel:
            stub = counters_pb2_grpc.CounterServiceStub(channel)
            voided = 0
            for _ in range(40):
                got = stub.IssueNumbers(
                    pb.IssueNumbersRequest(counter_type=INVOICE, count=rng.randint(1, 3)),
                    metadata=auth(key),
                )
                if rng.random() < 0.3:  # the document failed: its numbers go unused
                    last = rng.randint(got.first_value, got.last_value)
                    stub.VoidNumbers(
                        pb.VoidNumbersRequest(
                            counter_type=INVOICE, first_value=got.first_value, last_value=last,
                            reason=f"worker {index}: document rejected",
                        ),
                        metadata=auth(key),
                    )  # fmt: skip
                    voided += last - got.first_value + 1
            return voided

    voided_by_workers = sum(run_in_threads(work, 12))
    with grpc.insecure_channel(target) as channel:
        stub = counters_pb2_grpc.CounterServiceStub(channel)
        trail: list[pb.CounterEvent] = []
        token = ""
        while True:
            page = stub.ListCounterEvents(
                pb.ListCounterEventsRequest(counter_type=INVOICE, page_token=token, page_size=1000),
                metadata=auth(key),
            )
            trail += page.events
            token = page.next_page_token
            if not token:
                break
        current = stub.GetCounter(
            pb.GetCounterRequest(counter_type=INVOICE), metadata=auth(key)
        ).current_value
    kind = pb.CounterEventKind
    issued = [
        v for e in trail if e.kind == kind.COUNTER_EVENT_KIND_ISSUED
        for v in range(e.first_value, e.last_value + 1)
    ]  # fmt: skip
    voided = [
        v for e in trail if e.kind == kind.COUNTER_EVENT_KIND_VOIDED
        for v in range(e.first_value, e.last_value + 1)
    ]  # fmt: skip
    assert sorted(issued) == list(range(1001, current + 1))  # each once, none missing
    assert len(voided) == len(set(voided)) == voided_by_workers
    assert set(voided) <= set(issued)
    proof(
        f"{len(issued)} numbers issued and {len(voided)} voided by 12 racing callers: from the "
        f"{len(trail)} events alone, 1001..{current} each issued once, every void of an issued "
        "number, none twice"
    )
