"""The admin CLI and `python -m service serve`, run as separate processes."""

import asyncio
import re
import signal
import socket
import stat

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as pb
from arcus.counters.v1 import counters_pb2_grpc
from sqlalchemy import Engine, select

from service.db import models
from service.server import channel_options
from tests.errors import rich_error
from tests.processes import cli, served
from tests.support import auth, counters_served, local_settings


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def counters_without_key_cache(database):
    """A server that looks every key up on every call, so a revocation shows at once."""
    with counters_served(database, local_settings(key_cache_seconds=0)) as counters:
        yield counters


def test_keys_create_list_revoke(database, counters_without_key_cache, tmp_path):
    counters = counters_without_key_cache
    url = url_of(database)
    created = cli(
        "keys",
        "create",
        "--entity",
        "acme",
        "--scope",
        "counters:read",
        "migration:write",
        "--test",
        cwd=tmp_path,
        DATABASE_URL=url,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("ark_test_ent_") and len(key) == len("ark_test_ent_") + 32
    assert "shown only this once" in created.stderr

    # Only the hash is stored.
    with database.connect() as conn:
        stored = conn.execute(select(models.ApiKey.key_hash, models.ApiKey.hint)).one()
    assert key not in stored and len(stored.key_hash) == 64

    response = counters.AdvanceCounter(
        pb.AdvanceCounterRequest(counter_type=pb.COUNTER_TYPE_INVOICE, advance_to=9, prefix="I"),
        metadata=auth(key),
    )
    assert response.created
    with pytest.raises(grpc.RpcError) as caught:
        counters.IssueNumbers(
            pb.IssueNumbersRequest(counter_type=pb.COUNTER_TYPE_INVOICE), metadata=auth(key)
        )
    error = rich_error(caught.value)
    assert (error.code, error.info.reason) == (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_MISSING")
    assert error.info.metadata["required_scope"] == "counters:write"

    listed = cli("keys", "list", cwd=tmp_path, DATABASE_URL=url)
    assert listed.returncode == 0, listed.stderr
    assert key not in listed.stdout
    assert (
        "acme" in listed.stdout and "active" in listed.stdout and "counters:read" in listed.stdout
    )
    key_id = listed.stdout.splitlines()[1].split()[0]

    revoked = cli("keys", "revoke", key_id, cwd=tmp_path, DATABASE_URL=url)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith(f"revoked API key {key_id} (")
    assert "refuse it within API_KEY_CACHE_SECONDS (5 s here)" in revoked.stderr
    again = cli("keys", "revoke", key_id, cwd=tmp_path, DATABASE_URL=url)
    assert again.returncode == 0, again.stderr
    assert re.fullmatch(
        rf"API key {key_id} \(.*\) of entity 'acme' was already revoked on "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: nothing changed\n",
        again.stdout,
    ), again.stdout
    assert (
        "revoked" in cli("keys", "list", "--entity", "acme", cwd=tmp_path, DATABASE_URL=url).stdout
    )
    with pytest.raises(grpc.RpcError) as caught:
        counters.GetCounter(
            pb.GetCounterRequest(counter_type=pb.COUNTER_TYPE_INVOICE), metadata=auth(key)
        )
    error = rich_error(caught.value)
    assert (error.code, error.info.reason) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REVOKED")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--entity", "acme", "--scope", "counters:nuke"], "unknown scope"),
        (["--entity", "bad entity!", "--scope", "counters:read"], "entity"),
    ],
)
def test_keys_create_refuses_bad_input_and_writes_nothing(database, tmp_path, args, complaint):
    result = cli("keys", "create", *args, cwd=tmp_path, DATABASE_URL=url_of(database))
    assert result.returncode == 2
    assert complaint in result.stderr
    assert result.stdout == ""
    with database.connect() as conn:
        assert conn.execute(select(models.ApiKey.id)).all() == []


def test_revoking_an_unknown_key_fails(database, tmp_path):
    result = cli("keys", "revoke", "999", cwd=tmp_path, DATABASE_URL=url_of(database))
    assert result.returncode == 2
    assert "no API key with id 999" in result.stderr


