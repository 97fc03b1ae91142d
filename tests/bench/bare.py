"""The bare baselines: the real arcus.counters.v1.CounterService, served by grpcio and a
pool of psycopg connections and nothing else, doing the service's database work for
AdvanceCounter and IssueNumbers in one autocommit statement a call. Its QPS is what a
Python service doing the same SQL can reach on this machine (issue 17).

- the thread-pool grpcio server with WORKERS handler threads, and WORKERS connections
  (the service's pool size), in one process;
- AdvanceCounter: the counter locked and raised to advance_to when that is higher, with
  its audit row ("advance"), in one statement; the answer built from its row;
- IssueNumbers: the increment and its audit row ("issue") in one statement;
- with --coalesce, concurrent IssueNumbers on one counter share one statement: the first
  caller leads, takes every call waiting for that counter, increments it once by their
  sum and writes one audit row per call (unnest), and each caller gets its own contiguous
  block; a call arriving meanwhile waits for the next leader.

Nothing else: no key is read (the caller's bearer key is ignored), no request is checked,
no idempotency, no logs, no metrics; every call works on ENTITY's "live" counters, whose
series must exist and never reset (the bench makes them through the service); audit rows
carry KEY_ID where the service's carry the caller's key.

With --duties, the same on the service's server type (grpc.aio, the handlers in a pool of
WORKERS threads) and with the three things the service does on every call whatever it
serves, by the service's own code: the bearer key parsed, hashed and looked up in its key
cache, and its Observability's one JSON log line (on stderr) and Prometheus count and
duration of the call. What that reaches is the most the service could, before it checks
a request or runs its rules.

With --async, the other design: the duties too, but both methods as coroutines on
grpc.aio's event loop with psycopg's async driver (WORKERS connections), no thread at
all, IssueNumbers always coalesced. What that reaches is the most a service carrying the
duties could, were its request path rewritten for the event loop.

    python -m tests.bench.bare HOST:PORT WORKERS DSN ENTITY KEY_ID
        [--coalesce] [--duties] [--async]
"""

import asyncio
import itertools
import queue
import secrets
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import psycopg
from arcus.counters.v1 import counters_pb2 as pb
from arcus.counters.v1 import counters_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import create_engine

from service import logs
from service.auth.cache import KeyCache
from service.auth.keys import ApiKeyRecord, Principal
from service.observability import CallRecord, Observability

# The audit row's key, as the service draws it (service/db/ids.py).
SMALLEST, LARGEST = 10**15, 2**53 - 1

# AdvanceCounter: the row locked with its series' format (as the service's lock reads it),
# raised when below advance_to, audited when raised; the row as it stands after.
ADVANCE = """
    WITH old AS (
        SELECT c.current_value, c.create_time, c.update_time, s.prefix, s.padding, s.suffix
        FROM counters AS c JOIN counter_series AS s
            ON s.entity_id = c.entity_id AND s.mode = c.mode
            AND s.counter_type = c.counter_type AND s.series = c.series
        WHERE c.entity_id = %(entity)s AND c.mode = 'live' AND c.counter_type = %(type)s
            AND c.series = %(series)s AND c.period = ''
        FOR UPDATE OF c
    ), raised AS (
        UPDATE counters AS c SET current_value = %(to)s,
            update_time = greatest(now(), old.update_time)
        FROM old
        WHERE c.entity_id = %(entity)s AND c.mode = 'live' AND c.counter_type = %(type)s
            AND c.series = %(series)s AND c.period = '' AND old.current_value < %(to)s
        RETURNING c.current_value, c.update_time
    ), audit AS (
        INSERT INTO counter_events (event_key, entity_id, mode, counter_type, series, period,
            action, old_value, new_value, api_key_id, create_time)
        SELECT %(event)s, %(entity)s, 'live', %(type)s, %(series)s, '', 'advance',
            old.current_value, raised.current_value, %(key)s, raised.update_time
        FROM old, raised
    )
    SELECT old.current_value, raised.current_value, old.create_time,
        coalesce(raised.update_time, old.update_time), old.prefix, old.padding, old.suffix
    FROM old LEFT JOIN raised ON true
"""

