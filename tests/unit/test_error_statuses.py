"""The one place errors become statuses: ErrorInfo in the client's names, one reason for
several violations."""

from google.rpc import error_details_pb2

from service.errors import FailedPrecondition, FieldViolation, InvalidArgument
from service.rpc.status import to_status_proto


def info_of(error) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    assert to_status_proto(error, "arcus.counters.v1").details[0].Unpack(info)
    return info


def test_metadata_names_enum_values_as_clients_do():
    error = FailedPrecondition(
        "X", "m", metadata={"counter_type": "ar_advance", "state": "partially_applied",
                            "series": "EU", "reset": "fiscal_yearly", "note": "invoice"},
    )  # fmt: skip
    assert dict(info_of(error).metadata) == {
        "counter_type": "COUNTER_TYPE_AR_ADVANCE",
        "state": "ADVANCE_STATE_PARTIALLY_APPLIED",
        "reset": "COUNTER_RESET_FISCAL_YEARLY",
        "series": "EU",  # not an enum
        "note": "invoice",  # not a key that holds one
    }


def test_a_value_no_enum_has_is_shown_as_it_is():
    error = FailedPrecondition("X", "m", metadata={"counter_type": "nonsense", "state": ""})
    assert dict(info_of(error).metadata) == {"counter_type": "nonsense", "state": ""}


def test_violations_of_one_reason_give_that_reason():
    error = InvalidArgument([FieldViolation("a", "is required", "FIELD_REQUIRED"),
                             FieldViolation("b", "is required", "FIELD_REQUIRED")])  # fmt: skip
    info = info_of(error)
    assert (info.reason, dict(info.metadata)) == ("FIELD_REQUIRED", {})


def test_violations_of_several_reasons_name_them_all():
    error = InvalidArgument([
        FieldViolation("a", "is required", "FIELD_REQUIRED"),
        FieldViolation("b", "bad date", "DATE_INVALID"),
        FieldViolation("c", "is required", "FIELD_REQUIRED"),
    ])  # fmt: skip
    info = info_of(error)
    assert (info.reason, dict(info.metadata)) == (
        "INVALID_FIELDS", {"reasons": "FIELD_REQUIRED,DATE_INVALID", "violations": "3"},
    )  # fmt: skip
    assert error.message == "a: is required; b: bad date; c: is required"
