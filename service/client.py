"""A small typed client for internal Python services: one authenticated channel, both stubs.

    with connect("arcus.internal:50051", api_key, root_certificates=ca_pem) as arcus:
        arcus.counters.IssueNumbers(IssueNumbersRequest(counter_type=COUNTER_TYPE_INVOICE))

Every call carries `authorization: Bearer <key>`; pass `idempotency_key=` to a mutating
call through `arcus.with_idempotency_key(...)` to make retries safe.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from arcus.counters.v1.counters_pb2_grpc import CounterServiceStub
from arcus.receivables.v1.advances_pb2_grpc import AdvanceServiceStub


class _Metadata(grpc.UnaryUnaryClientInterceptor):
    """Adds fixed metadata (the bearer key) to every unary call."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        metadata = [*(details.metadata or ()), *self.pairs]
        return continuation(details._replace(metadata=metadata), request)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Arcus:
    channel: grpc.Channel
    counters: CounterServiceStub
    advances: AdvanceServiceStub

    def with_idempotency_key(self, key: str) -> "Arcus":
        """The same client, sending `idempotency-key: key` with every call."""
        return _stubs(grpc.intercept_channel(self.channel, _Metadata([("idempotency-key", key)])))


def _stubs(channel: grpc.Channel) -> Arcus:
    return Arcus(channel, CounterServiceStub(channel), AdvanceServiceStub(channel))


@contextmanager
def connect(
    target: str,
    api_key: str,
    root_certificates: bytes | None = None,
    tls: bool | None = None,
    client_certificate: tuple[bytes, bytes] | None = None,
) -> Iterator[Arcus]:
    """An authenticated client for `target` ("host:port"), closed when the block ends.

    TLS is used when `tls` is true, or when certificates are given; `root_certificates`
    (PEM) trusts a private CA, `client_certificate` is (key PEM, certificate PEM).
    """
    if tls is None:
        tls = root_certificates is not None or client_certificate is not None
    if tls:
        key, chain = client_certificate or (None, None)
        credentials = grpc.ssl_channel_credentials(root_certificates, key, chain)
        channel = grpc.secure_channel(target, credentials)
    else:
        channel = grpc.insecure_channel(target)
    try:
        authorized = grpc.intercept_channel(
            channel, _Metadata([("authorization", f"Bearer {api_key}")])
        )
        yield _stubs(authorized)
    finally:
        channel.close()
