"""API keys: format, hashing and the principal a key stands for. No I/O here."""

import hashlib
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from service.errors import PermissionDenied, Unauthenticated, Violations

AUTH_DOMAIN = "arcus.auth.v1"
MODES = ("live", "test")
_SECRET_ALPHABET = string.ascii_letters + string.digits
_SECRET_LENGTH = 32  # ~190 bits
_KEY_PATTERN = re.compile(r"ark_(live|test)_ent_[A-Za-z0-9]{32}")
_ENTITY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Tenant:
    """Whose data a call sees: one entity in one mode; live and test never mix."""

    entity_id: str
    mode: str


@dataclass(frozen=True)
class Principal:
    key_id: int
    tenant: Tenant
    scopes: frozenset[str]
    # The call's idempotency-key metadata: recorded with what the call changes.
    idempotency_key: str | None = None

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(
                "SCOPE_MISSING",
                f"the API key lacks the scope {scope!r} this method requires",
                metadata={"required_scope": scope},
                domain=AUTH_DOMAIN,
            )


@dataclass(frozen=True)
class ApiKeyRecord:
    id: int
    hint: str
    entity_id: str
    mode: str
    scopes: tuple[str, ...]
    create_time: datetime
    revoke_time: datetime | None


def generate_key(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(_SECRET_LENGTH))
    return f"ark_{mode}_ent_{secret}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_hint(key: str) -> str:
    """Enough to recognise a key in a listing, far too little to use it."""
    return f"{key[:17]}…{key[-4:]}"


def parse_bearer(values: list[str]) -> str:
    """The API key from `authorization` metadata values, or UNAUTHENTICATED."""
    if not values:
        raise Unauthenticated(
            "API_KEY_MISSING",
            "missing 'authorization: Bearer ark_live_ent_…' metadata",
            domain=AUTH_DOMAIN,
        )
    scheme, _, key = values[0].strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not _KEY_PATTERN.fullmatch(key):
        raise Unauthenticated(
            "API_KEY_MALFORMED",
            "the authorization metadata must be 'Bearer ark_live_ent_…' or 'Bearer ark_test_ent_…'",
            domain=AUTH_DOMAIN,
        )
    return key


def principal_for(record: ApiKeyRecord | None) -> Principal:
    """The principal a presented key stands for, or UNAUTHENTICATED."""
    if record is None:
        raise Unauthenticated("API_KEY_INVALID", "unknown API key", domain=AUTH_DOMAIN)
    if record.revoke_time is not None:
        raise Unauthenticated("API_KEY_REVOKED", "the API key was revoked", domain=AUTH_DOMAIN)
    return Principal(record.id, Tenant(record.entity_id, record.mode), frozenset(record.scopes))


def validate_entity_id(entity_id: str, violations: Violations) -> None:
    if not _ENTITY_PATTERN.fullmatch(entity_id):
        violations.add(
            "entity",
            "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
            "ENTITY_ID_INVALID",
        )


def validate_new_key(entity_id: str, scopes: list[str], known_scopes: frozenset[str]) -> None:
    violations = Violations()
    validate_entity_id(entity_id, violations)
    if not scopes:
        violations.add("scope", "at least one scope is required", "SCOPE_REQUIRED")
    for scope in scopes:
        if scope not in known_scopes:
            violations.add(
                "scope",
                f"unknown scope {scope!r}; known: {', '.join(sorted(known_scopes))}",
                "SCOPE_UNKNOWN",
            )
    violations.raise_if_any()
