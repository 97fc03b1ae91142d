"""make bench: the service on PostgreSQL against baselines measured in the same run.

    python -m tests.bench [--quick] [--smoke] [--seconds S]

Starts a throwaway PostgreSQL cluster (durable settings: fsync and synchronous commit
on), the service, no-op gRPC servers and the bare CounterService servers (grpcio and
psycopg only, see bare.py) as separate processes, drives each with an asyncio gRPC client
at several concurrencies, and prints one table. Every QPS figure stands next to the no-op
server's, measured minutes apart on the same machine; the service's calls that have a
bare counterpart are measured in alternating slices with it, and compared in a second
table.
"""

import argparse
import asyncio
import itertools
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.counters.v1 import counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2 as apb
from arcus.receivables.v1 import advances_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.advances.service import PAGE_KIND as ADVANCES_PAGE_KIND
from service.auth.keys import Tenant
from service.auth.store import KeyStore
from service.config import Settings
from service.db.engine import make_engine
from service.db.ids import new_id
from service.db.migrate import upgrade
from service.db.secrets import PAGE_TOKENS, load_secret
from service.db.uow import UnitOfWork
from service.pagination import PageTokens
from service.server import all_scopes
from tests import postgres
from tests.advances import advance_message, item, payload
from tests.support import counter_type_of

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    scenario: str
    concurrency: int
    calls: int
    seconds: float
    latencies: list[float]
    errors: int = 0

    @property
    def qps(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


async def drive(
    call: Callable[[int], Awaitable[object]], concurrency: int, seconds: float, name: str
) -> Result:
    """`concurrency` callers in a loop for `seconds`; each call's latency recorded."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def caller(number: int) -> None:
        nonlocal errors
        turn = 0
        while time.perf_counter() < stop:
            started = time.perf_counter()
            try:
                await call(number * 1_000_000 + turn)
                latencies.append(time.perf_counter() - started)
            except grpc.aio.AioRpcError:
                errors += 1
            turn += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller(n) for n in range(concurrency)))
    return Result(
        name, concurrency, len(latencies), time.perf_counter() - started, latencies, errors
    )


async def batch_speedup(
    single: Callable[[int], Awaitable[object]],
    batch: Callable[[int], Awaitable[object]],
    size: int,
    concurrency: int,
    seconds: float,
    pairs: int = 3,
) -> tuple[float, float, float]:
    """How many times as many items a second `batch` (of `size`) creates as `single`,
    measured in alternating slices so that both meet the same moments of a shared,
    noisy machine: the ratio of the totals, and the lowest and highest of the pairs."""
    totals = {"single": [0, 0.0], "batch": [0, 0.0]}
    ratios = []
    for _ in range(pairs):
        one = await drive(single, concurrency, seconds, "single")
        many = await drive(batch, concurrency, seconds, "batch")
        for name, result, items in (("single", one, 1), ("batch", many, size)):
            totals[name][0] += result.calls * items
            totals[name][1] += result.seconds
        ratios.append(many.qps * size / one.qps if one.qps else 0.0)
    rate = {name: calls / elapsed if elapsed else 0.0 for name, (calls, elapsed) in totals.items()}
    return rate["batch"] / rate["single"] if rate["single"] else 0.0, min(ratios), max(ratios)


def merged(name: str, parts: list[Result]) -> Result:
    """The slices of one scenario as one measurement."""
    return Result(
        name,
        parts[0].concurrency,
        sum(p.calls for p in parts),
        sum(p.seconds for p in parts),
        [latency for p in parts for latency in p.latencies],
        sum(p.errors for p in parts),
    )


Call = Callable[[int], Awaitable[object]]


async def interleave(
    scenarios: list[tuple[str, Call]],
    concurrency: int,
    seconds: float,
    slices: int,
    on_slice: Callable[[], None],
) -> list[Result]:
    """Each scenario for `seconds` in all, in `slices` slices taken in turn (the order
    rotating each round), so that a service call and the baseline it is compared with
    meet the same moments of a shared, noisy machine (see batch_speedup). `on_slice` runs
    before each slice."""
    parts: dict[str, list[Result]] = {name: [] for name, _ in scenarios}
    for turn in range(slices):
        shift = turn % len(scenarios)
        for name, call in scenarios[shift:] + scenarios[:shift]:
            on_slice()
            parts[name].append(await drive(call, concurrency, seconds / slices, name))
    return [merged(name, parts[name]) for name, _ in scenarios]


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


# The probe retries every 10 ms: gRPC's default reconnect backoff (1 s and more after
# "connection refused") would measure the probe, not the server.
PROBE_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 10),
    ("grpc.min_reconnect_backoff_ms", 10),
    ("grpc.max_reconnect_backoff_ms", 10),
]


def wait_serving(address: str, timeout: float = 30) -> float:
    """Seconds from now until health says SERVING (call right after launching)."""
    started = time.perf_counter()
    with grpc.insecure_channel(address, options=PROBE_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.perf_counter() - started < timeout:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == 1:
                    return time.perf_counter() - started
            except grpc.RpcError:
                time.sleep(0.01)
    raise TimeoutError(address)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# IssueNumbers' statement on PostgreSQL: the increment and its audit row at once.
HOT_ISSUE = """
    WITH issued AS (
        UPDATE counters SET current_value = current_value + 1, update_time = now()
        WHERE entity_id = 'bench' AND mode = 'live' AND counter_type = 'journal'
            AND series = '' AND period = ''
        RETURNING counter_type, current_value, update_time
    ), audit AS (
        INSERT INTO counter_events (event_key, entity_id, mode, counter_type, action,
            old_value, new_value, first_value, last_value, api_key_id, create_time)
        SELECT %(event)s, 'bench', 'live', counter_type, 'issue', current_value - 1,
            current_value, current_value, current_value, NULL, update_time
        FROM issued
    )
    SELECT current_value FROM issued
"""
# The hot counter's issues, of one entity: the service's ("bench"), or the bare servers'.
ISSUED = """
    SELECT old_value, new_value FROM counter_events
    WHERE entity_id = %(entity)s AND action = 'issue' AND counter_type = 'invoice'
    ORDER BY old_value
"""


def sql_baseline(url: str, concurrency: int, seconds: float) -> Result:
    """IssueNumbers' own SQL (the increment and its audit row in one statement, in a
    transaction) straight from psycopg: the database's ceiling for the hot path."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker() -> None:
        with psycopg.connect(dsn) as conn:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                with conn.transaction():
                    conn.execute(HOT_ISSUE, {"event": new_id()}).fetchone()
                with lock:
                    latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Result(
        "SQL baseline: IssueNumbers' SQL",
        concurrency,
        len(latencies),
        time.perf_counter() - began,
        latencies,
    )