def test_first_serve_on_the_embedded_default_makes_a_dev_key(tmp_path):
    with served(tmp_path, terminal=True) as server:
        key_file = tmp_path / "var" / "dev-api-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_text().strip()
        assert key.startswith("ark_test_ent_")
        with grpc.insecure_channel(server.address) as channel:
            stub = counters_pb2_grpc.CounterServiceStub(channel)
            response = stub.AdvanceCounter(
                pb.AdvanceCounterRequest(
                    counter_type=pb.COUNTER_TYPE_INVOICE, advance_to=342665, prefix="INV-"
                ),
                metadata=auth(key),
            )
            assert response.counter.next_number == "INV-0342666"
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0  # graceful
        assert key in server.stdout.read_text()  # shown to the newcomer's terminal
        assert key not in server.stderr.read_text()  # never in the logs
        assert '"shutting down' in server.stderr.read_text()  # JSON log lines

    # A second start keeps the data and the key, and makes no new one.
    with served(tmp_path) as server:
        assert (tmp_path / "var" / "dev-api-key").read_text().strip() == key
        with grpc.insecure_channel(server.address) as channel:
            counter = counters_pb2_grpc.CounterServiceStub(channel).GetCounter(
                pb.GetCounterRequest(counter_type=pb.COUNTER_TYPE_INVOICE), metadata=auth(key)
            )
        assert counter.current_value == 342665
    listed = cli("keys", "list", cwd=tmp_path)
    assert len(listed.stdout.splitlines()) == 2  # header and the one dev key
    assert listed.stderr == ""  # no Alembic chatter from the embedded database's migration
    var = tmp_path / "var"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [var, *var.iterdir()]}
    assert modes.pop("var") == 0o700
    assert set(modes.values()) == {0o600}, modes  # the database, its WAL, the dev key
    assert "arcus.sqlite3" in modes


def test_an_existing_database_file_open_to_others_is_made_private(tmp_path):
    (tmp_path / "var").mkdir()
    database = tmp_path / "var" / "arcus.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    assert cli("keys", "list", cwd=tmp_path).returncode == 0
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_without_a_terminal_the_dev_key_is_only_in_its_file(tmp_path):
    with served(tmp_path) as server:
        key = (tmp_path / "var" / "dev-api-key").read_text().strip()
    assert "var/dev-api-key" in server.stdout.read_text()
    assert key not in server.output()


def test_serve_refuses_an_unmigrated_postgresql(tmp_path, postgres_url):
    url = postgres_url.replace("/arcus_test", "/postgres")  # never migrated
    result = cli("serve", cwd=tmp_path, DATABASE_URL=url, GRPC_LISTEN="127.0.0.1:0")
    assert result.returncode != 0
    assert "python -m service migrate" in result.stderr


