"""Every RPC of both services, found from the descriptors, refuses what it must."""

import logging

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.receivables.v1 import advances_pb2 as apb
from google.protobuf.field_mask_pb2 import FieldMask

from service.auth.scopes import method_scopes
from service.auth.store import KeyStore
from service.db.uow import UnitOfWork
from service.server import SERVICES, all_scopes
from tests.advances import Client, payload
from tests.errors import rich_error
from tests.support import auth

METHODS = method_scopes(SERVICES)  # "/pkg.Service/Method" -> scope


def call(channel, method, request, metadata):
    with pytest.raises(grpc.RpcError) as caught:
        channel.unary_unary(method)(request.SerializeToString(), metadata=metadata)
    return rich_error(caught.value)


def requests_on(owner_objects):
    """For every RPC, a request aimed at the owner's objects (or, for creates and lists,
    one that would show them): what another tenant must never reach."""
    key = owner_objects["advance"]
    invoice = cpb.COUNTER_TYPE_INVOICE
    return {
        "AdvanceCounter": cpb.AdvanceCounterRequest(counter_type=invoice, advance_to=1),
        "BatchAdvanceCounters": cpb.BatchAdvanceCountersRequest(
            counters=[cpb.AdvanceCounterRequest(counter_type=invoice, advance_to=1)]
        ),
        "GetCounter": cpb.GetCounterRequest(counter_type=invoice),
        "ListCounters": cpb.ListCountersRequest(),
        "IssueNumbers": cpb.IssueNumbersRequest(counter_type=invoice),
        "UpdateCounter": cpb.UpdateCounterRequest(
            counter=cpb.Counter(counter_type=invoice, prefix="STOLEN-")
        ),
        "ListCounterEvents": cpb.ListCounterEventsRequest(),
        "VoidNumbers": cpb.VoidNumbersRequest(
            counter_type=invoice, first_value=1, last_value=1, reason="stolen"
        ),
        "CreateAdvance": apb.CreateAdvanceRequest(),
        "BatchCreateAdvances": apb.BatchCreateAdvancesRequest(
            requests=[apb.CreateAdvanceRequest(advance=apb.Advance(advance_number="X"))]
        ),
        "GetAdvance": apb.GetAdvanceRequest(key=key),
        "ListAdvances": apb.ListAdvancesRequest(),
        "UpdateAdvance": apb.UpdateAdvanceRequest(
            advance=apb.Advance(key=key, description="x"),
            update_mask=FieldMask(paths=["description"]),
        ),
        "DeleteAdvance": apb.DeleteAdvanceRequest(key=key),
        "SubmitAdvance": apb.SubmitAdvanceRequest(key=key),
        "ReverseAdvance": apb.ReverseAdvanceRequest(key=key, reversed_date="2024-06-20"),
        "ApplyAdvance": apb.ApplyAdvanceRequest(
            key=key, invoice_number="I", amount="1", applied_date="2024-06-20"
        ),
        "UnapplyAdvance": apb.UnapplyAdvanceRequest(key=key, invoice_number="I"),
    }  # fmt: skip


def test_every_rpc_refuses_missing_bad_and_revoked_keys_and_missing_scopes(
    channel, keys, database, caplog, proof
):
    caplog.set_level(logging.DEBUG)
    store = KeyStore(UnitOfWork(database))
    revoked = keys.create()
    store.revoke(next(r.id for r in store.list_keys() if r.hint[-4:] == revoked[-4:]))
    issued = [revoked]
    checks = 0
    for method, scope in METHODS.items():
        request_type = method.rsplit("/", 1)[1]
        for metadata, reason in [
            ([], "API_KEY_MISSING"),
            ([("authorization", "Bearer not-a-key")], "API_KEY_MALFORMED"),
            ([("authorization", "Bearer ark_live_ent_" + "Z" * 32)], "API_KEY_INVALID"),
            (auth(revoked), "API_KEY_REVOKED"),
        ]:
            error = call(channel, method, cpb.ListCountersRequest(), metadata)
            assert (error.code, error.info.reason) == (grpc.StatusCode.UNAUTHENTICATED, reason), (
                method
            )
            checks += 1
        without = keys.create(scopes=sorted(all_scopes() - {scope}))
        issued.append(without)
        error = call(channel, method, cpb.ListCountersRequest(), auth(without))
        assert (error.code, error.info.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "SCOPE_MISSING",
        ), request_type
        assert error.info.metadata["required_scope"] == scope
        checks += 1
    log_text = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert not [key for key in issued if key in log_text]
    proof(
        f"{len(METHODS)} RPCs x 5 refusals = {checks} checks; {len(issued)} keys, none in the logs"
    )