# The scenarios compared with a bare baseline (see bare.py), and those baselines.
ADVANCE = "AdvanceCounter, spread counters"
HOT = "IssueNumbers, one hot counter"
CREATE = "CreateAdvance, 3 lines, numbered"
BARE_ADVANCE = "bare: AdvanceCounter, spread counters"
BARE_ISSUE = "bare: IssueNumbers, one hot counter, one statement a call"
BARE_COALESCED = "bare: IssueNumbers, one hot counter, coalesced"
BARE_DUTIES = "bare: AdvanceCounter, on the service's server type, with its per-call duties"
# The other design: the duties too, on the event loop with the async driver (bare.py --async).
BARE_ASYNC = "bare: AdvanceCounter, async handlers and driver, with the duties"
BARE_ASYNC_ISSUE = "bare: IssueNumbers, one hot counter, coalesced, async, with the duties"
# (service scenario, bare baseline): each pair measured in alternating slices.
VERSUS = [
    (ADVANCE, BARE_ADVANCE),
    (BARE_DUTIES, BARE_ADVANCE),
    (ADVANCE, BARE_DUTIES),
    (HOT, BARE_ISSUE),
    (HOT, BARE_COALESCED),
    (CREATE, BARE_ADVANCE),
    (BARE_COALESCED, BARE_ISSUE),
    (BARE_ASYNC, BARE_ADVANCE),
    (BARE_ASYNC_ISSUE, BARE_ISSUE),
]
BARE_ENTITY = "bare"  # the bare servers' counters: none of the service's
# AdvanceCounter's values: each slice starts above every value before it (callers' values
# are caller * 1,000,000 + turn), so each slice writes as the first did.
ADVANCE_STEP = 10**8


