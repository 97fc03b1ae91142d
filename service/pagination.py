"""Opaque keyset page tokens: the position after the last row of a page, never an OFFSET."""

import base64
import binascii
import json
from typing import Any

from service.errors import FieldViolation, InvalidArgument, Violations

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_TOKEN_LENGTH = 512  # ours are far shorter


def page_size(requested: int) -> int:
    """0 means the default; above the maximum is clamped to it (AIP-158)."""
    if requested < 0:
        violations = Violations()
        violations.add("page_size", "must not be negative", "PAGE_SIZE_NEGATIVE")
        violations.raise_if_any()
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(kind: str, position: Any) -> str:
    raw = json.dumps({"k": kind, "p": position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(kind: str, token: str, position_type: type) -> Any:
    """The position a token encodes (None for no token); INVALID_ARGUMENT for a token
    that `encode_token(kind, position)` did not make."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_LENGTH:
        raise invalid_page_token()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
        if (
            isinstance(body, dict)
            and body.get("k") == kind
            and isinstance(body.get("p"), position_type)
        ):
            return body["p"]
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        pass
    raise invalid_page_token()


def invalid_page_token() -> InvalidArgument:
    reason = "PAGE_TOKEN_INVALID"
    return InvalidArgument(
        [FieldViolation("page_token", "is not a token from a previous response", reason)]
    )
