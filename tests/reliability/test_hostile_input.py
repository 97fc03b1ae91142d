"""Property-based hostile input: arbitrary requests for every RPC, built from the
descriptors, get OK or a well-formed error, never UNKNOWN/INTERNAL, and write nothing
invalid."""

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message_factory import GetMessageClass
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from service.auth.scopes import method_scopes
from service.db import models
from service.server import SERVICES
from tests.conftest import auth
from tests.errors import from_status

WEIRD = [
    "", " ", "0", "-3", "1e5", "12.345", "500", "0.01", "9" * 40, "2024-02-30", "2024-06-13",
    "\x00", "\u202e", "\U0001d518\U0001d52b", "INV-", "ark_live_ent_x", "*", "items",
    "items.txn_amount",
    "payment_information", "state", "customer.id", "1", "18446744073709551616", "NaN",
]  # fmt: skip
TEXT = st.one_of(
    st.sampled_from(WEIRD), st.text(max_size=40), st.text(min_size=1000, max_size=5000)
)
INTS = {
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_ENUM: st.integers(-3, 40),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
}


def message_of(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy:
    """Arbitrary instances of a message: every field maybe set, to anything its type allows."""
    cls = GetMessageClass(descriptor)
    fields = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth > 4 or field.message_type.full_name.startswith("google.protobuf.Timestamp"):
                continue
            value = message_of(field.message_type, depth + 1)
        elif field.type == FieldDescriptor.TYPE_STRING:
            value = TEXT
        elif field.type in INTS:
            value = INTS[field.type]
        else:
            continue
        if field.is_repeated:
            value = st.lists(value, max_size=3 if depth else 4)
        fields[field.name] = st.one_of(st.none(), value)

    def build(values: dict) -> object:
        message = cls()
        for name, value in values.items():
            if value is None:
                continue
            field = descriptor.fields_by_name[name]
            if field.is_repeated:
                getattr(message, name).extend(value)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(message, name).CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    return st.fixed_dictionaries(fields).map(build)


METHODS = {
    f"/{service.full_name}/{method.name}": method.input_type
    for service in SERVICES
    for method in service.methods
}
assert set(METHODS) == set(method_scopes(SERVICES))

# PostgreSQL is the stricter of the two (no NUL in text, typed columns): run there.
pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


def invariants_hold(engine) -> None:  # type: ignore[no-untyped-def]
    """Nothing invalid was written: every advance has lines that add up to its totals."""
    with engine.connect() as conn:
        sums = dict(
            conn.execute(
                select(
                    models.AdvanceLine.advance_id, func.sum(models.AdvanceLine.txn_amount)
                ).group_by(models.AdvanceLine.advance_id)
            ).all()
        )
        for key, total in conn.execute(select(models.Advance.id, models.Advance.txn_total_entered)):
            assert sums.get(key) == total, f"advance {key}: lines {sums.get(key)} != total {total}"
        for value, padding in conn.execute(
            select(models.Counter.current_value, models.Counter.padding)
        ):
            assert value >= 0 and 1 <= padding <= 12


@pytest.mark.parametrize("method", sorted(METHODS))
def test_arbitrary_requests_get_ok_or_a_well_formed_error(channel, key, database, method, proof):
    seen: dict[str, int] = {}

    @settings(
        max_examples=15,
        deadline=None,
        derandomize=True,  # the same examples every run: a failure reproduces
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(message_of(METHODS[method]))
    def one(request):  # type: ignore[no-untyped-def]
        call = channel.unary_unary(method)
        try:
            call(
                request.SerializeToString(),
                metadata=[*auth(key), ("idempotency-key", "")][:2],
                timeout=30,
            )
            seen["OK"] = seen.get("OK", 0) + 1
        except grpc.RpcError as error:
            assert error.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (
                f"{error.code()} {error.details()} for {request}"
            )
            status = rpc_status.from_call(error)
            assert status is not None, f"no google.rpc.Status for {error.code()}"
            from_status(status)  # asserts it carries an ErrorInfo
            seen[error.code().name] = seen.get(error.code().name, 0) + 1

    one()
    invariants_hold(database)
    proof(f"{sum(seen.values())} arbitrary requests: {seen}")


def test_a_megabyte_string_is_refused_cleanly(channel, key, database):
    from arcus.receivables.v1 import advances_pb2 as apb

    method = channel.unary_unary(f"/{SERVICES[1].full_name}/CreateAdvance")
    for size, field, reason in [
        (1024 * 1024, "advance", "ADVANCE_TOO_LARGE"),  # refused before it is parsed
        (512 * 1024, "advance.description", "TEXT_TOO_LONG"),
    ]:
        request = apb.CreateAdvanceRequest(advance=apb.Advance(description="x" * size))
        with pytest.raises(grpc.RpcError) as caught:
            method(request.SerializeToString(), metadata=auth(key))
        error = from_status(rpc_status.from_call(caught.value))
        assert (error.code, error.violations.get(field)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            reason,
        )