async def run(seconds: float, concurrencies: list[int], list_rows: int, workers: int) -> list[str]:
    rows: list[str] = []
    bin_dir = postgres.find_bin_dir()
    if bin_dir is None:
        raise SystemExit("make bench needs PostgreSQL's server binaries")
    cluster = postgres.start_cluster(bin_dir, durable=True)
    try:
        engine = make_engine(cluster.url, pool_size=2)
        upgrade(engine)
        keys = KeyStore(UnitOfWork(engine))
        _, key = keys.create("bench", "live", sorted(all_scopes()))
        metadata = (("authorization", f"Bearer {key}"),)
        _, bulk_key = keys.create("bulk", "live", sorted(all_scopes()))
        bare_record, bare_key = keys.create(BARE_ENTITY, "live", sorted(all_scopes()))
        env = {**os.environ, "DATABASE_URL": cluster.url, "GRPC_MAX_WORKERS": str(workers)}
        service_address = f"127.0.0.1:{postgres.free_port()}"
        noop_address = f"127.0.0.1:{postgres.free_port()}"
        service = start(
            [sys.executable, "-m", "service", "serve"], {**env, "GRPC_LISTEN": service_address}
        )
        startup = wait_serving(service_address)  # from launch to SERVING
        noop = start([sys.executable, "-m", "tests.bench.noop", noop_address, str(workers)], env)
        # The other server type, for choosing between them by measurement.
        aio_address = f"127.0.0.1:{postgres.free_port()}"
        aio_noop = start([sys.executable, "-m", "tests.bench.noop", aio_address, "0", "--aio"], env)
        # The service's own server type: grpc.aio, handlers in a thread pool.
        pool_address = f"127.0.0.1:{postgres.free_port()}"
        pool_noop = start(
            [sys.executable, "-m", "tests.bench.noop", pool_address, str(workers), "--aio-pool"],
            env,
        )
        # The bare CounterService servers: the same SQL, one statement a call; and
        # concurrent issues on one counter coalesced into one statement.
        dsn = cluster.url.replace("postgresql+psycopg://", "postgresql://")
        bare_command = [sys.executable, "-m", "tests.bench.bare"]
        bare_args = [str(workers), dsn, BARE_ENTITY, str(bare_record.id)]
        bare_address = f"127.0.0.1:{postgres.free_port()}"
        bare = start([*bare_command, bare_address, *bare_args], env)
        coalescing_address = f"127.0.0.1:{postgres.free_port()}"
        coalescing = start([*bare_command, coalescing_address, *bare_args, "--coalesce"], env)
        # The most the service could reach: bare, with what the service does on every call.
        dutiful_address = f"127.0.0.1:{postgres.free_port()}"
        dutiful = start([*bare_command, dutiful_address, *bare_args, "--duties"], env)
        # And what a rewrite of the request path for the event loop could reach.
        async_address = f"127.0.0.1:{postgres.free_port()}"
        asynchronous = start([*bare_command, async_address, *bare_args, "--async"], env)
        addresses = (
            noop_address, aio_address, pool_address, bare_address, coalescing_address,
            dutiful_address, async_address,
        )  # fmt: skip
        for address in addresses:
            with grpc.insecure_channel(address) as probe:
                grpc.channel_ready_future(probe).result(timeout=30)
        try:
            async with (
                grpc.aio.insecure_channel(service_address) as channel,
                grpc.aio.insecure_channel(noop_address) as noop_channel,
                grpc.aio.insecure_channel(aio_address) as aio_channel,
                grpc.aio.insecure_channel(pool_address) as pool_channel,
                grpc.aio.insecure_channel(bare_address) as bare_channel,
                grpc.aio.insecure_channel(coalescing_address) as coalescing_channel,
                grpc.aio.insecure_channel(dutiful_address) as dutiful_channel,
                grpc.aio.insecure_channel(async_address) as async_channel,
            ):
                counters = counters_pb2_grpc.CounterServiceStub(channel)
                advances = advances_pb2_grpc.AdvanceServiceStub(channel)
                bare_counters = counters_pb2_grpc.CounterServiceStub(bare_channel)
                coalescing_counters = counters_pb2_grpc.CounterServiceStub(coalescing_channel)
                dutiful_counters = counters_pb2_grpc.CounterServiceStub(dutiful_channel)
                async_counters = counters_pb2_grpc.CounterServiceStub(async_channel)
                noop_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = (
                    noop_channel.unary_unary("/bench.Noop/Call")
                )
                aio_noop_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = (
                    aio_channel.unary_unary("/bench.Noop/Call")
                )
                pool_noop_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = (
                    pool_channel.unary_unary("/bench.Noop/Call")
                )
                # The counters of both entities, made by the service alike.
                bare_metadata = (("authorization", f"Bearer {bare_key}"),)
                for kind in range(1, 23):
                    for made_for in (metadata, bare_metadata):
                        await counters.AdvanceCounter(
                            cpb.AdvanceCounterRequest(
                                counter_type=counter_type_of(kind), advance_to=0, prefix="B"
                            ),
                            metadata=made_for,
                        )
                batch = cpb.BatchAdvanceCountersRequest(
                    counters=[
                        cpb.AdvanceCounterRequest(
                            counter_type=counter_type_of(1 + i % 21), advance_to=1
                        )
                        for i in range(50)
                    ]
                )
                create = apb.CreateAdvanceRequest(
                    advance=advance_message(
                        payload(items=[item("10.00"), item("20.00"), item("30.00")])
                    )
                )
                rising = [0]

                def next_slice() -> None:
                    rising[0] += ADVANCE_STEP

                async def noop_once(n: int) -> object:
                    return await noop_call(b"")

                async def aio_noop_once(n: int) -> object:
                    return await aio_noop_call(b"")

                async def pool_noop_once(n: int) -> object:
                    return await pool_noop_call(b"")

                def spread(n: int) -> cpb.AdvanceCounterRequest:
                    return cpb.AdvanceCounterRequest(
                        counter_type=counter_type_of(1 + n % 21), advance_to=rising[0] + n
                    )

                async def advance_spread(n: int) -> object:
                    return await counters.AdvanceCounter(spread(n), metadata=metadata)

                # The bare servers get the same requests and the same key, which they ignore.
                async def bare_advance_spread(n: int) -> object:
                    return await bare_counters.AdvanceCounter(spread(n), metadata=metadata)

                async def dutiful_advance_spread(n: int) -> object:
                    return await dutiful_counters.AdvanceCounter(spread(n), metadata=metadata)

                async def async_advance_spread(n: int) -> object:
                    return await async_counters.AdvanceCounter(spread(n), metadata=metadata)

                hot = cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE)

                async def issue_hot(n: int) -> object:
                    return await counters.IssueNumbers(hot, metadata=metadata)

                async def bare_issue_hot(n: int) -> object:
                    return await bare_counters.IssueNumbers(hot, metadata=metadata)

                async def coalesced_issue_hot(n: int) -> object:
                    return await coalescing_counters.IssueNumbers(hot, metadata=metadata)

                async def async_issue_hot(n: int) -> object:
                    return await async_counters.IssueNumbers(hot, metadata=metadata)

                async def issue_replay(n: int) -> object:
                    keyed = (*metadata, ("idempotency-key", "bench-replay"))
                    request = cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_ORDER)
                    return await counters.IssueNumbers(request, metadata=keyed)

                async def batch_50(n: int) -> object:
                    return await counters.BatchAdvanceCounters(batch, metadata=metadata)

                async def create_advance(n: int) -> object:
                    return await advances.CreateAdvance(create, metadata=metadata)

                create_100 = apb.BatchCreateAdvancesRequest(requests=[create] * 100)

                async def batch_create_100(n: int) -> object:
                    return await advances.BatchCreateAdvances(create_100, metadata=metadata)

                await issue_replay(0)  # recorded once; every later call replays it
                checks: list[Check] = []
                versus: list[str] = []
                # Slices of a second or two (2 to 5 a scenario).
                slices = max(1, min(5, int(seconds)))
                for concurrency in concurrencies:
                    base = await drive(noop_once, concurrency, seconds, "no-op baseline")
                    noops = [
                        await drive(
                            aio_noop_once, concurrency, seconds, "no-op baseline, grpc.aio server"
                        ),
                        await drive(
                            pool_noop_once,
                            concurrency,
                            seconds,
                            "no-op baseline, grpc.aio + thread pool (the service's type)",
                        ),
                    ]
                    advancing = await interleave(
                        [
                            (ADVANCE, advance_spread),
                            (BARE_ADVANCE, bare_advance_spread),
                            (BARE_DUTIES, dutiful_advance_spread),
                            (BARE_ASYNC, async_advance_spread),
                            (CREATE, create_advance),
                        ],
                        concurrency,
                        seconds,
                        slices,
                        next_slice,
                    )
                    issuing = await interleave(
                        [
                            (HOT, issue_hot),
                            (BARE_ISSUE, bare_issue_hot),
                            (BARE_COALESCED, coalesced_issue_hot),
                            (BARE_ASYNC_ISSUE, async_issue_hot),
                        ],
                        concurrency,
                        seconds,
                        slices,
                        next_slice,
                    )
                    others = [
                        await drive(
                            issue_replay, concurrency, seconds, "IssueNumbers, idempotent replay"
                        ),
                        await drive(
                            batch_50, concurrency, seconds, "BatchAdvanceCounters, 50 items"
                        ),
                        await drive(
                            batch_create_100,
                            concurrency,
                            seconds,
                            "BatchCreateAdvances, 100 of those",
                        ),
                    ]
                    sql = await asyncio.to_thread(sql_baseline, cluster.url, concurrency, seconds)
                    speedup = await batch_speedup(
                        create_advance, batch_create_100, 100, concurrency, max(1.0, seconds / 2)
                    )
                    by_name = {r.scenario: r for r in [*noops, *advancing, *issuing, *others]}
                    checks += target_checks(base, by_name, speedup)
                    shown = [
                        "no-op baseline, grpc.aio server",
                        "no-op baseline, grpc.aio + thread pool (the service's type)",
                        ADVANCE,
                        HOT,
                        "IssueNumbers, idempotent replay",
                        "BatchAdvanceCounters, 50 items",
                        CREATE,
                        "BatchCreateAdvances, 100 of those",
                    ]
                    bare_names = (
                        BARE_ADVANCE, BARE_DUTIES, BARE_ASYNC, BARE_ISSUE, BARE_COALESCED,
                        BARE_ASYNC_ISSUE,
                    )  # fmt: skip
                    bares = [by_name[name] for name in bare_names]
                    for r in [base, *(by_name[name] for name in shown), sql, *bares]:
                        ratio = r.qps / base.qps if base.qps else 0
                        p50, p99 = r.percentile(50), r.percentile(99)
                        rows.append(
                            f"| {r.scenario} | {r.concurrency} | {r.qps:,.0f} | {p50:.1f} | "
                            f"{p99:.1f} | {ratio:.2f} | {r.errors} |"
                        )
                    for measured, baseline in VERSUS:
                        one, other = by_name[measured], by_name[baseline]
                        versus.append(
                            f"| {measured} | {concurrency} | {one.qps:,.0f} | {baseline} | "
                            f"{other.qps:,.0f} | {one.qps / other.qps if other.qps else 0:.2f} |"
                        )
                bulk = (("authorization", f"Bearer {bulk_key}"),)
                pages, filled = await list_pages(advances, bulk, cluster.url, list_rows, seconds)
                for r in pages:
                    rows.append(
                        f"| {r.scenario} | 1 | {r.qps:,.0f} | {r.percentile(50):.1f} | "
                        f"{r.percentile(99):.1f} | | {r.errors} |"
                    )
            rows.append(
                "\n| same run, alternating slices | callers | QPS | bare baseline | QPS | ratio |"
            )
            rows.append("|---|---:|---:|---|---:|---:|")
            rows += versus
            first, deep = (r.percentile(50) for r in pages)
            rows.append(
                f"\nListAdvances: the deep page's p50 is {deep / first:.2f} x the first page's "
                f"({list_rows:,} advances of one entity, cloned in {filled:.0f} s)"
            )
            duplicates = duplicates_issued(cluster.url, "bench")
            bare_duplicates = duplicates_issued(cluster.url, BARE_ENTITY)
            rows.append(
                f"Duplicate numbers issued: {duplicates} (by the bare servers: {bare_duplicates})"
            )
            rss = peak_rss_mb(service.pid)
            rows.append(f"Service start to SERVING: {startup:.2f} s; peak RSS {rss:.0f} MB")
            checks += [
                ("ListAdvances deep page p50 <= 1.5 x first page", "", f"{deep / first:.2f} x",
                 deep <= 1.5 * first),
                ("no number issued twice", "", str(duplicates), duplicates == 0),
                ("peak RSS <= 200 MB", "", f"{rss:.0f} MB", rss <= 200),
                ("start to SERVING <= 2 s", "", f"{startup:.2f} s", startup <= 2),
                ("bare servers: no number issued twice (their own check)", "",
                 str(bare_duplicates), bare_duplicates == 0),
            ]  # fmt: skip
            rows.append("\n| target (issues 7, 15, 17) | callers | measured | met |")
            rows.append("|---|---:|---:|---|")
            rows += [
                f"| {name} | {callers} | {value} | {'yes' if met else 'no'} |"
                for name, callers, value, met in checks
            ]
        finally:
            servers = (service, noop, aio_noop, pool_noop, bare, coalescing, dutiful, asynchronous)
            for process in servers:
                process.terminate()
                process.wait(timeout=30)
        engine.dispose()
    finally:
        cluster.stop()
    return rows


