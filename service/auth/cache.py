"""Key lookups remembered for a few seconds, so most calls skip that database read.

The price is a bounded delay: a key revoked while a server remembers it keeps working
on that server for at most `ttl` seconds (API_KEY_CACHE_SECONDS). Unknown
keys are never remembered, so a key works on every server as soon as it is created.
"""

import time
from collections.abc import Callable

from service.auth.keys import ApiKeyRecord, Principal, hash_key, parse_bearer, principal_for

FindByHash = Callable[[str], ApiKeyRecord | None]
MAX_ENTRIES = 10_000  # keys in use at once are far fewer; past this, start afresh


class KeyCache:
    def __init__(
        self,
        find_by_hash: FindByHash,
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._find = find_by_hash
        self._ttl = ttl
        self._monotonic = monotonic
        # key hash -> (record, when it expires). Plain dict reads and writes are atomic
        # under the GIL; two threads missing at once both read, which is harmless.
        self._entries: dict[str, tuple[ApiKeyRecord, float]] = {}

    def authenticate(self, authorization: list[str]) -> Principal:
        """The principal behind `authorization` metadata values, or UNAUTHENTICATED."""
        return principal_for(self.find(hash_key(parse_bearer(authorization))))

    def find(self, key_hash: str) -> ApiKeyRecord | None:
        now = self._monotonic()
        remembered = self._entries.get(key_hash)
        if remembered is not None and now < remembered[1]:
            return remembered[0]
        record = self._find(key_hash)
        if record is None or self._ttl <= 0:
            self._entries.pop(key_hash, None)
            return record
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key_hash] = (record, now + self._ttl)
        return record
