"""An in-memory :class:`~storage.kv.KVStore` for the simulator and tests.

A dict for point reads plus a sorted key list for ordered scans. Snapshots are
copy-on-write: taking one is O(1) and shares the current dict and list; the first write
after it copies them, so the snapshot keeps the old ones untouched. The simulator takes
few snapshots and writes in block-sized batches, so at most one copy per block.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

from storage.kv import StorageError, WriteBatch, check_key, check_value, key_range


def _scan(
    data: dict[bytes, bytes],
    keys: list[bytes],
    start: bytes,
    end: bytes | None,
    prefix: bytes | None,
) -> Iterator[tuple[bytes, bytes]]:
    """Eager on purpose: the pairs are taken now, so later writes cannot change the scan."""
    low, high = key_range(start, end, prefix)
    first = bisect_left(keys, low)
    last = len(keys) if high is None else bisect_left(keys, high)
    return iter([(key, data[key]) for key in keys[first:last]])


class MemorySnapshot:
    """A frozen view: its dict and key list are never written again."""

    __slots__ = ("_data", "_keys")

    def __init__(self, data: dict[bytes, bytes], keys: list[bytes]) -> None:
        self._data: dict[bytes, bytes] | None = data
        self._keys = keys

    def _live(self) -> dict[bytes, bytes]:
        if self._data is None:
            raise StorageError("snapshot is closed")
        return self._data

    def get(self, key: bytes) -> bytes | None:
        return self._live().get(key)

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        return _scan(self._live(), self._keys, start, end, prefix)

    def close(self) -> None:
        self._data = None


class MemoryKV:
    """A :class:`~storage.kv.KVStore` held in RAM; ``write`` is atomic, never durable."""

    __slots__ = ("_closed", "_data", "_keys", "_shared")

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []
        self._shared = False  # a snapshot holds the current dict and list
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("store is closed")

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        return self._data.get(key)

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        return _scan(self._data, self._keys, start, end, prefix)

    def put(self, key: bytes, value: bytes) -> None:
        batch = WriteBatch()
        batch.put(key, value)
        self.write(batch)

    def delete(self, key: bytes) -> None:
        batch = WriteBatch()
        batch.delete(key)
        self.write(batch)

    def write(self, batch: WriteBatch) -> None:
        self._check_open()
        for key, value in batch.ops:  # validate all first: a bad op must not half-apply
            check_key(key)
            if value is not None:
                check_value(value)
        if self._shared:
            self._data = dict(self._data)
            self._keys = list(self._keys)
            self._shared = False
        data, keys = self._data, self._keys
        for key, value in batch.ops:
            if value is None:
                if data.pop(key, None) is not None:
                    del keys[bisect_left(keys, key)]
            else:
                if key not in data:
                    insort(keys, key)
                data[key] = value

    def snapshot(self) -> MemorySnapshot:
        self._check_open()
        self._shared = True
        return MemorySnapshot(self._data, self._keys)

    def close(self) -> None:
        self._closed = True