Check = tuple[str, object, str, bool]  # target, callers, measured, met


def target_checks(
    base: Result, by_name: dict[str, Result], speedup: tuple[float, float, float]
) -> list[Check]:
    """Issues 7's, 15's and 17's targets for one concurrency: against the no-op measured
    just before, the batch of advances against single creates in alternating slices, and
    the service against the bare servers (also in alternating slices)."""
    callers = base.concurrency

    def ratio(name: str) -> float:
        return by_name[name].qps / base.qps

    def bare_ratio(name: str, baseline: str) -> float:
        return by_name[name].qps / by_name[baseline].qps if by_name[baseline].qps else 0.0

    advance = by_name[ADVANCE]
    fresh = by_name[HOT]
    replay = by_name["IssueNumbers, idempotent replay"]
    batch = by_name["BatchAdvanceCounters, 50 items"]
    batch_x = batch.percentile(50) / advance.percentile(50)
    created_x, lowest, highest = speedup
    hot_x, advance_x = bare_ratio(HOT, BARE_ISSUE), bare_ratio(ADVANCE, BARE_ADVANCE)
    create_x = bare_ratio(CREATE, BARE_ADVANCE)
    return [
        ("AdvanceCounter QPS >= 0.50 x no-op", callers, f"{ratio(advance.scenario):.2f} x",
         ratio(advance.scenario) >= 0.5),
        ("IssueNumbers (hot) QPS >= 0.40 x no-op", callers, f"{ratio(fresh.scenario):.2f} x",
         ratio(fresh.scenario) >= 0.4),
        ("Batch of 50 p50 <= 5 x AdvanceCounter p50", callers, f"{batch_x:.1f} x", batch_x <= 5),
        ("CreateAdvance QPS >= 0.30 x no-op", callers, f"{ratio(CREATE):.2f} x",
         ratio(CREATE) >= 0.3),
        ("Replay QPS >= fresh IssueNumbers QPS", callers, f"{replay.qps / fresh.qps:.2f} x",
         replay.qps >= fresh.qps),
        ("Advances created: batch of 100 >= 10 x one by one (alternating slices)", callers,
         f"{created_x:.1f} x (pairs {lowest:.1f}-{highest:.1f})", created_x >= 10),
        ("IssueNumbers (hot) QPS >= 1.0 x bare, one statement a call", callers,
         f"{hot_x:.2f} x", hot_x >= 1.0),
        ("AdvanceCounter QPS >= 0.80 x bare AdvanceCounter", callers, f"{advance_x:.2f} x",
         advance_x >= 0.8),
        ("CreateAdvance QPS >= 0.25 x bare AdvanceCounter", callers, f"{create_x:.2f} x",
         create_x >= 0.25),
    ]  # fmt: skip


