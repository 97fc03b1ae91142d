"""The one place that turns errors into gRPC statuses (google.rpc.Status with details)."""

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from service import errors

_CODES: dict[type[errors.ServiceError], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}

INTERNAL_REASON = "INTERNAL"


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
        metadata=error.metadata,
    )
    details = [_pack(info)]
    if isinstance(error, errors.InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description, reason=v.reason
                )
                for v in error.violations
            ]
        )
        details.append(_pack(bad_request))
    return status_pb2.Status(
        code=status_code(error).value[0], message=error.message, details=details
    )


def internal_status_proto(default_domain: str) -> status_pb2.Status:
    """For a bug: say nothing of its cause to the caller (the log has it)."""
    info = error_details_pb2.ErrorInfo(reason=INTERNAL_REASON, domain=default_domain)
    return status_pb2.Status(
        code=code_pb2.INTERNAL, message="internal error", details=[_pack(info)]
    )


def ok_status_proto() -> status_pb2.Status:
    return status_pb2.Status(code=code_pb2.OK)


def to_grpc_status(status: status_pb2.Status) -> grpc.Status:
    return rpc_status.to_status(status)
