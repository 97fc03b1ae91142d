"""The scope each RPC needs, read from the `(arcus.auth.v1.required_scope)` method option."""

from collections.abc import Iterable

from arcus.auth.v1 import scopes_pb2
from google.protobuf.descriptor import ServiceDescriptor


def method_scopes(services: Iterable[ServiceDescriptor]) -> dict[str, str]:
    """Map of gRPC method path ("/pkg.Service/Method") to its required scope.

    Every method of these services must declare a scope: a method without one
    would otherwise be reachable by any key, so that is refused outright.
    """
    scopes: dict[str, str] = {}
    for service in services:
        for method in service.methods:
            options = method.GetOptions()
            scope: str = options.Extensions[scopes_pb2.required_scope]  # type: ignore[index]
            if not scope:
                raise ValueError(f"{method.full_name} declares no required_scope")
            scopes[f"/{service.full_name}/{method.name}"] = scope
    return scopes
