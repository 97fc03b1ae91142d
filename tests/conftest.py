"""Fixtures: both databases, real servers on port 0, real keys.

Every test that takes `database` (directly or through `server`) runs twice: on an
SQLite file and on PostgreSQL. PostgreSQL comes from TEST_POSTGRES_URL, or from a
throwaway cluster started here when its server binaries are on the machine. With
REQUIRE_POSTGRES=1 a missing PostgreSQL fails the run at its start; with CI=true every
PostgreSQL test fails instead of skipping (tests.tools.missing).
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from arcus.counters.v1 import counters_pb2_grpc
from sqlalchemy import Engine, delete

from service.auth.store import KeyStore
from service.db.engine import make_engine
from service.db.migrate import upgrade
from service.db.models import Base
from service.db.uow import UnitOfWork
from service.server import RunningServer, all_scopes, run_server
from tests import postgres
from tests.advances import Client
from tests.support import LOCAL
from tests.tools import missing

BACKENDS = ("sqlite", "postgresql")
# Every database use in tests is bounded, as the server's are; generous for a loaded machine.
DATABASE_TIMEOUT = 30.0
_state: dict[str, object] = {}
pytest_plugins = ["tests.declared_errors"]


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("TEST_POSTGRES_URL"):
        _state["pg_url"] = os.environ["TEST_POSTGRES_URL"]
        _state["pg_note"] = "PostgreSQL from TEST_POSTGRES_URL"
        return
    bin_dir = postgres.find_bin_dir()
    if bin_dir is None:
        _state["pg_note"] = "PostgreSQL server binaries not found: PostgreSQL tests skipped"
        return
    _state["bin_dir"] = bin_dir
    _state["pg_note"] = "a throwaway cluster, started when a test first needs it"


def _postgres_url() -> str | None:
    """The PostgreSQL to test on: the throwaway cluster is started on first use, so that a
    run of tests/unit alone starts none."""
    if "pg_url" not in _state and "bin_dir" in _state:
        cluster = postgres.start_cluster(_state.pop("bin_dir"))  # type: ignore[arg-type]
        _state["cluster"] = cluster
        _state["pg_url"] = cluster.url
        _state["pg_note"] = f"throwaway cluster {cluster.version} at {cluster.url}"
    url = _state.get("pg_url")
    return None if url is None else str(url)


def pytest_unconfigure(config: pytest.Config) -> None:
    cluster = _state.pop("cluster", None)
    if isinstance(cluster, postgres.Cluster):
        cluster.stop()


def pytest_report_header(config: pytest.Config) -> str:
    return f"postgresql: {_state.get('pg_note')}"


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("REQUIRE_POSTGRES") == "1" and not ({"pg_url", "bin_dir"} & set(_state)):
        raise pytest.UsageError(f"REQUIRE_POSTGRES=1 but {_state.get('pg_note')}")


@pytest.fixture
def postgres_url() -> str:
    """The test PostgreSQL's URL (a missing PostgreSQL skips the test, or fails it in CI)."""
    url = _postgres_url()
    if url is None:
        missing(str(_state.get("pg_note")))
    return url


_proofs: list[str] = []
# Node ids of the test runs whose `database` was PostgreSQL, from their parameters
# (whatever the id looks like: `[postgresql]`, `[/pkg.Service/Method-postgresql]`, ...).
_postgresql_runs: set[str] = set()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("database") == "postgresql":
            _postgresql_runs.add(item.nodeid)


@pytest.fixture
def proof(request: pytest.FixtureRequest):
    """proof("what this test proved, with counts"): listed in the run's summary."""

    def record(line: str) -> None:
        _proofs.append(f"{request.node.nodeid}: {line}")

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _proofs:
        terminalreporter.section("what the reliability tests proved")
        for line in _proofs:
            terminalreporter.write_line(line)
    ran = [
        r
        for key in ("passed", "failed")
        for r in terminalreporter.stats.get(key, [])
        if r.when == "call" and r.nodeid in _postgresql_runs
    ]
    passed = sum(1 for r in ran if r.passed)
    terminalreporter.write_line(
        f"PostgreSQL really used: {passed} of {len(ran)} PostgreSQL test runs passed "
        f"({_state.get('pg_note')})"
    )


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Engine]]:
    """One migrated engine per backend, made on first use."""
    made: dict[str, Engine] = {}
    yield made
    for engine in made.values():
        engine.dispose()


def _engine(engines: dict[str, Engine], backend: str, tmp: Path) -> Engine:
    if backend not in engines:
        if backend == "sqlite":
            url = f"sqlite:///{tmp / 'arcus-test.sqlite3'}"
        else:
            found = _postgres_url()
            if found is None:
                missing(str(_state.get("pg_note")))
            url = found
        engine = make_engine(url, pool_size=40, timeout=DATABASE_TIMEOUT)
        upgrade(engine)
        engines[backend] = engine
    return engines[backend]


@pytest.fixture(params=BACKENDS)
def database(
    request: pytest.FixtureRequest,
    engines: dict[str, Engine],
    tmp_path_factory: pytest.TempPathFactory,
) -> Engine:
    """A migrated, empty database: SQLite in one run of the test, PostgreSQL in the other."""
    engine = _engine(engines, request.param, tmp_path_factory.getbasetemp())
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))
    return engine


@pytest.fixture
def server(database: Engine) -> Iterator[RunningServer]:
    with run_server(database, LOCAL) as running:
        yield running


@pytest.fixture
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


@pytest.fixture
def counters(channel: grpc.Channel) -> counters_pb2_grpc.CounterServiceStub:
    return counters_pb2_grpc.CounterServiceStub(channel)


@pytest.fixture
def client(channel: grpc.Channel, key: str) -> Client:
    """An AdvanceService client of acme/live, with every scope."""
    return Client(channel, key)


@dataclass
class Keys:
    """Makes real API keys in the test database."""

    store: KeyStore

    def create(
        self, entity: str = "acme", scopes: list[str] | None = None, mode: str = "live"
    ) -> str:
        _, key = self.store.create(entity, mode, scopes or sorted(all_scopes()))
        return key


@pytest.fixture
def keys(database: Engine) -> Keys:
    return Keys(KeyStore(UnitOfWork(database)))


@pytest.fixture
def key(keys: Keys) -> str:
    """A live key of entity `acme` with every scope."""
    return keys.create()
