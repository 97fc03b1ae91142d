"""Configuration from environment variables; a bad value stops the service with one line."""

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from service.db.engine import default_database_url

T = TypeVar("T")


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


def _log_level(raw: str) -> str:
    if raw.upper() not in LOG_LEVELS:
        raise ValueError(raw)
    return raw.upper()


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Settings:
    database_url: str
    listen: str
    max_workers: int
    # How often the server purges idempotency records past their 24 hours.
    idempotency_sweep_seconds: float
    log_level: str
    # True when DATABASE_URL is unset: the embedded SQLite file under ./var.
    embedded: bool

    @classmethod
    def from_env(cls) -> "Settings":
        url = os.environ.get("DATABASE_URL", "")
        return cls(
            database_url=url or default_database_url(),
            listen=_setting("GRPC_LISTEN", "127.0.0.1:50051", _address, "HOST:PORT"),
            max_workers=_setting("GRPC_MAX_WORKERS", "32", _positive_int, "a whole number >= 1"),
            idempotency_sweep_seconds=_setting(
                "IDEMPOTENCY_SWEEP_SECONDS", "600", _positive_float, "a number of seconds > 0"
            ),
            log_level=_setting("LOG_LEVEL", "INFO", _log_level, " or ".join(LOG_LEVELS)),
            embedded=not url,
        )
