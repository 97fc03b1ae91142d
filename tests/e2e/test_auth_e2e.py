"""The auth interceptor over real gRPC: keys, scopes, modes and tenants."""

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from service.auth.store import KeyStore
from service.db.uow import UnitOfWork
from tests.errors import rich_error
from tests.support import auth, counters_served, local_settings

INVOICE = pb.COUNTER_TYPE_INVOICE
GET = pb.GetCounterRequest(counter_type=INVOICE)


def denied(call, request, metadata):
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=metadata)
    return rich_error(caught.value)


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ([], "API_KEY_MISSING"),
        ([("authorization", "Basic dXNlcjpwYXNz")], "API_KEY_MALFORMED"),
        ([("authorization", "Bearer sk_live_123")], "API_KEY_MALFORMED"),
        ([("authorization", "Bearer ark_live_ent_short")], "API_KEY_MALFORMED"),
        ([("authorization", "Bearer ark_live_ent_" + "A" * 32)], "API_KEY_INVALID"),
        ([("authorization", "Bearer ark_test_ent_" + "A" * 32)], "API_KEY_INVALID"),
    ],
)
def test_bad_keys_are_unauthenticated(counters, metadata, reason):
    error = denied(counters.GetCounter, GET, metadata)
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    assert error.info.reason == reason
    assert error.info.domain == "arcus.auth.v1"


def test_bearer_scheme_is_case_insensitive(counters, key):
    reply = counters.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=1, prefix="I"),
        metadata=[("authorization", f"bearer {key}")],
    )
    assert reply.created and reply.counter.next_number == "I0000002"
    counter = counters.GetCounter(GET, metadata=[("authorization", f"BEARER {key}")])
    assert (counter.current_value, counter.next_number) == (1, "I0000002")


def test_a_revoked_key_is_refused_once_the_servers_memory_of_it_expires(keys, database):
    """Servers remember a looked-up key for API_KEY_CACHE_SECONDS: revocation takes
    effect within that bound, on a clock the test moves."""
    key = keys.create()
    store = KeyStore(UnitOfWork(database))
    now = [1000.0]
    options = local_settings(key_cache_seconds=5)
    with counters_served(database, options, monotonic=lambda: now[0]) as counters:
        counters.ListCounters(pb.ListCountersRequest(), metadata=auth(key))
        [record] = store.list_keys()
        store.revoke(record.id)
        now[0] += 4.9  # still remembered: accepted
        counters.ListCounters(pb.ListCountersRequest(), metadata=auth(key))
        now[0] += 0.2  # past the bound: looked up again, and refused
        error = denied(counters.ListCounters, pb.ListCountersRequest(), auth(key))
        assert error.code == grpc.StatusCode.UNAUTHENTICATED
        assert error.info.reason == "API_KEY_REVOKED"
        now[0] += 60  # a refused key stays refused
        assert denied(counters.ListCounters, pb.ListCountersRequest(), auth(key)).code == (
            grpc.StatusCode.UNAUTHENTICATED
        )


def test_without_the_key_cache_revocation_is_immediate(keys, database):
    key = keys.create()
    store = KeyStore(UnitOfWork(database))
    with counters_served(database, local_settings(key_cache_seconds=0)) as counters:
        counters.ListCounters(pb.ListCountersRequest(), metadata=auth(key))
        [record] = store.list_keys()
        store.revoke(record.id)
        error = denied(counters.ListCounters, pb.ListCountersRequest(), auth(key))
        assert (error.code, error.info.reason) == (
            grpc.StatusCode.UNAUTHENTICATED,
            "API_KEY_REVOKED",
        )


def test_a_new_key_works_at_once_even_after_being_refused(counters, keys, database):
    """Unknown keys are never remembered."""
    key = "ark_live_ent_" + "B" * 32
    error = denied(counters.GetCounter, GET, auth(key))
    assert (error.code, error.info.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID")
    KeyStore(UnitOfWork(database)).create("acme", "live", ["counters:read"], key=key)
    error = denied(counters.GetCounter, GET, auth(key))
    # Authenticated: past the key check.
    assert (error.code, error.info.reason) == (grpc.StatusCode.NOT_FOUND, "COUNTER_NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "request_message", "scope"),
    [
        (
            "AdvanceCounter",
            pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=1, prefix="I"),
            "migration:write",
        ),
        ("BatchAdvanceCounters", pb.BatchAdvanceCountersRequest(), "migration:write"),
        ("GetCounter", GET, "counters:read"),
        ("ListCounters", pb.ListCountersRequest(), "counters:read"),
        ("IssueNumbers", pb.IssueNumbersRequest(counter_type=INVOICE), "counters:write"),
    ],
)
def test_missing_scope_is_permission_denied_naming_the_scope(
    counters, keys, database, method, request_message, scope
):
    every_other_scope = [
        s for s in ("migration:write", "counters:read", "counters:write") if s != scope
    ]
    key = keys.create(scopes=every_other_scope)
    error = denied(getattr(counters, method), request_message, auth(key))
    assert error.code == grpc.StatusCode.PERMISSION_DENIED
    assert error.info.reason == "SCOPE_MISSING"
    assert error.info.metadata["required_scope"] == scope
    assert scope in error.message


