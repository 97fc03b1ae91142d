"""Row keys a tenant sees (advances, their lines and applications, API keys) are random,
not drawn from a sequence every tenant shares: the gap between two of one tenant's keys
says nothing of how much any other tenant did in between. Rows made before this kept
their keys.

Keys are 16-digit numbers below 2**53, exact in the doubles of JavaScript and of many JSON
libraries; API key ids, in a 32-bit column, have 9 or 10 digits. A collision fails the
insert on the primary key, and the unit of work runs again with new keys (see
db/failures.py).
"""

import os
import secrets
import struct

SMALLEST, LARGEST = 10**15, 2**53 - 1
SMALLEST_KEY_ID, LARGEST_KEY_ID = 10**8, 2**31 - 1


def new_id() -> int:
    return SMALLEST + secrets.randbelow(LARGEST - SMALLEST + 1)


def new_ids(count: int) -> list[int]:
    """`count` keys from one read of the system's randomness (a batch of advances needs
    hundreds). 64 random bits folded onto the range: no key is likelier than another by
    more than 2**-11 of itself, which tells nobody anything."""
    span = LARGEST - SMALLEST + 1
    return [SMALLEST + word % span for word in struct.unpack(f"<{count}Q", os.urandom(8 * count))]


def new_key_id() -> int:
    """An API key's id (api_keys.id is a 32-bit column)."""
    return SMALLEST_KEY_ID + secrets.randbelow(LARGEST_KEY_ID - SMALLEST_KEY_ID + 1)
