"""The one place that turns errors into gRPC statuses (google.rpc.Status with details)."""

import logging

import grpc
from arcus.counters.v1 import counters_pb2
from arcus.receivables.v1 import advances_pb2
from google.protobuf import any_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from service import errors
from service.rpc.convert import enum_value_name

_CODES: dict[type[errors.ServiceError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}

INTERNAL_REASON = "INTERNAL"
# A status travels in trailing metadata, which clients cap (8 KiB by default): report
# the first violations in full and say how many more there were.
MAX_VIOLATIONS_REPORTED = 20
MAX_MESSAGE_CHARS = 1000

log = logging.getLogger(__name__)


def status_code(error: errors.ServiceError) -> grpc.StatusCode:
    for kind in type(error).__mro__:
        if kind in _CODES:
            return _CODES[kind]
    return grpc.StatusCode.INTERNAL


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status_proto(error: errors.ServiceError, default_domain: str) -> status_pb2.Status:
    """google.rpc.Status for a domain error: ErrorInfo always, BadRequest for bad input."""
    info = error_details_pb2.ErrorInfo(
        reason=error.reason,
        domain=error.domain or default_domain,
        metadata={name: _client_name(name, value) for name, value in error.metadata.items()},
    )
    details = [_pack(info)]
    message = error.message
    if isinstance(error, errors.InvalidArgument):
        reported = error.violations[:MAX_VIOLATIONS_REPORTED]
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description, reason=v.reason
                )
                for v in reported
            ]
        )
        details.append(_pack(bad_request))
        message = _cut("; ".join(f"{v.field}: {v.description}" for v in reported))
        if len(error.violations) > len(reported):
            message += f"; and {len(error.violations) - len(reported)} more"
    else:
        message = _cut(message)
    return status_pb2.Status(code=status_code(error).value[0], message=message, details=details)


def status_for(error: Exception, default_domain: str, where: str) -> status_pb2.Status:
    """The status for any error: a domain error as itself, anything else (a bug, a lost
    database) as INTERNAL, logged here and described to the caller by nothing but its code."""
    if isinstance(error, errors.ServiceError):
        return to_status_proto(error, default_domain)
    log.error("unhandled error in %s", where, exc_info=error)
    return internal_status_proto(default_domain)


# Metadata whose values are the domain's names of a proto enum's values ("invoice"), shown
# to clients as the enum value names they send and receive ("COUNTER_TYPE_INVOICE").
_ENUMS: dict[str, EnumTypeWrapper] = {
    "counter_type": counters_pb2.CounterType,
    "reset": counters_pb2.CounterReset,
    "state": advances_pb2.AdvanceState,
    "payment_method": advances_pb2.PaymentMethod,
}


def _client_name(name: str, value: str) -> str:
    enum = _ENUMS.get(name)
    if enum is None:
        return value
    spelled = enum_value_name(enum, value)
    return value if spelled is None else spelled


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[:MAX_MESSAGE_CHARS] + "…"


def internal_status_proto(default_domain: str) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason=INTERNAL_REASON, domain=default_domain)
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message="internal error", details=[_pack(info)]
    )


def ok_status_proto() -> status_pb2.Status:
    return status_pb2.Status(code=code_pb2.OK)


def to_grpc_status(status: status_pb2.Status) -> grpc.Status:
    return rpc_status.to_status(status)