# The increment by `count` of a never-resetting counter, its format, and the head of its
# audit rows' insert (IssueNumbers, alone or coalesced).
_INCREMENT = """
    WITH issued AS (
        UPDATE counters AS c SET current_value = c.current_value + %(count)s,
            update_time = greatest(now(), c.update_time)
        FROM counter_series AS s
        WHERE c.entity_id = %(entity)s AND c.mode = 'live' AND c.counter_type = %(type)s
            AND c.series = %(series)s AND c.period = ''
            AND s.entity_id = c.entity_id AND s.mode = c.mode
            AND s.counter_type = c.counter_type AND s.series = c.series
        RETURNING c.current_value, c.create_time, c.update_time, s.prefix, s.padding, s.suffix
    ), audit AS (
        INSERT INTO counter_events (event_key, entity_id, mode, counter_type, series, period,
            action, old_value, new_value, first_value, last_value, api_key_id, create_time)
"""

# IssueNumbers: the increment by `count` and its audit row (the service's statement on
# PostgreSQL for a series in use that never resets); the row after, with its format.
ISSUE = (
    _INCREMENT
    + """
        SELECT %(event)s, %(entity)s, 'live', %(type)s, %(series)s, '', 'issue',
            current_value - %(count)s, current_value, current_value - %(count)s + 1,
            current_value, %(key)s, update_time
        FROM issued
    )
    SELECT * FROM issued
"""
)

# The same for several calls at once: one increment by their sum, and one audit row per
# call for its own block (`before`: how many numbers the calls ahead of it take).
ISSUE_MANY = (
    _INCREMENT
    + """
        SELECT b.event, %(entity)s, 'live', %(type)s, %(series)s, '', 'issue',
            i.current_value - %(count)s + b.before,
            i.current_value - %(count)s + b.before + b.count,
            i.current_value - %(count)s + b.before + 1,
            i.current_value - %(count)s + b.before + b.count, %(key)s, i.update_time
        FROM issued AS i,
            unnest(%(events)s::bigint[], %(befores)s::bigint[], %(counts)s::bigint[])
                AS b(event, before, count)
    )
    SELECT * FROM issued
"""
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime) -> Timestamp:
    since = value - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


def type_name(counter_type: int) -> str:
    """COUNTER_TYPE_INVOICE -> "invoice"."""
    return pb.CounterType.Name(counter_type).removeprefix("COUNTER_TYPE_").lower()


def event_key() -> int:
    return SMALLEST + secrets.randbelow(LARGEST - SMALLEST + 1)


def counter(
    request_type: int, series: str, row: tuple[Any, ...], value: int
) -> tuple[pb.Counter, str, int, str]:
    """The Counter message of a row (current_value, create_time, update_time, prefix,
    padding, suffix) at `value`; and its format."""
    created, updated, prefix, padding, suffix = row[1:6]
    message = pb.Counter(
        counter_type=request_type,  # type: ignore[arg-type]
        prefix=prefix,
        padding=padding,
        current_value=value,
        next_number=f"{prefix}{value + 1:0{padding}d}{suffix}",
        create_time=timestamp(created),
        update_time=timestamp(updated),
        series=series,
        suffix=suffix,
        reset=pb.COUNTER_RESET_NEVER,
    )
    return message, prefix, padding, suffix


def advance_params(entity: str, key_id: int, request: pb.AdvanceCounterRequest) -> dict[str, Any]:
    return {
        "entity": entity, "type": type_name(request.counter_type), "series": request.series,
        "to": request.advance_to, "event": event_key(), "key": key_id,
    }  # fmt: skip


def advanced(request: pb.AdvanceCounterRequest, row: tuple[Any, ...] | None) -> Any:
    """AdvanceCounter's answer from ADVANCE's row."""
    assert row is not None, "the bare servers advance only counters that exist"
    previous, raised = row[0], row[1]
    message = counter(request.counter_type, request.series, row[1:], raised or previous)[0]
    return pb.AdvanceCounterResponse(
        counter=message, advanced=raised is not None, previous_value=previous
    )


def issue_many_params(
    entity: str, key_id: int, key: tuple[str, str], counts: list[int]
) -> dict[str, Any]:
    """ISSUE_MANY's parameters for calls taking `counts` numbers, in order."""
    befores = list(itertools.accumulate(counts, initial=0))
    return {
        "entity": entity, "type": key[0], "series": key[1], "count": befores.pop(),
        "events": [event_key() for _ in counts], "befores": befores, "counts": counts,
        "key": key_id,
    }  # fmt: skip


