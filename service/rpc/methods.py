"""What the descriptors say about each method, beyond its scope."""

from collections.abc import Iterable

from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.descriptor_pb2 import MethodOptions


def mutating_methods(services: Iterable[ServiceDescriptor]) -> frozenset[str]:
    """Method paths that change state: all but those declaring
    `option idempotency_level = NO_SIDE_EFFECTS` (the reads)."""
    return frozenset(
        f"/{service.full_name}/{method.name}"
        for service in services
        for method in service.methods
        if method.GetOptions().idempotency_level != MethodOptions.NO_SIDE_EFFECTS
    )
