"""Every request's work is bounded and linear in its size: the largest request the server
accepts of each kind, and the largest it must refuse, cost the server little CPU; limits
are checked before the work they bound; SIGTERM finishes within its grace under that load.

(Validation was quadratic in the item count: a 100 KB CreateAdvance of 20,000 invalid items
cost 54 s of CPU, and the 500-item limit was checked only after every item was parsed.)"""

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.counters.v1 import counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2 as apb
from arcus.receivables.v1 import advances_pb2_grpc
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from tests.errors import rich_error
from tests.processes import served
from tests.reliability import largest
from tests.support import auth

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)

# Server CPU one request may cost, whatever it holds (the largest measured well under it).
CPU_BOUND = 2.0  # seconds
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def requests(advance_key: str) -> list[tuple[str, str, Message, str]]:
    """(name, method, request, expected outcome: "OK" or an ErrorInfo reason)."""
    counters, advances = (
        "/arcus.counters.v1.CounterService/",
        "/arcus.receivables.v1.AdvanceService/",
    )
    big = largest.largest_advance()
    full_update = apb.Advance(key=advance_key, items=big.items)
    all_paths = FieldMask(paths=["description"] * 100)
    items_mask = FieldMask(paths=["items"] * 100)
    probe = apb.Advance(items=[apb.AdvanceLine(txn_amount="x")] * 20_000)
    return [
        ("largest CreateAdvance (500 lines, 1 MiB)", advances + "CreateAdvance",
         apb.CreateAdvanceRequest(advance=big), "OK"),
        ("CreateAdvance of 500 lines, every field wrong", advances + "CreateAdvance",
         apb.CreateAdvanceRequest(advance=largest.most_violations()), "INVALID_FIELDS"),
        ("CreateAdvance of 838,656 items (4 MiB)", advances + "CreateAdvance",
         apb.CreateAdvanceRequest(advance=largest.flood_of_items()),
         "INVALID_FIELDS"),  # TOO_MANY_ITEMS and ADVANCE_TOO_LARGE
        ("the probe's 100 KB CreateAdvance of 20,000 invalid items", advances + "CreateAdvance",
         apb.CreateAdvanceRequest(advance=probe),
         "TOO_MANY_ITEMS"),
        ("UpdateAdvance replacing 500 lines, 100 mask paths", advances + "UpdateAdvance",
         apb.UpdateAdvanceRequest(advance=full_update, update_mask=items_mask),
         "OK"),
        ("UpdateAdvance with 100 paths of 100 characters", advances + "UpdateAdvance",
         apb.UpdateAdvanceRequest(advance=apb.Advance(key=advance_key),
                                  update_mask=FieldMask(paths=["x" * 100] * 100)),
         "FIELD_MASK_PATH_UNKNOWN"),
        ("UpdateAdvance with a mask of 4 MiB of paths", advances + "UpdateAdvance",
         apb.UpdateAdvanceRequest(advance=apb.Advance(key=advance_key),
                                  update_mask=largest.flood_of_mask_paths()),
         "FIELD_MASK_TOO_LONG"),
        ("UpdateAdvance of a 1 MiB description", advances + "UpdateAdvance",
         apb.UpdateAdvanceRequest(advance=apb.Advance(key=advance_key, description="x" * 2**20),
                                  update_mask=all_paths),
         "ADVANCE_TOO_LARGE"),
        ("GetAdvance of a key of 4 MiB of digits", advances + "GetAdvance",
         apb.GetAdvanceRequest(key="9" * (4 * 2**20 - 64)), "KEY_INVALID"),
        ("ListAdvances FULL, page size 1000", advances + "ListAdvances",
         apb.ListAdvancesRequest(page_size=1000, view=apb.ADVANCE_VIEW_FULL), "OK"),
        ("largest BatchCreateAdvances (100 advances, 10,000 lines, 2 MiB)",
         advances + "BatchCreateAdvances", largest.largest_advance_batch(), "OK"),
        ("BatchCreateAdvances of 4 MiB", advances + "BatchCreateAdvances",
         largest.flood_of_advances(), "BATCH_TOO_LARGE"),
        ("BatchCreateAdvances of 10,002 lines", advances + "BatchCreateAdvances",
         largest.batch_of_too_many_items(), "TOO_MANY_ITEMS"),
        ("largest BatchAdvanceCounters (50 items)", counters + "BatchAdvanceCounters",
         largest.largest_batch(), "OK"),
        ("BatchAdvanceCounters of 4 MiB of items", counters + "BatchAdvanceCounters",
         largest.flood_of_counters(), "BATCH_SIZE_OUT_OF_RANGE"),
        ("IssueNumbers of 1000", counters + "IssueNumbers",
         cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, count=1000), "OK"),
    ]  # fmt: skip