def blocks(row: tuple[Any, ...] | None, params: dict[str, Any]) -> list[int]:
    """The last number of each call's block, from ISSUE_MANY's row."""
    assert row is not None, "the bare servers issue only from counters that exist"
    start = row[0] - params["count"]
    return [start + b + c for b, c in zip(params["befores"], params["counts"], strict=True)]


def issued(request: pb.IssueNumbersRequest, count: int, row: tuple[Any, ...], last: int) -> Any:
    """The counter as this call left it (a coalesced call: after its own block)."""
    message, prefix, padding, suffix = counter(request.counter_type, request.series, row, last)
    first = last - count + 1
    return pb.IssueNumbersResponse(
        counter=message,
        numbers=[f"{prefix}{v:0{padding}d}{suffix}" for v in range(first, last + 1)],
        first_value=first,
        last_value=last,
    )


class Pool:
    """`size` autocommit connections, handed out in turn."""

    def __init__(self, dsn: str, size: int) -> None:
        self.dsn = dsn
        self.idle: queue.SimpleQueue[psycopg.Connection[Any]] = queue.SimpleQueue()
        for _ in range(size):
            self.idle.put(psycopg.connect(dsn, autocommit=True))

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self.idle.get()
        try:
            yield conn
        finally:
            self.idle.put(conn)


class Waiter:
    """One IssueNumbers call waiting for its block, or for its turn to lead."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.woken = threading.Event()
        self.leads = False
        self.row: tuple[Any, ...] | None = None
        self.last = 0  # the last value of its block
        self.error: BaseException | None = None


class Bare(counters_pb2_grpc.CounterServiceServicer):
    def __init__(self, pool: Pool, entity: str, key_id: int, coalesce: bool) -> None:
        self.pool = pool
        self.entity = entity
        self.key_id = key_id
        self.coalesce = coalesce
        self.lock = threading.Lock()
        self.waiting: dict[tuple[str, str], list[Waiter]] = {}  # a key here has a leader

    def AdvanceCounter(
        self, request: pb.AdvanceCounterRequest, context: grpc.ServicerContext
    ) -> pb.AdvanceCounterResponse:
        with self.pool.connection() as conn:
            row = conn.execute(ADVANCE, advance_params(self.entity, self.key_id, request))
            return advanced(request, row.fetchone())

    def IssueNumbers(
        self, request: pb.IssueNumbersRequest, context: grpc.ServicerContext
    ) -> pb.IssueNumbersResponse:
        count = request.count or 1
        kind = type_name(request.counter_type)
        row: tuple[Any, ...] | None
        if self.coalesce:
            row, last = self._issue_together((kind, request.series), count)
        else:
            params = {
                "entity": self.entity, "type": kind, "series": request.series, "count": count,
                "event": event_key(), "key": self.key_id,
            }  # fmt: skip
            with self.pool.connection() as conn:
                row = conn.execute(ISSUE, params).fetchone()
            assert row is not None, "the bare server issues only from counters that exist"
            last = row[0]
        return issued(request, count, row, last)

    def _issue_together(self, key: tuple[str, str], count: int) -> tuple[tuple[Any, ...], int]:
        """Joins the calls waiting on `key`; leads them when none leads yet (or when the
        leader before hands over), else waits for its block."""
        me = Waiter(count)
        with self.lock:
            waiting = self.waiting.get(key)
            if waiting is None:  # nobody leads: this call does
                self.waiting[key] = [me]
                me.leads = True
            else:
                waiting.append(me)
        if not me.leads:
            me.woken.wait()
        if not me.leads:  # the leader issued its block
            if me.error is not None:
                raise me.error
            assert me.row is not None
            return me.row, me.last
        with self.lock:  # every call waiting now goes in this statement
            batch = self.waiting[key]
            self.waiting[key] = []
        try:
            self._issue_batch(key, batch)
        except BaseException as error:
            for waiter in batch:
                waiter.error = error
        with self.lock:  # the calls that came meanwhile: the first of them leads
            following = self.waiting[key]
            if following:
                following[0].leads = True
                following[0].woken.set()
            else:
                del self.waiting[key]
        for waiter in batch:
            if waiter is not me:
                waiter.woken.set()
        if me.error is not None:
            raise me.error
        assert me.row is not None
        return me.row, me.last

    def _issue_batch(self, key: tuple[str, str], batch: list[Waiter]) -> None:
        params = issue_many_params(self.entity, self.key_id, key, [w.count for w in batch])
        with self.pool.connection() as conn:
            row = conn.execute(ISSUE_MANY, params).fetchone()
        for waiter, last in zip(batch, blocks(row, params), strict=True):
            waiter.row, waiter.last = row, last


class Duties:
    """What the service does on every call, whatever it serves (see --duties), done by the
    service's own code: its key cache (parse, hash, lookup), its Observability (metrics
    and the log line)."""

    def __init__(self, dsn: str, entity: str, key_id: int) -> None:
        logs.configure("INFO")
        # The store's stand-in: every well-formed key is the bench key (the cache keeps
        # it for the run, as the service's keeps a key in use).
        record = ApiKeyRecord(key_id, "", entity, "live", (), datetime.now(UTC), None)
        self.keys = KeyCache(lambda key_hash: record, ttl=3600)
        # Its engine never connects: only the pool's gauges read it, when scraped.
        self.observability = Observability(
            create_engine(dsn.replace("postgresql://", "postgresql+psycopg://", 1))
        )

    def run(
        self, method: str, handler: Callable[[Any, Any], Any], request: Any, context: Any
    ) -> Any:
        started, principal = self.begin(context)
        response = handler(request, context)
        self.end(method, started, principal, context)
        return response

    def begin(self, context: Any) -> tuple[float, Principal]:
        """When the call started, and who makes it."""
        started = time.perf_counter()
        bearer = [v for k, v in context.invocation_metadata() if k == "authorization"]
        return started, self.keys.authenticate(bearer)

    def end(self, method: str, started: float, principal: Principal, context: Any) -> None:
        """Its metrics and its log line."""
        self.observability.call(
            CallRecord(
                method, "OK", time.perf_counter() - started, context.peer(),
                principal.tenant.entity_id, principal.key_id,
            )
        )  # fmt: skip


class Dutiful(Bare):
    """Bare, with the service's per-call duties around both methods."""

    def __init__(self, pool: Pool, entity: str, key_id: int, coalesce: bool) -> None:
        super().__init__(pool, entity, key_id, coalesce)
        self.duties = Duties(pool.dsn, entity, key_id)

    def AdvanceCounter(
        self, request: pb.AdvanceCounterRequest, context: grpc.ServicerContext
    ) -> pb.AdvanceCounterResponse:
        method = "/arcus.counters.v1.CounterService/AdvanceCounter"
        return self.duties.run(method, super().AdvanceCounter, request, context)

    def IssueNumbers(
        self, request: pb.IssueNumbersRequest, context: grpc.ServicerContext
    ) -> pb.IssueNumbersResponse:
        method = "/arcus.counters.v1.CounterService/IssueNumbers"
        return self.duties.run(method, super().IssueNumbers, request, context)


