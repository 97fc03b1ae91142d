"""Servicer + interceptor through grpcio-testing: no sockets, real databases.

grpc_testing runs no server interceptors, so the servicer's methods are wrapped with
the interceptor's own guard, exactly as the real server wraps them.
"""

import asyncio

import grpc
import grpc_testing
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from arcus.counters.v1 import counters_pb2_grpc

from service.auth.cache import KeyCache
from service.auth.scopes import method_scopes
from service.auth.store import KeyStore
from service.counters.service import Counters
from service.counters.servicer import CounterServicer
from service.db.secrets import PAGE_TOKENS, load_secret
from service.db.uow import UnitOfWork
from service.pagination import PageTokens
from service.rpc.interceptor import ServiceInterceptor
from service.server import SERVICES
from tests.errors import rich_error
from tests.support import auth

SERVICE = pb.DESCRIPTOR.services_by_name["CounterService"]


class Guarded:
    """The servicer with each method behind the interceptor's guard."""

    def __init__(self, servicer: CounterServicer, interceptor: ServiceInterceptor) -> None:
        for method in SERVICE.methods:
            path = f"/{SERVICE.full_name}/{method.name}"
            scope = method_scopes(SERVICES)[path]
            setattr(
                self, method.name, interceptor.guard(path, scope, getattr(servicer, method.name))
            )


def looked_up_every_call(uow):
    return KeyCache(KeyStore(uow).find_by_hash, ttl=0).authenticate


@pytest.fixture
def test_server(database):
    uow = UnitOfWork(database)
    interceptor = ServiceInterceptor(method_scopes(SERVICES), looked_up_every_call(uow))
    tokens = PageTokens(load_secret(uow, PAGE_TOKENS))
    servicer = Guarded(CounterServicer(Counters(uow, tokens)), interceptor)
    return grpc_testing.server_from_dictionary({SERVICE: servicer}, grpc_testing.strict_real_time())


def invoke(server, method, request, metadata):
    rpc = server.invoke_unary_unary(SERVICE.methods_by_name[method], metadata, request, None)
    return rpc.termination()


def test_advance_and_issue(test_server, key):
    response, _, code, _ = invoke(
        test_server,
        "AdvanceCounter",
        pb.AdvanceCounterRequest(
            counter_type=pb.COUNTER_TYPE_INVOICE, advance_to=342665, prefix="INV-"
        ),
        auth(key),
    )
    assert code == grpc.StatusCode.OK
    assert response.counter.next_number == "INV-0342666"
    response, _, code, _ = invoke(
        test_server,
        "IssueNumbers",
        pb.IssueNumbersRequest(counter_type=pb.COUNTER_TYPE_INVOICE, count=2),
        auth(key),
    )
    assert list(response.numbers) == ["INV-0342666", "INV-0342667"]


def test_a_yearly_series_its_update_and_a_changed_value(test_server, key):
    made, _, code, _ = invoke(
        test_server,
        "AdvanceCounter",
        pb.AdvanceCounterRequest(
            counter_type=pb.COUNTER_TYPE_INVOICE, series="DE", period="2025", advance_to=4711,
            prefix="INV/{YYYY}/", padding=5, reset=pb.COUNTER_RESET_YEARLY,
        ),
        auth(key),
    )  # fmt: skip
    assert (code, made.counter.next_number) == (grpc.StatusCode.OK, "INV/2025/04712")
    updated, _, code, _ = invoke(
        test_server,
        "UpdateCounter",
        pb.UpdateCounterRequest(
            counter=pb.Counter(
                counter_type=pb.COUNTER_TYPE_INVOICE, series="DE", suffix="-B", period="2025"
            )
        ),
        auth(key),
    )
    assert (code, updated.next_number) == (grpc.StatusCode.OK, "INV/2025/04712-B")
    issued, _, _, _ = invoke(
        test_server,
        "IssueNumbers",
        pb.IssueNumbersRequest(
            counter_type=pb.COUNTER_TYPE_INVOICE, series="DE", document_date="2026-01-02"
        ),
        auth(key),
    )
    assert list(issued.numbers) == ["INV/2026/00001-B"]
    _, _, code, details = invoke(
        test_server,
        "AdvanceCounter",
        pb.AdvanceCounterRequest(
            counter_type=pb.COUNTER_TYPE_INVOICE, series="DE", period="2025", advance_to=5000,
            expected_current_value=4700,
        ),
        auth(key),
    )  # fmt: skip
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "is at 4711, not the expected 4700; nothing was changed" in details


def test_errors_map_to_their_codes(test_server, keys):
    # grpc_testing drops trailing metadata on abort, so the google.rpc.Status details
    # are asserted over real gRPC (test_*_e2e.py); here: code and message.
    reader = keys.create(scopes=["counters:read"])
    cases = [
        ((), grpc.StatusCode.UNAUTHENTICATED, "missing 'authorization"),
        (auth(reader), grpc.StatusCode.PERMISSION_DENIED, "'counters:write'"),
    ]
    for metadata, code, words in cases:
        _, _, got, details = invoke(
            test_server,
            "IssueNumbers",
            pb.IssueNumbersRequest(counter_type=pb.COUNTER_TYPE_PO),
            metadata,
        )
        assert (got, words in details) == (code, True)


def test_bad_input_and_missing_counter(test_server, key):
    _, _, code, details = invoke(
        test_server,
        "AdvanceCounter",
        pb.AdvanceCounterRequest(counter_type=pb.COUNTER_TYPE_INVOICE, padding=13),
        auth(key),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "padding: must be 1..12" in details
    _, _, code, _ = invoke(
        test_server,
        "GetCounter",
        pb.GetCounterRequest(counter_type=pb.COUNTER_TYPE_INVOICE),
        auth(key),
    )
    assert code == grpc.StatusCode.NOT_FOUND


def test_a_method_without_a_scope_is_refused_not_opened(database, key):
    """Deny by default: a servicer registered without a declared scope answers no one."""
    uow = UnitOfWork(database)
    interceptor = ServiceInterceptor({}, looked_up_every_call(uow))  # knows no scopes

    async def serve_and_call() -> grpc.aio.AioRpcError:
        server = grpc.aio.server(interceptors=[interceptor])
        counters_pb2_grpc.add_CounterServiceServicer_to_server(
            CounterServicer(Counters(uow, PageTokens(b"unused"))), server
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await counters_pb2_grpc.CounterServiceStub(channel).GetCounter(
                        pb.GetCounterRequest(counter_type=pb.COUNTER_TYPE_INVOICE),
                        metadata=auth(key),
                    )
            return caught.value
        finally:
            await server.stop(None)

    error = rich_error(asyncio.run(serve_and_call()))
    assert (error.code, error.info.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "METHOD_NOT_GUARDED",
    )
