"""Every setting of the service in one typed object, each with its environment variable and
its one default. `Settings.from_env()` reads them; a bad value stops the service with one
line naming the variable. The server, the database and the CLI all take this object.
"""

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.db.engine import default_database_url

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """A setting that cannot be used; its message names the variable and what it needs."""


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError(raw)
    return value


def _seconds(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError(raw)
    return value


def _address(raw: str) -> str:
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(raw)
    return raw


def _optional_address(raw: str) -> str:
    return _address(raw) if raw else ""


def _database_url(raw: str) -> str:
    if not raw:
        return ""
    try:
        backend = make_url(raw).get_backend_name()
    except ArgumentError:
        raise ValueError(raw) from None
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(raw)
    return raw


def _log_level(raw: str) -> str:
    if raw.upper() not in LOG_LEVELS:
        raise ValueError(raw)
    return raw.upper()


def _on_off(raw: str) -> bool:
    if raw.lower() not in ("on", "off"):
        raise ValueError(raw)
    return raw.lower() == "on"


def _file(raw: str) -> bytes | None:
    """The bytes of the file named by `raw`, or None when it is empty."""
    if not raw:
        return None
    try:
        with open(raw, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise OSError(f"cannot read it ({error.strerror})") from None


def _setting(env: str, default: Any, parse: Callable[[str], Any], needs: str, meaning: str) -> Any:
    """A field of Settings read from `env`: `parse` turns its text into the value (ValueError
    when it cannot); `needs` says what a valid value is, `meaning` what it does."""
    return field(
        default=default, metadata={"env": env, "parse": parse, "needs": needs, "help": meaning}
    )


SECONDS, POSITIVE = "a number of seconds >= 0", "a number of seconds > 0"


@dataclass(frozen=True)
class Settings:
    database_url: str = _setting(
        "DATABASE_URL", "", _database_url, "a postgresql:// or sqlite:/// URL",
        "the database; unset: the embedded SQLite file var/arcus.sqlite3",
    )  # fmt: skip
    prepared_statements: bool = _setting(
        "DATABASE_PREPARED_STATEMENTS", True, _on_off, "on or off",
        "off behind PgBouncer in transaction pooling mode (before 1.21)",
    )  # fmt: skip
    database_timeout_seconds: float = _setting(
        "DATABASE_TIMEOUT_SECONDS", 10.0, _positive_float, POSITIVE,
        "the longest one use of a database connection may take (sooner: the caller's deadline)",
    )  # fmt: skip
    listen: str = _setting(
        "GRPC_LISTEN", "127.0.0.1:50051", _address, "HOST:PORT", "the address to serve on"
    )
    # Handler threads. Python runs one at a time; more threads waiting on the database
    # only add GIL handoffs: with 8, AdvanceCounter ran 1.2 x and IssueNumbers 1.5 x as
    # fast as with 32 (see BENCHMARKS.md).
    max_workers: int = _setting(
        "GRPC_MAX_WORKERS", 8, _positive_int, "a whole number >= 1",
        "handler threads (and database connections)",
    )  # fmt: skip
    max_concurrent_rpcs: int = _setting(
        "GRPC_MAX_CONCURRENT_RPCS", 256, _positive_int, "a whole number >= 1",
        "calls in flight; past it a call is refused at once with RESOURCE_EXHAUSTED",
    )  # fmt: skip
    grace_seconds: float = _setting(
        "GRPC_GRACE_SECONDS", 10.0, _seconds, SECONDS,
        "on SIGTERM, how long calls in flight get to finish",
    )  # fmt: skip
    keepalive_seconds: float = _setting(
        "GRPC_KEEPALIVE_SECONDS", 60.0, _positive_float, POSITIVE,
        "a connection silent this long is pinged; unanswered for 20 s, it is closed",
    )  # fmt: skip
    max_connection_idle_seconds: float = _setting(
        "GRPC_MAX_CONNECTION_IDLE_SECONDS", 300.0, _positive_float, POSITIVE,
        "a connection without calls for this long is closed",
    )  # fmt: skip
    max_connection_age_seconds: float = _setting(
        "GRPC_MAX_CONNECTION_AGE_SECONDS", 1800.0, _positive_float, POSITIVE,
        "connections are recycled at this age",
    )  # fmt: skip
    max_connection_age_grace_seconds: float = _setting(
        "GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS", 30.0, _seconds, SECONDS,
        "calls still running on a recycled connection get this long",
    )  # fmt: skip
    handshake_seconds: float = _setting(
        "GRPC_HANDSHAKE_SECONDS", 10.0, _positive_float, POSITIVE,
        "a connection must finish its HTTP/2 (and TLS) handshake within this",
    )  # fmt: skip
    health_probe_seconds: float = _setting(
        "HEALTH_PROBE_SECONDS", 1.0, _positive_float, POSITIVE,
        "how often health asks the database; NOT_SERVING while it does not answer",
    )  # fmt: skip
    health_probe_timeout_seconds: float = _setting(
        "HEALTH_PROBE_TIMEOUT_SECONDS", 2.0, _positive_float, POSITIVE,
        "how long the database has to answer health's probe",
    )  # fmt: skip
    tls_cert: bytes | None = _setting(
        "TLS_CERT_FILE", None, _file, "a readable PEM file", "serve TLS with this certificate"
    )
    tls_key: bytes | None = _setting(
        "TLS_KEY_FILE", None, _file, "a readable PEM file", "the certificate's private key"
    )
    tls_client_ca: bytes | None = _setting(
        "TLS_CLIENT_CA_FILE", None, _file, "a readable PEM file",
        "clients must present a certificate this CA signed (mutual TLS)",
    )  # fmt: skip
    metrics_listen: str = _setting(
        "METRICS_LISTEN", "", _optional_address, "HOST:PORT or empty",
        "serve Prometheus /metrics here; empty: off",
    )  # fmt: skip
    key_cache_seconds: float = _setting(
        "API_KEY_CACHE_SECONDS", 5.0, _seconds, SECONDS,
        "how long a looked-up key is remembered: the longest a revoked key keeps working",
    )  # fmt: skip
    idempotency_sweep_seconds: float = _setting(
        "IDEMPOTENCY_SWEEP_SECONDS", 600.0, _positive_float, POSITIVE,
        "how often idempotency records past 24 hours are purged",
    )  # fmt: skip
    log_level: str = _setting(
        "LOG_LEVEL", "INFO", _log_level, " or ".join(LOG_LEVELS), "DEBUG, INFO, WARNING or ERROR"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        values = {}
        for spec in settings_fields():
            env, parse = spec.metadata["env"], spec.metadata["parse"]
            if env not in environ:
                continue
            raw = environ[env]
            try:
                values[spec.name] = parse(raw)
            except ValueError:
                raise ConfigError(f"{env}={raw!r}: must be {spec.metadata['needs']}") from None
            except OSError as error:
                raise ConfigError(f"{env}={raw!r}: {error}") from None
        return cls(**values).checked()

    def checked(self) -> "Settings":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("TLS_CERT_FILE and TLS_KEY_FILE: set both or neither")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ConfigError("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE")
        return self

    @property
    def embedded(self) -> bool:
        """No DATABASE_URL: the embedded SQLite file under ./var."""
        return not self.database_url

    @property
    def database(self) -> str:
        """The database URL to use."""
        return self.database_url or default_database_url()


def settings_fields() -> Iterator[Any]:
    return (spec for spec in fields(Settings) if "env" in spec.metadata)


def described() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) of every setting, for `serve --help`."""
    rows = []
    for spec in settings_fields():
        default = spec.default
        if isinstance(default, bool):
            shown = "on" if default else "off"
        elif default is None or default is MISSING:
            shown = "unset"
        elif isinstance(default, float):
            shown = f"{default:g}"
        else:
            shown = str(default)
        rows.append((spec.metadata["env"], shown, spec.metadata["help"]))
    return rows
