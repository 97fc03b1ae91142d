"""The service behind PgBouncer in transaction pooling mode, which the test starts."""

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from arcus.counters.v1 import counters_pb2_grpc
from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.db.engine import make_engine
from service.server import run_server
from tests.postgres import free_port
from tests.support import auth, local_settings
from tests.tools import missing, run_in_threads

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)
INVOICE = pb.COUNTER_TYPE_INVOICE


def _pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )


@pytest.fixture
def bouncer(database):
    """PgBouncer on a free loopback port, transaction pooling, in front of the test database."""
    binary = _pgbouncer()
    if binary is None:
        missing("pgbouncer is not installed (CI installs it)")
    target = make_url(database.url)
    directory = Path(tempfile.mkdtemp(prefix="arcus-pgbouncer-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # PgBouncer, like PostgreSQL, refuses to run as root
        shutil.chown(directory, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    (directory / "users.txt").write_text(f'"{target.username}" ""\n')
    database_line = (
        f"{target.database} = host={target.host} port={target.port} "
        f"dbname={target.database} user={target.username}"
    )
    (directory / "pgbouncer.ini").write_text(
        f"""[databases]
{database_line}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
pool_mode = transaction
default_pool_size = 10
max_client_conn = 200
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
"""
    )
    for path in directory.iterdir():
        if as_postgres:
            shutil.chown(path, "postgres", "postgres")
    process = subprocess.Popen([*as_postgres, binary, str(directory / "pgbouncer.ini")])
    url = target.set(port=port).render_as_string(hide_password=False)
    deadline = time.monotonic() + 15
    while True:
        try:
            probe = make_engine(url, pool_size=1, prepared_statements=False)
            with probe.connect() as conn:
                conn.execute(text("SELECT 1"))
            probe.dispose()
            break
        except Exception:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=15)
    shutil.rmtree(directory, ignore_errors=True)


def test_the_counter_load_runs_through_pgbouncer_transaction_pooling(bouncer, database, key, proof):
    engine = make_engine(bouncer, pool_size=16, prepared_statements=False)
    with run_server(engine, local_settings(max_workers=16)) as running:
        target = f"127.0.0.1:{running.port}"
        with grpc.insecure_channel(target) as channel:
            counters_pb2_grpc.CounterServiceStub(channel).AdvanceCounter(
                pb.AdvanceCounterRequest(counter_type=INVOICE, advance_to=0, prefix="I"),
                metadata=auth(key),
            )
        issued: list[int] = []
        lock = threading.Lock()

        def client() -> None:
            with grpc.insecure_channel(target) as channel:
                stub = counters_pb2_grpc.CounterServiceStub(channel)
                for _ in range(40):  # well past psycopg's threshold for preparing statements
                    reply = stub.IssueNumbers(
                        pb.IssueNumbersRequest(counter_type=INVOICE), metadata=auth(key)
                    )
                    with lock:
                        issued.append(reply.first_value)

        run_in_threads([client] * 16, timeout=120)  # each ends in time, without raising
    engine.dispose()
    assert sorted(issued) == list(range(1, 16 * 40 + 1))
    proof(f"{len(issued)} IssueNumbers through PgBouncer (transaction pooling): contiguous, unique")
