"""Callers that open calls and never send their message, or send it slowly, hold no handler
thread: everyone else is answered. Abandoned and idle connections are closed, and a call
left half-open ends with its connection's age.

(The thread-pool server read a unary request inside a handler thread: GRPC_MAX_WORKERS
such calls to the public health check froze the whole service.)"""

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from arcus.counters.v1 import counters_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.config import Settings
from service.server import RunningServer, run_server
from tests.support import auth, local_settings

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
CREATE_ADVANCE = "/arcus.receivables.v1.AdvanceService/CreateAdvance"
INVOICE = pb.COUNTER_TYPE_INVOICE
WORKERS = Settings().max_workers
HALF_OPEN = 4 * WORKERS


class HalfOpen:
    """Calls that send their headers and then nothing, until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[grpc.Future] = []

    def _never(self) -> Iterator[bytes]:
        self.release.wait()
        return
        yield b""  # a generator that sends no message

    def open(self, channel: grpc.Channel, method: str) -> grpc.Future:
        # A unary method called as client-streaming: the headers go out at once, the one
        # message never does. No key: anyone can do this.
        call: grpc.Future = channel.stream_unary(method).future(self._never())  # type: ignore[arg-type]
        self.calls.append(call)
        return call

    def close(self) -> None:
        for call in self.calls:
            call.cancel()
        self.release.set()


@contextmanager
def served(database, **options) -> Iterator[RunningServer]:
    with run_server(database, local_settings(**options)) as running:
        yield running


def own_connection(address: str) -> grpc.Channel:
    return grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


def answered_on(channel: grpc.Channel, key: str, calls: int) -> float:
    """`calls` health checks and IssueNumbers, each answered within 5 s; the slowest
    answer's seconds. On a channel that carries half-open calls, these follow their
    headers on the same connection, so the server has those calls open meanwhile."""
    slowest = 0.0
    health = health_pb2_grpc.HealthStub(channel)
    counters = counters_pb2_grpc.CounterServiceStub(channel)
    for _ in range(calls):
        started = time.monotonic()
        reply = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        counters.IssueNumbers(
            pb.IssueNumbersRequest(counter_type=INVOICE), metadata=auth(key), timeout=5
        )
        slowest = max(slowest, time.monotonic() - started)
    return slowest


def answered_normally(address: str, key: str, calls: int = 10) -> float:
    with own_connection(address) as channel:
        return answered_on(channel, key, calls)


def with_invoice_counter(address: str, key: str) -> None:
    with own_connection(address) as channel:
        counters_pb2_grpc.CounterServiceStub(channel).AdvanceCounter(
            pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=0, prefix="I"),
            metadata=auth(key),
        )


def test_half_open_calls_on_one_connection_hold_no_thread(database, key, proof):
    with served(database) as running, ExitStack() as stack:
        address = f"127.0.0.1:{running.port}"
        with_invoice_counter(address, key)
        half_open = HalfOpen()
        stack.callback(half_open.close)
        channel = stack.enter_context(own_connection(address))
        for number in range(HALF_OPEN):
            half_open.open(channel, HEALTH_CHECK if number % 2 else CREATE_ADVANCE)
        slowest = max(answered_on(channel, key, 10), answered_normally(address, key))
        assert not any(call.done() for call in half_open.calls)  # still open: none was cut
    proof(
        f"{HALF_OPEN} half-open calls (4 x {WORKERS} workers) on one connection, no key: "
        f"40 other calls answered on it and on another, the slowest in {slowest:.3f}s"
    )


def test_half_open_calls_on_many_connections_hold_no_thread(database, key, proof):
    with served(database) as running, ExitStack() as stack:
        address = f"127.0.0.1:{running.port}"
        with_invoice_counter(address, key)
        half_open = HalfOpen()
        stack.callback(half_open.close)
        slowest = 0.0
        for number in range(HALF_OPEN):
            channel = stack.enter_context(own_connection(address))
            half_open.open(channel, HEALTH_CHECK if number % 2 else CREATE_ADVANCE)
            slowest = max(slowest, answered_on(channel, key, 1))
        slowest = max(slowest, answered_normally(address, key))
        assert not any(call.done() for call in half_open.calls)
    proof(
        f"{HALF_OPEN} half-open calls on {HALF_OPEN} connections: other calls answered, the "
        f"slowest in {slowest:.3f}s"
    )


def test_a_message_that_arrives_slowly_holds_no_thread_meanwhile(database, key, proof):
    with served(database, max_workers=1) as running, ExitStack() as stack:
        address = f"127.0.0.1:{running.port}"
        with_invoice_counter(address, key)
        send = threading.Event()

        def late() -> Iterator[bytes]:
            send.wait()
            yield health_pb2.HealthCheckRequest().SerializeToString()

        channel = stack.enter_context(own_connection(address))
        slow: grpc.Future = channel.stream_unary(HEALTH_CHECK).future(late())  # type: ignore[arg-type]
        stack.callback(send.set)
        # One worker thread only, and the slow call has begun: others still get answers.
        slowest = answered_on(channel, key, calls=5)
        assert not slow.done()
        send.set()
        reply = health_pb2.HealthCheckResponse.FromString(slow.result(timeout=10))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    proof(f"with 1 worker, a call whose message was held back: others answered in {slowest:.3f}s")


def test_a_half_open_call_ends_with_its_connections_age(database, proof):
    with (
        served(database, max_connection_age_seconds=1, max_connection_age_grace_seconds=1) as (
            running
        ),
        own_connection(f"127.0.0.1:{running.port}") as channel,
    ):
        half_open = HalfOpen()
        started = time.monotonic()
        call = half_open.open(channel, HEALTH_CHECK)
        try:
            with pytest.raises(grpc.RpcError) as caught:
                call.result(timeout=15)
        finally:
            half_open.close()
    ended = time.monotonic() - started
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert ended < 10  # age 1 s (+ up to 10 % jitter) and grace 1 s
    proof(f"a half-open call on a connection of max age 1 s + 1 s grace ended after {ended:.1f}s")


# Raw HTTP/2, to behave as no gRPC client would.
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, PING, GOAWAY = 0x4, 0x6, 0x7
ENHANCE_YOUR_CALM = 0xB


def frame(kind: int, payload: bytes = b"", flags: int = 0) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + b"\0\0\0\0" + payload


@contextmanager
def raw_connection(database, **options) -> Iterator[socket.socket]:
    with (
        served(database, **options) as running,
        socket.create_connection(("127.0.0.1", running.port)) as sock,
    ):
        yield sock


Frames = list[tuple[int, bytes]]  # (type, payload)


def frames_until_closed(sock: socket.socket, timeout: float) -> tuple[Frames, float]:
    """The frames the server sends until it closes the connection, and when it did."""
    started, data = time.monotonic(), b""
    sock.settimeout(timeout)
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {timeout}s")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        data += chunk
    closed = time.monotonic() - started
    frames, at = [], 0
    while at + 9 <= len(data):
        length = int.from_bytes(data[at : at + 3], "big")
        frames.append((data[at + 3], data[at + 9 : at + 9 + length]))
        at += 9 + length
    return frames, closed


def test_a_connection_that_never_finishes_its_handshake_is_dropped(database, proof):
    with raw_connection(database, handshake_seconds=1) as sock:
        _, closed = frames_until_closed(sock, timeout=15)
    assert closed < 10
    proof(f"a connection that sent nothing was closed after {closed:.1f}s (handshake bound 1 s)")


def test_an_idle_connection_is_told_to_go_and_closed(database, proof):
    with raw_connection(database, max_connection_idle_seconds=1) as sock:
        sock.sendall(PREFACE + frame(SETTINGS))
        frames, closed = frames_until_closed(sock, timeout=15)
    assert GOAWAY in [kind for kind, _ in frames]
    assert closed < 10
    proof(f"an HTTP/2 connection with no calls got GOAWAY and was closed after {closed:.1f}s")


def test_a_client_that_pings_too_often_is_sent_away(database, proof):
    with raw_connection(database) as sock:
        sock.sendall(PREFACE + frame(SETTINGS))
        pinging = threading.Event()

        def ping() -> None:
            with suppress(OSError):
                while not pinging.wait(0.05):
                    sock.sendall(frame(PING, b"12345678"))

        pinger = threading.Thread(target=ping, daemon=True)
        pinger.start()
        try:
            frames, closed = frames_until_closed(sock, timeout=15)
        finally:
            pinging.set()
            pinger.join(timeout=5)
    goaways = [payload for kind, payload in frames if kind == GOAWAY]
    assert goaways and int.from_bytes(goaways[-1][4:8], "big") == ENHANCE_YOUR_CALM
    assert not pinger.is_alive()
    proof(f"a peer pinging every 50 ms without calls got GOAWAY ENHANCE_YOUR_CALM in {closed:.1f}s")
