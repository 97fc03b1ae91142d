"""Configuration from environment variables; a bad value stops the service with one line."""

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.db.engine import default_database_url

T = TypeVar("T")

# Defaults of settings that the server's own options share (see server.ServeOptions).
DEFAULT_DATABASE_TIMEOUT_SECONDS = 10.0
DEFAULT_KEEPALIVE_SECONDS = 60.0
DEFAULT_MAX_CONNECTION_IDLE_SECONDS = 300.0
DEFAULT_MAX_CONNECTION_AGE_SECONDS = 1800.0
DEFAULT_MAX_CONNECTION_AGE_GRACE_SECONDS = 30.0


class ConfigError(Exception):
    """A setting that cannot be used; its message names the variable and what it needs."""


def _setting(name: str, default: str, parse: Callable[[str], T], needs: str) -> T:
    raw = os.environ.get(name, default)
    try:
        return parse(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: must be {needs}") from None


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


def _address(raw: str) -> str:
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(raw)
    return raw


def _database_url(raw: str) -> str:
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


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _optional_address(raw: str) -> str:
    return _address(raw) if raw else ""


def _on_off(raw: str) -> bool:
    if raw.lower() not in ("on", "off"):
        raise ValueError(raw)
    return raw.lower() == "on"


def _seconds(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError(raw)
    return value


def _file(name: str) -> bytes | None:
    """The bytes of the file named by `name`, or None when it is unset."""
    path = os.environ.get(name, "")
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise ConfigError(f"{name}={path!r}: cannot read it ({error.strerror})") from None


@dataclass(frozen=True)
class Settings:
    database_url: str
    listen: str
    max_workers: int
    max_concurrent_rpcs: int
    # How often the server purges idempotency records past their 24 hours.
    idempotency_sweep_seconds: float
    log_level: str
    prepared_statements: bool
    grace_seconds: float
    # How long a server remembers a looked-up key (so revocation's greatest delay).
    key_cache_seconds: float
    metrics_listen: str
    # The longest any one use of a database connection may take (server side too).
    database_timeout_seconds: float
    # Connections: keepalive ping after this much silence; closed after this long
    # without calls; recycled at this age, with this grace for calls still running.
    keepalive_seconds: float
    max_connection_idle_seconds: float
    max_connection_age_seconds: float
    max_connection_age_grace_seconds: float
    # PEM bytes of the server certificate and key, and of the CA for client certificates.
    tls_cert: bytes | None
    tls_key: bytes | None
    tls_client_ca: bytes | None
    # True when DATABASE_URL is unset: the embedded SQLite file under ./var.
    embedded: bool

    @classmethod
    def from_env(cls) -> "Settings":
        url = os.environ.get("DATABASE_URL", "")
        return cls(
            database_url=_setting(
                "DATABASE_URL",
                default_database_url(),
                _database_url,
                "a postgresql:// or sqlite:/// URL",
            ),
            listen=_setting("GRPC_LISTEN", "127.0.0.1:50051", _address, "HOST:PORT"),
            max_workers=_setting("GRPC_MAX_WORKERS", "8", _positive_int, "a whole number >= 1"),
            max_concurrent_rpcs=_setting(
                "GRPC_MAX_CONCURRENT_RPCS", "256", _positive_int, "a whole number >= 1"
            ),
            idempotency_sweep_seconds=_setting(
                "IDEMPOTENCY_SWEEP_SECONDS", "600", _positive_float, "a number of seconds > 0"
            ),
            log_level=_setting("LOG_LEVEL", "INFO", _log_level, " or ".join(LOG_LEVELS)),
            prepared_statements=_setting(
                "DATABASE_PREPARED_STATEMENTS", "on", _on_off, "on or off"
            ),
            grace_seconds=_setting(
                "GRPC_GRACE_SECONDS", "10", _seconds, "a number of seconds >= 0"
            ),
            key_cache_seconds=_setting(
                "API_KEY_CACHE_SECONDS", "5", _seconds, "a number of seconds >= 0"
            ),
            database_timeout_seconds=_setting(
                "DATABASE_TIMEOUT_SECONDS",
                str(DEFAULT_DATABASE_TIMEOUT_SECONDS),
                _positive_float,
                "a number of seconds > 0",
            ),
            keepalive_seconds=_setting(
                "GRPC_KEEPALIVE_SECONDS",
                str(DEFAULT_KEEPALIVE_SECONDS),
                _positive_float,
                "a number of seconds > 0",
            ),
            max_connection_idle_seconds=_setting(
                "GRPC_MAX_CONNECTION_IDLE_SECONDS",
                str(DEFAULT_MAX_CONNECTION_IDLE_SECONDS),
                _positive_float,
                "a number of seconds > 0",
            ),
            max_connection_age_seconds=_setting(
                "GRPC_MAX_CONNECTION_AGE_SECONDS",
                str(DEFAULT_MAX_CONNECTION_AGE_SECONDS),
                _positive_float,
                "a number of seconds > 0",
            ),
            max_connection_age_grace_seconds=_setting(
                "GRPC_MAX_CONNECTION_AGE_GRACE_SECONDS",
                str(DEFAULT_MAX_CONNECTION_AGE_GRACE_SECONDS),
                _seconds,
                "a number of seconds >= 0",
            ),
            metrics_listen=_setting("METRICS_LISTEN", "", _optional_address, "HOST:PORT or empty"),
            tls_cert=_file("TLS_CERT_FILE"),
            tls_key=_file("TLS_KEY_FILE"),
            tls_client_ca=_file("TLS_CLIENT_CA_FILE"),
            embedded=not url,
        ).checked()

    def checked(self) -> "Settings":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("TLS_CERT_FILE and TLS_KEY_FILE: set both or neither")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ConfigError("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE")
        return self