CLONE_ADVANCES = """
    INSERT INTO advances (entity_id, mode, advance_number, state, customer_id, customer_name,
        reference_number, description, payment_date, receipt_date, payment_method,
        financial_entity_id, base_currency, txn_currency, exchange_rate, exchange_rate_date,
        exchange_rate_type_id, advance_summary_id, gl_account_id, undeposited_gl_account_number,
        attachment_id, total_entered, txn_total_entered, total_paid, txn_total_paid,
        ever_applied, reversed_date, reversal_memo, version, create_time, update_time,
        created_by, modified_by)
    SELECT entity_id, mode, 'BULK-' || g, state, customer_id, customer_name, reference_number,
        description, payment_date, receipt_date, payment_method, financial_entity_id,
        base_currency, txn_currency, exchange_rate, exchange_rate_date, exchange_rate_type_id,
        advance_summary_id, gl_account_id, undeposited_gl_account_number, attachment_id,
        total_entered, txn_total_entered, total_paid, txn_total_paid, ever_applied,
        reversed_date, reversal_memo, version, create_time, update_time, created_by, modified_by
    FROM advances, generate_series(2, %(rows)s) AS g
    WHERE entity_id = 'bulk'
"""
CLONE_LINES = """
    INSERT INTO advance_lines (entity_id, mode, advance_id, line_number, gl_account_id,
        gl_account_name, account_label_id, account_label_name, txn_amount, base_amount, memo,
        dimensions)
    SELECT a.entity_id, a.mode, a.id, l.line_number, l.gl_account_id, l.gl_account_name,
        l.account_label_id, l.account_label_name, l.txn_amount, l.base_amount, l.memo, l.dimensions
    FROM advances AS a, advance_lines AS l
    WHERE a.entity_id = 'bulk' AND l.advance_id = %(template)s AND a.id <> %(template)s
"""


