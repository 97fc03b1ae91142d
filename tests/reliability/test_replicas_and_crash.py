"""Three server processes on one PostgreSQL under 48 client threads; one is killed -9
mid-run and restarted. Nothing issued twice, nothing lost, nothing half-written."""

import functools
import itertools
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from arcus.counters.v1 import counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2 as apb
from arcus.receivables.v1 import advances_pb2_grpc
from sqlalchemy import func, select, text

from service.db import models
from tests.advances import advance_message, item, payload
from tests.postgres import free_port
from tests.processes import ROOT, service_env, wait_until_serving
from tests.reliability.test_hostile_input import invariants_hold
from tests.support import auth
from tests.tools import Threads

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)

JOURNAL = pb.COUNTER_TYPE_JOURNAL  # resets yearly: its calls straddle New Year
HOT = [pb.COUNTER_TYPE_INVOICE, pb.COUNTER_TYPE_ORDER, pb.COUNTER_TYPE_PO, JOURNAL]
# Where each (counter, period) starts: the journal's 2026 starts afresh, from its first issue.
START = {
    (pb.COUNTER_TYPE_INVOICE, ""): 342665,
    (pb.COUNTER_TYPE_ORDER, ""): 1000,
    (pb.COUNTER_TYPE_PO, ""): 0,
    (JOURNAL, "2025"): 900,
    (JOURNAL, "2026"): 0,
}
NEW_YEAR = {"2025-12-31": "2025", "2026-01-01": "2026"}
NAMES = {
    pb.COUNTER_TYPE_INVOICE: "invoice",
    pb.COUNTER_TYPE_ORDER: "order",
    pb.COUNTER_TYPE_PO: "po",
    JOURNAL: "journal",
}
LOAD_SECONDS = 8
THREADS = 48
# The only failures a client may see: a replica killed or restarting, or a call past its
# 5 s deadline under this load. Anything else (INTERNAL, UNKNOWN, ...) is a bug.
ACCEPTABLE_FAILURES = {"UNAVAILABLE", "DEADLINE_EXCEEDED"}


def events_through_the_api(url: str, directory: Path, key: str) -> list[pb.CounterEvent]:
    """Every counter event, page by page, from a fresh replica: what an auditor sees."""
    replica = Replica(url, directory)
    replica.start()
    try:
        with grpc.insecure_channel(replica.address) as channel:
            stub = counters_pb2_grpc.CounterServiceStub(channel)
            trail: list[pb.CounterEvent] = []
            token = ""
            while True:
                page = stub.ListCounterEvents(
                    pb.ListCounterEventsRequest(page_size=1000, page_token=token),
                    metadata=auth(key), timeout=30,
                )  # fmt: skip
                trail += page.events
                token = page.next_page_token
                if not token:
                    return trail
    finally:
        replica.stop()


def audited(trail: list[pb.CounterEvent], kind: int, period: str) -> tuple[list[int], list[int]]:
    """The values issued, and those voided, of one counter by its events."""
    issued: list[int] = []
    voided: list[int] = []
    for e in trail:
        if (e.counter_type, e.period) == (kind, period):
            values = range(e.first_value, e.last_value + 1)
            if e.kind == pb.COUNTER_EVENT_KIND_ISSUED:
                issued += values
            elif e.kind == pb.COUNTER_EVENT_KIND_VOIDED:
                voided += values
    return issued, voided


