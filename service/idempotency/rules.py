"""Idempotency keys: what a key may be, what makes two requests the same. Pure."""

import hashlib
from datetime import timedelta

from service.errors import FailedPrecondition, Violations

HEADER = "idempotency-key"
REPLAYED_HEADER = "idempotent-replayed"
TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


def check_key(values: list[str]) -> str | None:
    """The idempotency key from metadata values (None when none was sent)."""
    if not values:
        return None
    key = values[0]
    violations = Violations()
    if not key or len(key) > MAX_KEY_LENGTH:
        violations.add(HEADER, f"must be 1..{MAX_KEY_LENGTH} characters", "IDEMPOTENCY_KEY_INVALID")
    elif not (key.isascii() and key.isprintable()) or key != key.strip():
        violations.add(
            HEADER,
            "must be printable ASCII, not starting or ending with a space",
            "IDEMPOTENCY_KEY_INVALID",
        )
    if len(values) > 1:
        violations.add(HEADER, "must be sent once", "IDEMPOTENCY_KEY_INVALID")
    violations.raise_if_any()
    return key


def fingerprint(method: str, request_bytes: bytes) -> str:
    """The same method with the same request, byte for byte (deterministic serialization)."""
    return hashlib.sha256(method.encode() + b"\0" + request_bytes).hexdigest()


def key_reused(key: str) -> FailedPrecondition:
    return FailedPrecondition(
        "IDEMPOTENCY_KEY_REUSED",
        f"idempotency key {key!r} was used with a different request in the last 24 hours",
        metadata={"idempotency_key": key},
    )