_ADVANCE_NOT_FOUND = (grpc.StatusCode.NOT_FOUND, "ADVANCE_NOT_FOUND")
_COUNTER_NOT_FOUND = (grpc.StatusCode.NOT_FOUND, "COUNTER_NOT_FOUND")
# How each RPC that fails refuses requests_on(...) from another tenant.
REFUSED_TO_A_STRANGER = {
    "AdvanceCounter": (grpc.StatusCode.INVALID_ARGUMENT, "PREFIX_REQUIRED"),
    "GetCounter": _COUNTER_NOT_FOUND,
    "IssueNumbers": _COUNTER_NOT_FOUND,
    "UpdateCounter": _COUNTER_NOT_FOUND,
    "VoidNumbers": _COUNTER_NOT_FOUND,
    "CreateAdvance": (grpc.StatusCode.INVALID_ARGUMENT, "FIELD_REQUIRED"),
    **dict.fromkeys(
        ["GetAdvance", "UpdateAdvance", "DeleteAdvance", "SubmitAdvance", "ReverseAdvance",
         "ApplyAdvance", "UnapplyAdvance"],
        _ADVANCE_NOT_FOUND,
    ),
}  # fmt: skip


@pytest.mark.parametrize(("entity", "mode"), [("globex", "live"), ("acme", "test")])
def test_no_rpc_reaches_another_tenants_objects(
    channel, keys, database, caplog, proof, entity, mode
):
    caplog.set_level(logging.DEBUG)
    owner_key, stranger_key = keys.create("acme", mode="live"), keys.create(entity, mode=mode)
    owner = Client(channel, owner_key)
    channel.unary_unary("/arcus.counters.v1.CounterService/AdvanceCounter")(
        cpb.AdvanceCounterRequest(
            counter_type=cpb.COUNTER_TYPE_INVOICE, advance_to=500, prefix="A-"
        ).SerializeToString(),
        metadata=auth(owner_key),
    )
    advance = owner.create(payload(state="ADVANCE_STATE_DRAFT"))
    before = owner.get(advance.key)
    table = requests_on({"advance": advance.key})
    assert {m.rsplit("/", 1)[1] for m in METHODS} == set(table)  # no RPC forgotten
    stranger = Client(channel, stranger_key)
    for method in METHODS:
        name = method.rsplit("/", 1)[1]
        request = table[name]
        try:
            raw = channel.unary_unary(method)(
                request.SerializeToString(), metadata=auth(stranger_key)
            )
        except grpc.RpcError as caught:
            error = rich_error(caught)
            # NOT_FOUND on the owner's objects; a create or advance without a prefix
            # fails as it would for anyone: the stranger has no such counter.
            assert (error.code, error.info.reason) == REFUSED_TO_A_STRANGER[name], name
            continue
        # What succeeds acts on the stranger's own data only.
        if name == "ListCounters":
            assert list(cpb.ListCountersResponse.FromString(raw).counters) == []
        elif name == "ListCounterEvents":
            assert list(cpb.ListCounterEventsResponse.FromString(raw).events) == []
        elif name == "ListAdvances":
            assert list(apb.ListAdvancesResponse.FromString(raw).advances) == []
        elif name == "BatchCreateAdvances":
            [created] = apb.BatchCreateAdvancesResponse.FromString(raw).results
            assert created.status.code == 3  # FIELD_REQUIRED, as for anyone
        elif name == "BatchAdvanceCounters":
            [result] = cpb.BatchAdvanceCountersResponse.FromString(raw).results
            assert result.status.code == 3  # PREFIX_REQUIRED: no counter of theirs
        else:
            pytest.fail(f"{name} answered a stranger with {raw!r}")
    assert owner.get(advance.key) == before  # untouched
    counter = channel.unary_unary("/arcus.counters.v1.CounterService/GetCounter")(
        cpb.GetCounterRequest(counter_type=cpb.COUNTER_TYPE_INVOICE).SerializeToString(),
        metadata=auth(owner_key),
    )
    assert cpb.Counter.FromString(counter).current_value == 500
    log_text = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert owner_key not in log_text and stranger_key not in log_text
    assert stranger.ListAdvances(apb.ListAdvancesRequest()).total_size == 0
    proof(f"all {len(table)} RPCs, as {entity}/{mode}: nothing of acme/live reached or changed")
