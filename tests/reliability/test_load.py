"""200 calls in flight at once: no deadlock, the DB pool holds, excess load is shed."""

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from arcus.counters.v1 import counters_pb2_grpc
from sqlalchemy import select

from service.auth.keys import Principal, Tenant
from service.counters.servicer import issue_group
from service.db import models
from service.server import MAX_MESSAGE_BYTES, run_server
from tests.support import auth, local_settings
from tests.tools import wait_for

INVOICE = pb.COUNTER_TYPE_INVOICE
pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


def test_200_calls_in_flight_are_served_or_shed_never_stuck(database, key, proof):
    options = local_settings(max_workers=8, max_concurrent_rpcs=100)
    with run_server(database, options) as running:
        # Four clients, each its own connection (an HTTP/2 connection carries at most
        # 100 streams at once, so one client alone could never overload the server).
        channels = [
            grpc.insecure_channel(
                f"127.0.0.1:{running.port}", options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range(4)
        ]
        stubs = [counters_pb2_grpc.CounterServiceStub(c) for c in channels]
        create = pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=0, prefix="I")
        stubs[0].AdvanceCounter(create, metadata=auth(key))
        issue = pb.IssueNumbersRequest(counter_type=INVOICE)
        # Hold the counter's row: every IssueNumbers that gets a worker waits on it.
        with database.connect() as blocker:
            held = blocker.begin()
            blocker.execute(select(models.Counter).with_for_update())
            calls = [
                stubs[i % 4].IssueNumbers.future(issue, metadata=auth(key), timeout=60)
                for i in range(200)
            ]
            # Until every call has reached the server: past the limit, refused at once; the
            # rest held: one worker on a connection waiting for the row, the other workers'
            # calls gathered to issue together once it is free (db/coalesce.py).
            gathered = issue_group(issue, Principal(0, Tenant("acme", "live"), frozenset()))
            wait_for(
                lambda: (
                    sum(c.done() for c in calls) >= 200 - options.max_concurrent_rpcs
                    and database.pool.checkedout() >= 1 + 1
                    and running.coalescer.gathering(gathered) == options.max_workers - 1
                ),
                60,
                "the calls past the limit refused, the workers waiting for the row",
            )
            shed_at_once = sum(c.done() for c in calls)
            in_use = database.pool.checkedout()
            held.commit()
        codes: dict[str, int] = {}
        numbers = []
        for c in calls:
            try:
                numbers.append(c.result().first_value)
                codes["OK"] = codes.get("OK", 0) + 1
            except grpc.RpcError as error:
                codes[error.code().name] = codes.get(error.code().name, 0) + 1
        after = stubs[1].IssueNumbers(issue, metadata=auth(key))
        for opened in channels:
            opened.close()
    shed = codes.get("RESOURCE_EXHAUSTED", 0)
    assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
    assert shed >= 90  # no more than 100 in flight
    assert shed_at_once >= shed  # refused at once, not after a wait
    assert sorted(numbers) == list(range(1, len(numbers) + 1))  # served: no duplicate, no gap
    assert in_use <= options.max_workers + 1  # the workers' connections and the blocker's
    assert after.first_value == len(numbers) + 1  # and it serves on
    proof(
        f"200 concurrent calls from 4 clients: {codes.get('OK', 0)} served in order, {shed} shed "
        f"at once with RESOURCE_EXHAUSTED; DB connections in use at peak {in_use} (8 workers)"
    )


def test_an_oversized_message_is_refused_with_a_clear_status(channel, key, proof):
    huge = pb.AdvanceCounterRequest(
        counter_type=INVOICE, advance_to=1, prefix="x" * (MAX_MESSAGE_BYTES + 1)
    )
    with pytest.raises(grpc.RpcError) as caught:
        counters_pb2_grpc.CounterServiceStub(channel).AdvanceCounter(huge, metadata=auth(key))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in str(caught.value.details())
    size = len(huge.SerializeToString()) // 1024
    proof(f"a {size} KiB request: RESOURCE_EXHAUSTED, {caught.value.details()!r}")
