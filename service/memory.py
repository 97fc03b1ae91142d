"""What a process remembers to spare itself a database read."""

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memory(Generic[K, V]):
    """A map of at most `limit` entries that forgets everything when full: whatever it
    holds can be read again, so forgetting costs a read, no more (and no eviction order
    to keep up on every call)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self._limit and key not in self._items:
            self._items.clear()
        self._items[key] = value

    def forget(self, key: K) -> None:
        self._items.pop(key, None)
