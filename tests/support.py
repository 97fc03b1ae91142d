"""Plain helpers the tests share (fixtures live in conftest.py files)."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, cast

import grpc
from arcus.counters.v1 import counters_pb2, counters_pb2_grpc
from sqlalchemy import Engine

from service.config import Settings
from service.server import run_server

# The service's own defaults, but on a free port of the loopback interface.
LOCAL = Settings(listen="127.0.0.1:0")


def local_settings(**overrides: Any) -> Settings:
    return replace(LOCAL, **overrides)


Metadata = tuple[tuple[str, str], ...]


def auth(key: str) -> Metadata:
    return (("authorization", f"Bearer {key}"),)


@contextmanager
def counters_served(
    database: Engine, settings: Settings, **clocks: Any
) -> Iterator[counters_pb2_grpc.CounterServiceStub]:
    """A CounterService stub to a server of its own, run with `settings` (and `clocks`)."""
    with (
        run_server(database, settings, **clocks) as running,
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        yield counters_pb2_grpc.CounterServiceStub(channel)


def counter_type_of(value: int) -> counters_pb2.CounterType:
    """A CounterType by its number (the stubs type enum fields by their enum class)."""
    return cast(counters_pb2.CounterType, value)
