"""Races on one counter: numbers are never issued twice nor skipped; advancing ends at the max."""

import functools
import random
import threading

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