def fill_advances(url: str, rows: int) -> tuple[int, float]:
    """Clones entity "bulk"'s one advance (made through the service) to `rows` advances,
    lines and all; returns the key after which row 900,000 of 1,000,000 comes, and the
    seconds it took."""
    started = time.perf_counter()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        (template,) = conn.execute("SELECT id FROM advances WHERE entity_id = 'bulk'").fetchone()  # type: ignore[misc]
        conn.execute(CLONE_ADVANCES, {"rows": rows})
        conn.execute(CLONE_LINES, {"template": template})
        conn.commit()
        conn.execute("ANALYZE")
        deep = int(rows * 0.9)
        (after,) = conn.execute(  # type: ignore[misc]
            "SELECT id FROM advances WHERE entity_id = 'bulk' ORDER BY id OFFSET %s LIMIT 1",
            (deep - 1,),
        ).fetchone()
    return after, time.perf_counter() - started


async def list_pages(
    advances: "advances_pb2_grpc.AdvanceServiceAsyncStub",
    metadata: tuple[tuple[str, str], ...],
    url: str,
    rows: int,
    seconds: float,
) -> tuple[list[Result], float]:
    """ListAdvances FULL, page size 100, by one caller: the first page, and a page past
    row 90% (keyset pagination: both should cost about the same)."""
    await advances.CreateAdvance(
        apb.CreateAdvanceRequest(advance=advance_message(payload(items=[item("10.00")]))),
        metadata=metadata,
    )
    after, filled = await asyncio.to_thread(fill_advances, url, rows)
    # The token the service gives for that position (its format is the service's own).
    tokens = PageTokens(load_secret(UnitOfWork(make_engine(url, pool_size=1)), PAGE_TOKENS))
    deep_token = tokens.encode(ADVANCES_PAGE_KIND, Tenant("bulk", "live"), [after, *[""] * 6, rows])
    first = apb.ListAdvancesRequest(page_size=100, view=apb.ADVANCE_VIEW_FULL)
    deep = apb.ListAdvancesRequest(page_size=100, view=apb.ADVANCE_VIEW_FULL, page_token=deep_token)
    page = await advances.ListAdvances(deep, metadata=metadata)
    assert len(page.advances) == 100 and page.total_size == rows, (len(page.advances), rows)

    async def list_first(n: int) -> object:
        return await advances.ListAdvances(first, metadata=metadata)

    async def list_deep(n: int) -> object:
        return await advances.ListAdvances(deep, metadata=metadata)

    label = f"{rows:,} advances"
    return [
        await drive(list_first, 1, seconds, f"ListAdvances FULL, first page ({label})"),
        await drive(list_deep, 1, seconds, f"ListAdvances FULL, page past row {int(rows * 0.9):,}"),
    ], filled


def duplicates_issued(url: str, entity: str) -> int:
    """Numbers of the entity's hot counter recorded as issued twice: must be 0."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(ISSUED, {"entity": entity}).fetchall()
    return sum(1 for (_, last), (following, _) in itertools.pairwise(rows) if following < last)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about a minute in all")
    parser.add_argument("--smoke", action="store_true", help="2 s per scenario, one concurrency")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--workers",
        type=int,
        default=Settings().max_workers,
        help="handler threads of the service and every baseline server",
    )
    args = parser.parse_args()
    if args.smoke:
        seconds, concurrencies, list_rows = 2.0, [4], 2_000
    elif args.quick:
        seconds, concurrencies, list_rows = 3.0, [16], 200_000
    else:
        seconds, concurrencies, list_rows = args.seconds, [16, 64], 1_000_000
    random.seed(7)
    rows = asyncio.run(run(seconds, concurrencies, list_rows, args.workers))
    print("| scenario | callers | QPS | p50 ms | p99 ms | QPS / no-op | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