def test_scope_is_enough_on_its_own(counters, keys):
    migrator = keys.create(scopes=["migration:write"])
    reader = keys.create(scopes=["counters:read"])
    counters.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=7, prefix="I"),
        metadata=auth(migrator),
    )
    assert counters.GetCounter(GET, metadata=auth(reader)).current_value == 7


def test_live_and_test_keys_see_disjoint_data(counters, keys):
    live = keys.create("acme", mode="live")
    test = keys.create("acme", mode="test")
    counters.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=500, prefix="INV-"),
        metadata=auth(live),
    )
    error = denied(counters.GetCounter, GET, auth(test))
    assert (error.code, error.info.reason) == (grpc.StatusCode.NOT_FOUND, "COUNTER_NOT_FOUND")
    assert counters.ListCounters(pb.ListCountersRequest(), metadata=auth(test)).counters == []
    # The test-mode counter is its own: creating and issuing it leaves live alone.
    counters.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=3, prefix="T-"),
        metadata=auth(test),
    )
    issued = counters.IssueNumbers(
        pb.IssueNumbersRequest(counter_type=INVOICE), metadata=auth(test)
    )
    assert list(issued.numbers) == ["T-0000004"]
    assert counters.GetCounter(GET, metadata=auth(live)).current_value == 500


def test_entities_see_only_their_own_counters(counters, keys):
    acme = keys.create("acme")
    globex = keys.create("globex")
    counters.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=10, prefix="A-"),
        metadata=auth(acme),
    )
    error = denied(counters.GetCounter, GET, auth(globex))
    assert (error.code, error.info.reason) == (grpc.StatusCode.NOT_FOUND, "COUNTER_NOT_FOUND")
    error = denied(
        counters.IssueNumbers, pb.IssueNumbersRequest(counter_type=INVOICE), auth(globex)
    )
    assert (error.code, error.info.reason) == (grpc.StatusCode.NOT_FOUND, "COUNTER_NOT_FOUND")
    assert counters.GetCounter(GET, metadata=auth(acme)).current_value == 10


def test_health_and_reflection_need_no_key(channel):
    health = health_pb2_grpc.HealthStub(channel)
    assert (
        health.Check(health_pb2.HealthCheckRequest()).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    served = health.Check(health_pb2.HealthCheckRequest(service="arcus.counters.v1.CounterService"))
    assert served.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    [reply] = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for s in reply.list_services_response.service}
    assert "arcus.counters.v1.CounterService" in names


def test_unknown_method_is_unimplemented(channel, key):
    call = channel.unary_unary("/arcus.counters.v1.CounterService/Nope")
    with pytest.raises(grpc.RpcError) as caught:
        call(b"", metadata=auth(key))
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_a_bug_is_internal_with_error_info_never_unknown(counters, key, monkeypatch):
    from service.counters.service import Counters

    def explode(*args, **kwargs):
        raise RuntimeError("a bug, with a secret in its message")

    monkeypatch.setattr(Counters, "get", explode)
    error = denied(counters.GetCounter, GET, auth(key))
    assert error.code == grpc.StatusCode.INTERNAL
    assert error.info.reason == "INTERNAL"
    assert "secret" not in error.message


def test_a_bug_during_a_batch_fails_it_whole_as_internal_and_writes_nothing(
    counters, key, monkeypatch
):
    """A batch is one transaction: only an item's own bad input is that item's failure."""
    from service.counters.repository import CounterRepository

    def broken(self, changes):
        raise RuntimeError("lost the database mid-batch")

    monkeypatch.setattr(CounterRepository, "record_changes", broken)
    items = [
        pb.AdvanceCounterRequest(counter_type=t, advance_to=3, prefix="X")
        for t in (pb.COUNTER_TYPE_INVOICE, pb.COUNTER_TYPE_PO, pb.COUNTER_TYPE_ORDER)
    ]
    error = denied(
        counters.BatchAdvanceCounters, pb.BatchAdvanceCountersRequest(counters=items), auth(key)
    )
    assert (error.code, error.info.reason) == (grpc.StatusCode.INTERNAL, "INTERNAL")
    assert "database" not in error.message
    assert not counters.ListCounters(pb.ListCountersRequest(), metadata=auth(key)).counters


def test_undecodable_request_is_invalid_argument(channel, key):
    call = channel.unary_unary("/arcus.counters.v1.CounterService/GetCounter")
    with pytest.raises(grpc.RpcError) as caught:
        call(b"\xff\xff\xff", metadata=auth(key))
    error = rich_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.info.reason == "MESSAGE_MALFORMED"


def test_undecodable_request_still_needs_a_key(channel):
    call = channel.unary_unary("/arcus.counters.v1.CounterService/GetCounter")
    with pytest.raises(grpc.RpcError) as caught:
        call(b"\xff\xff\xff")
    assert rich_error(caught.value).code == grpc.StatusCode.UNAUTHENTICATED