def test_entities_configure_sets_the_rules_the_service_enforces(database, tmp_path):
    from service.db.uow import UnitOfWork
    from service.entities.store import EntityStore

    url = url_of(database)
    result = cli(
        "entities", "configure", "acme", "--automatic-summaries", "on", "--account-labels", "on",
        "--gl-closed-through", "2024-03-31", "--base-currency", "EUR",
        cwd=tmp_path, DATABASE_URL=url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (
        "automatic-summaries on, account-labels on, gl-closed-through 2024-03-31" in result.stdout
    )
    settings = EntityStore(UnitOfWork(database)).settings("acme")
    assert (settings.ar_automatic_summaries, settings.ar_account_labels) == (True, True)
    assert (str(settings.gl_closed_through), settings.base_currency) == ("2024-03-31", "EUR")
    # Only what is given changes.
    result = cli(
        "entities",
        "configure",
        "acme",
        "--gl-closed-through",
        "none",
        cwd=tmp_path,
        DATABASE_URL=url,
    )
    assert (
        "automatic-summaries on, account-labels on, gl-closed-through none, base-currency EUR"
        in result.stdout
    )
    result = cli(
        "entities", "configure", "acme", "--fiscal-year-start-month", "7",
        "--time-zone", "Europe/Berlin", cwd=tmp_path, DATABASE_URL=url,
    )  # fmt: skip
    assert "fiscal-year-start-month 7, time-zone Europe/Berlin" in result.stdout, result.stderr
    settings = EntityStore(UnitOfWork(database)).settings("acme")
    assert (settings.fiscal_year_start_month, settings.time_zone) == (7, "Europe/Berlin")
    assert settings.base_currency == "EUR"  # the others kept


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["acme", "--gl-closed-through", "2024-02-30"], "gl-closed-through: must be a real date"),
        (["acme", "--base-currency", "euro"], "base-currency: must be an ISO 4217 code"),
        (["bad entity!"], "entity: must be"),
        (["acme", "--fiscal-year-start-month", "13"], "fiscal-year-start-month: must be 1..12"),
        (["acme", "--fiscal-year-start-month", "0"], "fiscal-year-start-month: must be 1..12"),
        (["acme", "--time-zone", "Mars/Olympus_Mons"], "time-zone: must be an IANA time zone"),
        (["acme", "--time-zone", "../../etc/passwd"], "time-zone: must be an IANA time zone"),
        (["acme", "--time-zone", ""], "time-zone: must be an IANA time zone"),
    ],
)
def test_entities_configure_refuses_bad_input(database, tmp_path, args, complaint):
    result = cli("entities", "configure", *args, cwd=tmp_path, DATABASE_URL=url_of(database))
    assert result.returncode == 2
    assert complaint in result.stderr
    with database.connect() as conn:
        assert conn.execute(select(models.Entity.id)).all() == []


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"GRPC_MAX_WORKERS": "abc"}, "GRPC_MAX_WORKERS='abc': must be a whole number >= 1"),
        ({"GRPC_LISTEN": "nope"}, "GRPC_LISTEN='nope': must be HOST:PORT"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD': must be DEBUG"),
        ({"IDEMPOTENCY_SWEEP_SECONDS": "0"}, "IDEMPOTENCY_SWEEP_SECONDS='0'"),
        (
            {"DATABASE_URL": "mysql://x@y/z"},
            "DATABASE_URL='mysql://x@y/z': must be a postgresql://",
        ),
        ({"METRICS_LISTEN": "9090"}, "METRICS_LISTEN='9090': must be HOST:PORT"),
        ({"DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}, "cannot use the database"),
    ],
)
def test_a_bad_setting_fails_fast_in_one_line(tmp_path, env, complaint):
    result = cli("serve", cwd=tmp_path, **env)
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines() == [f"error: {complaint}"] or complaint in result.stderr
    )
    assert len(result.stderr.strip().splitlines()) == 1  # no traceback
    assert not (tmp_path / "var").exists()  # nothing was started or written


def test_every_setting_is_in_serve_help_and_the_readme(tmp_path):
    """One list of settings (service/config.py): `serve --help` prints it, and the README's
    table names every variable in it."""
    from service.config import described
    from tests.processes import ROOT

    result = cli("serve", "--help", cwd=tmp_path)
    assert result.returncode == 0
    readme = (ROOT / "README.md").read_text()
    for variable, default, _ in described():
        assert variable in result.stdout and default in result.stdout, variable
        assert f"`{variable}`" in readme, variable
    assert "OTEL_TRACES_EXPORTER" in result.stdout  # tracing's variables are the SDK's own


def test_serving_on_an_address_in_use_fails_at_start_in_one_line(tmp_path):
    """grpcio would share the port (SO_REUSEPORT) and take part of the traffic unseen."""
    first_dir, second = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second.mkdir()
    with served(first_dir) as first:
        result = cli("serve", cwd=second, GRPC_LISTEN=first.address)
        assert first.process.poll() is None  # the first one serves on
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot listen on {first.address}: Address already in use"
    ]
    assert not (second / "var").exists()  # nothing was made


def test_a_port_another_program_listens_on_is_refused_too(tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        address = f"127.0.0.1:{other.getsockname()[1]}"
        result = cli("serve", cwd=tmp_path, GRPC_LISTEN=address)
    assert (result.returncode, result.stderr.strip()) == (
        2, f"error: cannot listen on {address}: Address already in use",
    )  # fmt: skip


def test_grpc_itself_will_not_share_the_port(server):
    """Should another server take the port between the check and the bind, gRPC's own bind
    fails too: the service's servers do not ask for SO_REUSEPORT."""

    async def bind() -> int:
        other = grpc.aio.server(options=channel_options(local_settings()))
        try:
            return other.add_insecure_port(f"127.0.0.1:{server.port}")
        except RuntimeError:  # newer grpcio raises where older ones returned 0
            return 0

    assert asyncio.run(bind()) == 0