ADVANCE_METHOD = "/arcus.counters.v1.CounterService/AdvanceCounter"
ISSUE_METHOD = "/arcus.counters.v1.CounterService/IssueNumbers"


class AsyncPool:
    """Autocommit connections of psycopg's async driver, handed out in turn."""

    def __init__(self, connections: list[psycopg.AsyncConnection[Any]]) -> None:
        self.idle: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
        for conn in connections:
            self.idle.put_nowait(conn)

    @classmethod
    async def connect(cls, dsn: str, size: int) -> "AsyncPool":
        connect = psycopg.AsyncConnection.connect
        return cls([await connect(dsn, autocommit=True) for _ in range(size)])

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await self.idle.get()
        try:
            yield conn
        finally:
            self.idle.put_nowait(conn)


class AsyncBare(counters_pb2_grpc.CounterServiceServicer):
    """The other design (--async): both methods as coroutines on grpc.aio's event loop,
    with psycopg's async driver, so no call crosses to a thread; the per-call duties done
    on the loop; IssueNumbers always coalesced (the calls waiting on one counter share
    the next statement, as in Bare)."""

    def __init__(self, pool: AsyncPool, entity: str, key_id: int, duties: Duties) -> None:
        self.pool = pool
        self.entity = entity
        self.key_id = key_id
        self.duties = duties
        # A key here has a leader; its list: the calls waiting for the next statement.
        self.waiting: dict[tuple[str, str], list[AsyncWaiter]] = {}

    async def AdvanceCounter(self, request: pb.AdvanceCounterRequest, context: Any) -> Any:
        started, principal = self.duties.begin(context)
        async with self.pool.connection() as conn:
            cursor = await conn.execute(ADVANCE, advance_params(self.entity, self.key_id, request))
            response = advanced(request, await cursor.fetchone())
        self.duties.end(ADVANCE_METHOD, started, principal, context)
        return response

    async def IssueNumbers(self, request: pb.IssueNumbersRequest, context: Any) -> Any:
        started, principal = self.duties.begin(context)
        count = request.count or 1
        row, last = await self._issue_together(
            (type_name(request.counter_type), request.series), count
        )
        response = issued(request, count, row, last)
        self.duties.end(ISSUE_METHOD, started, principal, context)
        return response

    async def _issue_together(self, key: tuple[str, str], count: int) -> tuple[Any, int]:
        """Its block: led by this call when none leads, else by the leader of the next
        statement, which may hand this call the lead (its future then holds the calls
        it leads, itself first)."""
        loop = asyncio.get_running_loop()
        me = AsyncWaiter(count, loop.create_future())
        waiting = self.waiting.get(key)
        if waiting is None:
            self.waiting[key] = []
            batch = [me]
        else:
            waiting.append(me)
            outcome = await me.future
            if not isinstance(outcome, list):
                return outcome
            batch, me.future = outcome, loop.create_future()  # for its own block
        try:
            params = issue_many_params(self.entity, self.key_id, key, [w.count for w in batch])
            async with self.pool.connection() as conn:
                row = await (await conn.execute(ISSUE_MANY, params)).fetchone()
            for waiter, last in zip(batch, blocks(row, params), strict=True):
                waiter.future.set_result((row, last))
        except BaseException as error:
            for waiter in batch:
                if not waiter.future.done():
                    waiter.future.set_exception(error)
        finally:
            following = self.waiting[key]
            if following:  # the first of the calls that came meanwhile leads them
                self.waiting[key] = []
                following[0].future.set_result(following)
            else:
                del self.waiting[key]
        return me.future.result()