class Replica:
    def __init__(self, url: str, directory: Path) -> None:
        self.url, self.directory = url, directory
        self.address = f"127.0.0.1:{free_port()}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.directory / f"{self.address.replace(':', '_')}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve"],
            cwd=ROOT, stdout=log, stderr=log,
            env=service_env(DATABASE_URL=self.url, GRPC_LISTEN=self.address, GRPC_MAX_WORKERS="16"),
        )  # fmt: skip
        wait_until_serving(self.address, self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


def test_replicas_under_load_and_a_crash_lose_and_duplicate_nothing(database, key, tmp_path, proof):
    url = database.url.render_as_string(hide_password=False)
    replicas = [Replica(url, tmp_path) for _ in range(3)]
    for replica in replicas:
        replica.start()
    try:
        with grpc.insecure_channel(replicas[0].address) as channel:
            setup = counters_pb2_grpc.CounterServiceStub(channel)
            for kind in [*HOT[:3], pb.COUNTER_TYPE_QUOTE, pb.COUNTER_TYPE_AR_ADVANCE]:
                setup.AdvanceCounter(
                    pb.AdvanceCounterRequest(
                        counter_type=kind, advance_to=START.get((kind, ""), 0), prefix="X"
                    ),
                    metadata=auth(key),
                )
            setup.AdvanceCounter(
                pb.AdvanceCounterRequest(
                    counter_type=JOURNAL, advance_to=START[(JOURNAL, "2025")], period="2025",
                    prefix="JE/{YYYY}/", reset=pb.COUNTER_RESET_YEARLY,
                ),
                metadata=auth(key),
            )  # fmt: skip

        ok_issued: dict[tuple[int, str], list[tuple[int, int]]] = defaultdict(list)
        ok_voided: dict[tuple[int, str], list[int]] = defaultdict(list)
        ok_advanced: list[int] = []
        ok_advances: list[str] = []
        failures: dict[str, int] = defaultdict(int)
        unexpected: list[str] = []  # what the failures outside ACCEPTABLE_FAILURES said
        lock = threading.Lock()
        stop_at = time.monotonic() + LOAD_SECONDS
        targets = itertools.count(10)

        def client(number: int) -> int:
            rng = random.Random(number)
            channels = [grpc.insecure_channel(r.address) for r in replicas]
            counters = [counters_pb2_grpc.CounterServiceStub(c) for c in channels]
            advances = [advances_pb2_grpc.AdvanceServiceStub(c) for c in channels]
            calls = 0
            try:
                for turn in itertools.count(number):
                    if time.monotonic() > stop_at:
                        return calls
                    which = turn % 3  # round robin over the replicas
                    roll = rng.random()
                    calls += 1
                    try:
                        if roll < 0.7:
                            kind = rng.choice(HOT)
                            day = rng.choice(list(NEW_YEAR)) if kind == JOURNAL else ""
                            reply = counters[which].IssueNumbers(
                                pb.IssueNumbersRequest(
                                    counter_type=kind, count=rng.randint(1, 3), document_date=day
                                ),
                                metadata=auth(key), timeout=5,
                            )  # fmt: skip
                            period = NEW_YEAR.get(day, "")
                            assert reply.counter.period == period
                            if kind == JOURNAL:
                                assert reply.numbers[0].startswith(f"JE/{period}/")
                            with lock:
                                ok_issued[(kind, period)].append(
                                    (reply.first_value, reply.last_value)
                                )
                            if rng.random() < 0.1:  # the document failed: void its number
                                counters[which].VoidNumbers(
                                    pb.VoidNumbersRequest(
                                        counter_type=kind, period=period, reason="failed",
                                        first_value=reply.first_value,
                                        last_value=reply.first_value,
                                    ),
                                    metadata=auth(key), timeout=5,
                                )  # fmt: skip
                                with lock:
                                    ok_voided[(kind, period)].append(reply.first_value)
                        elif roll < 0.9:
                            target = next(targets)
                            quote = pb.COUNTER_TYPE_QUOTE
                            counters[which].AdvanceCounter(
                                pb.AdvanceCounterRequest(counter_type=quote, advance_to=target),
                                metadata=auth(key), timeout=5,
                            )  # fmt: skip
                            with lock:
                                ok_advanced.append(target)
                        else:
                            body = payload(items=[item("10.00"), item("20.50"), item("0.01")])
                            created = advances[which].CreateAdvance(
                                apb.CreateAdvanceRequest(advance=advance_message(body)),
                                metadata=auth(key), timeout=5,
                            )  # fmt: skip
                            with lock:
                                ok_advances.append(created.key)
                    except grpc.RpcError as error:
                        with lock:
                            failures[error.code().name] += 1
                            if error.code().name not in ACCEPTABLE_FAILURES:
                                unexpected.append(f"{error.code().name}: {error.details()}")
            finally:
                for c in channels:
                    c.close()
            return calls

        clients = Threads([functools.partial(client, n) for n in range(THREADS)], name="client")
        time.sleep(LOAD_SECONDS / 3)
        replicas[1].kill()  # mid-load, no warning
        time.sleep(1)
        replicas[1].start()  # same port: the clients' channels reconnect
        # Every client ended, within the bound, without raising.
        calls = sum(clients.results(timeout=LOAD_SECONDS + 60))
    finally:
        for replica in replicas:
            replica.stop()

    assert set(failures) <= ACCEPTABLE_FAILURES, (dict(failures), unexpected[:10])
    with database.connect() as conn:
        events = conn.execute(
            select(models.CounterEvent.counter_type, models.CounterEvent.period,
                   models.CounterEvent.action, models.CounterEvent.old_value,
                   models.CounterEvent.new_value)
            .order_by(models.CounterEvent.id)
        ).all()  # fmt: skip
        final = {
            (kind, period): value
            for kind, period, value in conn.execute(
                select(models.Counter.counter_type, models.Counter.period,
                       models.Counter.current_value)
            )
        }  # fmt: skip
        stored_advances = {str(k) for k in conn.execute(select(models.Advance.id)).scalars()}
        numbered = conn.execute(
            select(func.count(func.distinct(models.Advance.advance_number)))
        ).scalar_one()
        # Transactions that committed several callers' issues (coalesced): their events
        # share the inserting transaction's id.
        shared = conn.execute(
            text(
                "SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM"
                " counter_events WHERE action = 'issue' GROUP BY xmin HAVING count(*) > 1) g"
            )
        ).one()

    trail = events_through_the_api(url, tmp_path, key)
    issued_total = voided_total = 0
    for kind, period in START:
        name = f"{NAMES[kind]} {period}".strip()
        # Every issue ever committed, from the audit trail: contiguous from the start.
        ranges = sorted(
            (old + 1, new)
            for t, p, a, old, new in events
            if (t, p) == (NAMES[kind], period) and a == "issue"
        )
        assert ranges, f"{name}: nothing issued"
        expected = START[(kind, period)] + 1
        for first, last in ranges:
            assert first == expected, f"{name}: gap or overlap at {first}, expected {expected}"
            expected = last + 1
        assert (
            final[(NAMES[kind], period)]
            == expected - 1
            == START[(kind, period)] + sum(last - first + 1 for first, last in ranges)
        )
        # Every number a client was told about is among them, and none was told twice.
        told = sorted(ok_issued[(kind, period)])
        seen = [n for first, last in told for n in range(first, last + 1)]
        assert len(seen) == len(set(seen)), f"{name}: a number was issued twice"
        assert set(told) <= set(ranges), f"{name}: an acknowledged issue is not in the database"
        issued_total += len(seen)
        # And from the API alone, as an auditor reads it: every value issued once, every
        # acknowledged void there, voids only of issued values, none twice.
        audited_issued, audited_voided = audited(trail, kind, period)
        assert sorted(audited_issued) == list(
            range(START[(kind, period)] + 1, final[(NAMES[kind], period)] + 1)
        ), name
        assert len(audited_voided) == len(set(audited_voided)), f"{name}: voided twice"
        assert set(audited_voided) <= set(audited_issued), f"{name}: a void of nothing issued"
        assert set(ok_voided[(kind, period)]) <= set(audited_voided), f"{name}: a void lost"
        voided_total += len(audited_voided)
    quote = [(old, new) for t, _, a, old, new in events if t == "quote" and a == "advance"]
    assert all(new > old for old, new in quote)  # never backwards
    assert final[("quote", "")] >= max(ok_advanced, default=0)
    assert set(ok_advances) <= stored_advances  # every acknowledged advance is there
    assert numbered == len(stored_advances)  # each with its own number
    invariants_hold(database)  # and none half-written: lines add up to totals
    assert calls > 500
    assert shared[0] > 0  # the hot counters' calls were coalesced, and all of the above held
    proof(
        f"{calls} calls over 3 replicas by {THREADS} threads, one replica killed -9 and restarted: "
        f"{issued_total} numbers acknowledged, all unique and in the audit trail (the "
        f"yearly journal's on both sides of New Year, each period contiguous); {voided_total} "
        f"voided, and from ListCounterEvents alone every value issued once; "
        f"{len(ok_advances)} advances acknowledged, all stored whole; {shared[1]} issues "
        f"committed in {shared[0]} shared transactions (coalesced); "
        f"failures seen {dict(failures)}"
    )