def call(channel: grpc.Channel, method: str, request: object, key: str) -> str:
    try:
        channel.unary_unary(method)(request.SerializeToString(), metadata=auth(key), timeout=60)  # type: ignore[attr-defined]
        return "OK"
    except grpc.RpcError as error:
        return rich_error(error).info.reason


def prepared(address: str, key: str) -> str:
    """An invoice counter, and one advance to update; its key."""
    with grpc.insecure_channel(address) as channel:
        counters_pb2_grpc.CounterServiceStub(channel).AdvanceCounter(
            cpb.AdvanceCounterRequest(
                counter_type=cpb.COUNTER_TYPE_INVOICE, advance_to=0, prefix="I"
            ),
            metadata=auth(key),
        )
        created = advances_pb2_grpc.AdvanceServiceStub(channel).CreateAdvance(
            apb.CreateAdvanceRequest(advance=largest.largest_advance()), metadata=auth(key)
        )
    return created.key


def test_the_largest_requests_of_each_kind_cost_bounded_cpu(database, key, tmp_path, proof):
    url = database.url.render_as_string(hide_password=False)
    with served(tmp_path, DATABASE_URL=url) as server:
        advance_key = prepared(server.address, key)
        costs = []
        with grpc.insecure_channel(
            server.address, options=[("grpc.max_receive_message_length", 8 * 2**20)]
        ) as channel:
            for name, method, request, expected in requests(advance_key):
                before = cpu_seconds(server.process.pid)
                outcome = call(channel, method, request, key)
                cost = cpu_seconds(server.process.pid) - before
                assert outcome == expected, name
                costs.append((cost, name))
    for cost, name in costs:
        assert cost <= CPU_BOUND, f"{name}: {cost:.2f}s of server CPU"
    worst = max(costs)
    proof(
        f"{len(costs)} requests at the limits (each the largest accepted or refused of its "
        f"kind): server CPU at most {worst[0]:.2f}s ({worst[1]}); bound {CPU_BOUND}s"
    )


def test_sigterm_finishes_within_its_grace_under_the_largest_requests(
    database, key, tmp_path, proof
):
    url = database.url.render_as_string(hide_password=False)
    grace = 3.0
    with served(tmp_path, DATABASE_URL=url, GRPC_GRACE_SECONDS=str(grace)) as server:
        advance_key = prepared(server.address, key)
        load = requests(advance_key)
        stop_at = time.monotonic() + 60
        answered = threading.Semaphore(0)

        def client(number: int) -> dict[str, int]:
            seen: dict[str, int] = {}
            with grpc.insecure_channel(server.address) as channel:
                turn = number
                while time.monotonic() < stop_at and server.process.poll() is None:
                    _, method, request, _ = load[turn % len(load)]
                    try:
                        # No serializers: bytes in, bytes out.
                        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                            method
                        )
                        call(request.SerializeToString(), metadata=auth(key), timeout=30)
                        code = "OK"
                    except grpc.RpcError as error:
                        code = error.code().name
                    seen[code] = seen.get(code, 0) + 1
                    answered.release()
                    turn += 1
            return seen

        with ThreadPoolExecutor(8) as pool:
            clients = [pool.submit(client, n) for n in range(8)]
            for _ in range(2 * len(load)):  # the load is on: calls of every kind answered
                assert answered.acquire(timeout=60)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(timeout=60)
            exited = time.monotonic() - signalled
            seen: dict[str, int] = {}
            for future in clients:
                for code, count in future.result(timeout=60).items():
                    seen[code] = seen.get(code, 0) + count
    assert server.process.returncode == 0
    assert exited <= grace + 3, f"exited {exited:.1f}s after SIGTERM, grace {grace}s"
    assert set(seen) <= {
        "OK",
        "INVALID_ARGUMENT",
        "FAILED_PRECONDITION",
        "UNAVAILABLE",
        "CANCELLED",
    }, seen
    proof(
        f"SIGTERM under 8 callers of the largest requests: exited {exited:.1f}s later "
        f"(grace {grace:g}s); calls seen {seen}"
    )
