"""Reading the rich error details a failed call carries."""

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass
class RichError:
    code: grpc.StatusCode
    message: str
    info: error_details_pb2.ErrorInfo
    violations: dict[str, str]  # field -> reason


def from_status(status: status_pb2.Status) -> RichError:
    info = error_details_pb2.ErrorInfo()
    violations: dict[str, str] = {}
    found_info = False
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
            found_info = True
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations.update({v.field: v.reason for v in bad.field_violations})
    assert found_info, f"no ErrorInfo in {status}"
    code = next(c for c in grpc.StatusCode if c.value[0] == status.code)
    return RichError(code, status.message, info, violations)


def rich_error(error: grpc.RpcError) -> RichError:
    """The google.rpc.Status of a failed call; fails the test if it has none."""
    status = rpc_status.from_call(error)
    assert status is not None, f"no google.rpc.Status in {error!r}"
    return from_status(status)
