"""Server reflection as tools use it: v1 (buf curl, grpcurl, grpcui ask it first) and
v1alpha, each resolving the services' files and their dependencies, down to the error
details every refusal carries."""

import shutil
import subprocess
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from tests.processes import ROOT

REFLECTION = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")
BUF = ROOT / "tests" / "interop" / "node" / "node_modules" / ".bin" / "buf"


class Reflection:
    """A reflection client over one stream, under either name (the messages are the
    same on the wire)."""

    def __init__(self, channel: grpc.Channel, service: str) -> None:
        self._call = channel.stream_stream(
            f"/{service}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )

    def ask(self, **question: str) -> reflection_pb2.ServerReflectionResponse:
        [answer] = self._call(
            iter([reflection_pb2.ServerReflectionRequest(**question)]), timeout=10
        )
        assert not answer.HasField("error_response"), answer.error_response
        return answer

    def files(self, **question: str) -> Iterator[descriptor_pb2.FileDescriptorProto]:
        answer = self.ask(**question)
        for raw in answer.file_descriptor_response.file_descriptor_proto:
            yield descriptor_pb2.FileDescriptorProto.FromString(raw)


def closure(reflection: Reflection, symbol: str) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """The file defining `symbol` and every file it depends on, followed through
    reflection one dependency at a time, as grpcui and Postman do."""
    files = {f.name: f for f in reflection.files(file_containing_symbol=symbol)}
    wanted = [d for f in list(files.values()) for d in f.dependency]
    while wanted:
        name = wanted.pop()
        if name not in files:
            for found in reflection.files(file_by_filename=name):
                files[found.name] = found
                wanted.extend(found.dependency)
    return files


@pytest.mark.parametrize("service", REFLECTION)
def test_reflection_resolves_each_service_down_to_its_error_details(channel, service):
    reflection = Reflection(channel, service)
    listed = {s.name for s in reflection.ask(list_services="").list_services_response.service}
    assert {"arcus.counters.v1.CounterService", "arcus.receivables.v1.AdvanceService"} <= listed
    assert set(REFLECTION) <= listed

    for name in ("arcus.counters.v1.CounterService", "arcus.receivables.v1.AdvanceService"):
        files = closure(reflection, name)
        messages = {f"{f.package}.{m.name}" for f in files.values() for m in f.message_type}
        assert {"google.rpc.ErrorInfo", "google.rpc.BadRequest", "google.rpc.Status"} <= messages
        assert "arcus/errors/v1/errors.proto" in files


@pytest.mark.parametrize("service", REFLECTION)
def test_reflection_describes_itself_under_both_names(channel, service):
    [file] = Reflection(channel, REFLECTION[0]).files(file_containing_symbol=service)
    package = service.rsplit(".", 1)[0]
    assert file.package == package
    [method] = file.service[0].method
    assert (method.name, method.input_type) == (
        "ServerReflectionInfo", f".{package}.ServerReflectionRequest",
    )  # fmt: skip


def test_buf_curl_calls_a_method_through_v1_reflection_alone(server, key):
    """buf curl with reflection limited to v1, as a tool that knows no v1alpha would."""
    if not BUF.exists() and shutil.which("npm") is None:
        pytest.fail("buf is installed by make test (npm): tests/interop/node")
    result = subprocess.run(
        [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
         "--reflect-protocol", "grpc-v1", "-H", f"authorization: Bearer {key}",
         "-d", '{"counterType": "COUNTER_TYPE_INVOICE", "advanceTo": "41", "prefix": "INV-"}',
         f"http://127.0.0.1:{server.port}/arcus.counters.v1.CounterService/AdvanceCounter"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"nextNumber": "INV-0000042"' in result.stdout
