"""Opaque keyset page tokens: the position after the last row of a page, never an OFFSET.

Tokens are signed (HMAC-SHA256 with a secret every replica shares, see db/secrets.py) and
bound to the tenant and the listing they were made for: a token the server did not make,
or changed in any byte, is INVALID_ARGUMENT before anything in it is used.
"""

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from service.auth.keys import Tenant
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


_SIGNATURE_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    """Strict: a character outside the URL-safe alphabet is an error, not skipped (so that
    a token changed in any byte is refused)."""
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


_HALF = 2**32 - 1


class PageTokens:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, kind: str, tenant: Tenant, body: bytes) -> bytes:
        signed = f"{kind}\0{tenant.entity_id}\0{tenant.mode}\0".encode() + body
        return hmac.new(self._secret, signed, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def seal(self, value: int) -> int:
        """`value` (0..2**64-1) under a keyed permutation: a position that must not show
        what it counts (an id shared by every tenant) goes into a token sealed. A
        four-round Feistel network over 32-bit halves, HMAC-SHA256 as its round function."""
        left, right = value >> 32, value & _HALF
        for round_ in range(4):
            left, right = right, left ^ self._round(round_, right)
        return left << 32 | right

    def unseal(self, sealed: int) -> int:
        """The value `seal` sealed; INVALID_ARGUMENT for a number no seal made."""
        if not 0 <= sealed < 2**64:
            raise invalid_page_token()
        left, right = sealed >> 32, sealed & _HALF
        for round_ in reversed(range(4)):
            left, right = right ^ self._round(round_, left), left
        return left << 32 | right

    def _round(self, round_: int, half: int) -> int:
        digest = hmac.new(self._secret, bytes([round_]) + half.to_bytes(4, "big"), hashlib.sha256)
        return int.from_bytes(digest.digest()[:4], "big")

    def encode(self, kind: str, tenant: Tenant, position: Any) -> str:
        body = json.dumps(position, separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self._sign(kind, tenant, body))}"

    def decode(self, kind: str, tenant: Tenant, token: str, position_type: type) -> Any:
        """The position a token encodes (None for no token); INVALID_ARGUMENT for a token
        that `encode(kind, tenant, …)` did not make."""
        if not token:
            return None
        if len(token) > MAX_TOKEN_LENGTH:
            raise invalid_page_token()
        body_text, _, signature_text = token.partition(".")
        try:
            body, signature = _unb64(body_text), _unb64(signature_text)
        except (binascii.Error, ValueError):
            raise invalid_page_token() from None
        if not hmac.compare_digest(signature, self._sign(kind, tenant, body)):
            raise invalid_page_token()
        try:
            position = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise invalid_page_token() from None
        if not isinstance(position, position_type):
            raise invalid_page_token()
        return position


def invalid_page_token() -> InvalidArgument:
    reason = "PAGE_TOKEN_INVALID"
    return InvalidArgument(
        [FieldViolation("page_token", "is not a token from a previous response", reason)]
    )