@dataclass
class AsyncWaiter:
    """A coalesced call's count, and its block to come (or the calls it is to lead)."""

    count: int
    future: asyncio.Future[Any]


def serve(
    listen: str, workers: int, dsn: str, entity: str, key_id: int, coalesce: bool, duties: bool
) -> None:
    pool = Pool(dsn, workers)
    # Only two methods: the generated base class answers the others UNIMPLEMENTED.
    bare = (Dutiful if duties else Bare)(pool, entity, key_id, coalesce)  # type: ignore[abstract]
    if duties:  # the service's server type
        asyncio.run(_serve_aio(listen, workers, bare))
        return
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    counters_pb2_grpc.add_CounterServiceServicer_to_server(bare, server)
    server.add_insecure_port(listen)
    server.start()
    threading.Event().wait()


async def _serve_aio(listen: str, workers: int, bare: Bare) -> None:
    server = grpc.aio.server(migration_thread_pool=futures.ThreadPoolExecutor(workers))
    counters_pb2_grpc.add_CounterServiceServicer_to_server(bare, server)
    server.add_insecure_port(listen)
    await server.start()
    await server.wait_for_termination()


async def serve_async(listen: str, workers: int, dsn: str, entity: str, key_id: int) -> None:
    """AsyncBare, with the duties, its pool as large as the others'."""
    pool = await AsyncPool.connect(dsn, workers)
    # Only two methods: the generated base class answers the others UNIMPLEMENTED.
    bare = AsyncBare(pool, entity, key_id, Duties(dsn, entity, key_id))  # type: ignore[abstract]
    server = grpc.aio.server()
    counters_pb2_grpc.add_CounterServiceServicer_to_server(bare, server)
    server.add_insecure_port(listen)
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    listen, workers, dsn, entity, key_id = sys.argv[1:6]
    if "--async" in sys.argv:
        asyncio.run(serve_async(listen, int(workers), dsn, entity, int(key_id)))
    else:
        serve(
            listen, int(workers), dsn, entity, int(key_id),
            "--coalesce" in sys.argv, "--duties" in sys.argv,
        )  # fmt: skip
