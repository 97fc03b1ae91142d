"""Engine creation: the embedded SQLite default or DATABASE_URL (PostgreSQL via psycopg 3)."""

import contextlib
import math
import os
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from service.db import watchdog
from service.db.watchdog import Watchdog
from service.tracing import trace_statements

DEFAULT_SQLITE_PATH = Path("var") / "arcus.sqlite3"
# A pooled connection idle this long is checked before use (see _ping_after_idle).
IDLE_BEFORE_PING = 1.0  # seconds
CONNECT_TIMEOUT = 3  # seconds to open a connection, the server's answer included
# TCP keepalive on PostgreSQL connections: a peer that silently stopped answering (a
# dropped network, a dead host) is found within IDLE + INTERVAL x COUNT seconds.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 5, 2, 3


def default_database_url() -> str:
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def normalise_url(url: str) -> str:
    """Accept plain postgres:// and postgresql:// URLs and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(
    url: str, pool_size: int = 16, prepared_statements: bool = True, timeout: float | None = None
) -> Engine:
    """`prepared_statements=False` behind a transaction-pooling PgBouncer (before 1.21):
    psycopg otherwise prepares repeated statements on one server connection and runs
    them on another.

    `timeout`: the longest any one use of a connection may take, from checkout to checkin
    (the server's DATABASE_TIMEOUT_SECONDS), or sooner the deadline of the RPC it serves;
    None for no bound (migrations and admin commands, which may rightly run long).
    """
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, pool_size, timeout)
    else:
        engine = _postgresql_engine(url, pool_size, prepared_statements, timeout)
    # A span per statement an RPC runs, once tracing is on (nothing while it is off).
    trace_statements(engine)
    if timeout is not None:
        _TIMEOUTS[engine] = timeout
    return engine


_TIMEOUTS: "weakref.WeakKeyDictionary[Engine, float]" = weakref.WeakKeyDictionary()


def timeout_of(engine: Engine) -> float | None:
    """The bound make_engine put on any one use of the engine's connections, if any."""
    return _TIMEOUTS.get(engine)


def _postgresql_engine(
    url: str, pool_size: int, prepared_statements: bool, timeout: float | None
) -> Engine:
    connect_args: dict[str, object] = {
        "connect_timeout": CONNECT_TIMEOUT,
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE,
        "keepalives_interval": KEEPALIVE_INTERVAL,
        "keepalives_count": KEEPALIVE_COUNT,
    }
    if timeout is not None:
        # Data sent and not acknowledged for this long breaks the connection (Linux).
        connect_args["tcp_user_timeout"] = int(timeout * 1000)
    if not prepared_statements:
        connect_args["prepare_threshold"] = None
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # A database that is down fails calls within seconds instead of hanging them.
        pool_timeout=10,
        connect_args=connect_args,
    )
    if timeout is not None:
        _watch(engine, timeout)
        _server_timeouts(engine, timeout)
    _connect_by_deadline(engine)
    _ping_after_idle(engine)
    return engine


def _connect_by_deadline(engine: Engine) -> None:
    """A new connection waits no longer than the RPC it serves may (libpq counts whole
    seconds, 2 at least), nor than CONNECT_TIMEOUT."""

    @event.listens_for(engine, "do_connect")
    def _bounded_connect(dialect: Any, _record: Any, _cargs: Any, cparams: Any) -> None:
        remaining = watchdog.remaining()
        if remaining is None:
            return
        if remaining <= 0:  # the caller has left: no point in connecting for it
            raise dialect.loaded_dbapi.OperationalError("the call's deadline has passed")
        cparams["connect_timeout"] = max(2, min(CONNECT_TIMEOUT, math.ceil(remaining)))


def _watch(engine: Engine, timeout: float) -> None:
    """From checkout to checkin, a connection is watched (see db/watchdog.py). Registered
    before any other checkout listener, so that the idle ping is bounded too."""
    watchdog = Watchdog(timeout)

    @event.listens_for(engine, "checkout")
    def _watch_from_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        watchdog.watch(record, dbapi_connection)

    @event.listens_for(engine, "checkin")
    def _release_at_checkin(_dbapi_connection: Any, record: Any) -> None:
        watchdog.release(record)


def _server_timeouts(engine: Engine, timeout: float) -> None:
    """PostgreSQL's own bounds, for what the watchdog cannot see: a statement or a lock
    wait cut off on the server, and a transaction left idle (its client frozen) rolled
    back and its locks freed. Set per session when it opens, not as a startup option,
    which a transaction-pooling PgBouncer refuses."""
    milliseconds = int(timeout * 1000)

    @event.listens_for(engine, "connect")
    def _set_timeouts(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        dbapi_connection.execute(
            f"SET statement_timeout = {milliseconds}; "
            f"SET idle_in_transaction_session_timeout = {milliseconds}"
        )
        dbapi_connection.autocommit = autocommit


def _ping_after_idle(engine: Engine) -> None:
    """Stale connections (after a database restart) are found and replaced, not used.

    SQLAlchemy's pool_pre_ping would cost a round trip on every checkout; a connection
    in steady use is known to be alive, so only one idle for IDLE_BEFORE_PING is pinged.
    A connection that dies while busy fails its call with UNAVAILABLE, and SQLAlchemy
    then replaces every connection the pool opened before it.
    """

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_BEFORE_PING:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError("idle connection found dead") from error  # pool retries


def _private_file(path: Path) -> None:
    """The database file readable by its owner alone (it holds key hashes and the ledger),
    made so before SQLite writes to it; its new folders likewise. SQLite gives its WAL and
    shared-memory files the database file's permissions."""
    missing = [folder for folder in reversed(path.parents) if not folder.exists()]
    for folder in missing:
        folder.mkdir(mode=0o700, exist_ok=True)
    if not path.exists():  # an empty file is an empty database
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    if path.stat().st_mode & 0o077:
        with contextlib.suppress(OSError):  # another's file: theirs to guard
            path.chmod(0o600)


def _sqlite_engine(url: str, pool_size: int, timeout: float | None) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        _private_file(Path(database))
    # How long a writer waits for the write lock before SQLITE_BUSY.
    busy_ms = int((timeout or 30) * 1000)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
    )
    if timeout is not None:
        _watch(engine, timeout)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()
        record.info["busy_ms"] = busy_ms

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A wait for the write lock ends by the caller's deadline too: SQLite's busy wait
        # does not heed the watchdog's interrupt, only its own timeout.
        remaining = watchdog.remaining()
        wanted = busy_ms if remaining is None else max(1, min(busy_ms, int(remaining * 1000)))
        if connection.info.get("busy_ms") != wanted:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={wanted}")
            connection.info["busy_ms"] = wanted
        # Writers take the write lock up front: a deferred transaction that reads and
        # then writes can fail with SQLITE_BUSY instead of waiting its turn.
        if connection.get_execution_options().get("read_only"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
