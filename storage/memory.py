"""An in-memory :class:`~storage.kv.KVStore` for the simulator and tests.

A dict for point reads plus a sorted key list for ordered scans, bundled as one
*version*. Readers (snapshots and running scans) pin the current version; a write to a
pinned version first copies it, so readers keep reading the old one untouched
(copy-on-write). With no reader open, writes go in place. A batch's new keys are merged
into the list in one sort (Timsort merges the two sorted runs in linear time), not
inserted one by one. Not thread-safe: the simulator and tests drive it from one thread.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

from storage.kv import PointWrites, StorageError, WriteBatch, check_key, check_value, key_range

_FEW = 16  # up to this many new or deleted keys, bisect one by one; beyond, rebuild


class _Version:
    __slots__ = ("data", "keys", "readers")

    def __init__(self, data: dict[bytes, bytes], keys: list[bytes]) -> None:
        self.data = data
        self.keys = keys
        self.readers = 0  # snapshots and unfinished scans holding this version


def _scan(
    version: _Version, start: bytes, end: bytes | None, prefix: bytes | None
) -> Iterator[tuple[bytes, bytes]]:
    """Lazy: walks the pinned version, which no writer changes while it is pinned."""
    low, high = key_range(start, end, prefix)
    data, keys = version.data, version.keys
    i = bisect_left(keys, low)
    while i < len(keys):
        key = keys[i]
        if high is not None and key >= high:
            return
        yield key, data[key]
        i += 1


class _PinnedScan:
    """A scan that holds its version pinned until it ends or is dropped.

    A class, not a generator, because a generator dropped before its first ``next``
    never runs its ``finally`` and would pin the version forever.
    """

    __slots__ = ("_items", "_version")

    def __init__(self, version: _Version, items: Iterator[tuple[bytes, bytes]]) -> None:
        version.readers += 1
        self._version: _Version | None = version
        self._items = items

    def __iter__(self) -> _PinnedScan:
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        try:
            return next(self._items)
        except StopIteration:
            self._unpin()
            raise

    def _unpin(self) -> None:
        if self._version is not None:
            self._version.readers -= 1
            self._version = None

    def __del__(self) -> None:
        self._unpin()


class MemorySnapshot:
    """A frozen view of one version of a :class:`MemoryKV`."""

    __slots__ = ("_version",)

    def __init__(self, version: _Version) -> None:
        self._version: _Version | None = version

    def _live(self) -> _Version:
        if self._version is None:
            raise StorageError("snapshot is closed")
        return self._version

    def get(self, key: bytes) -> bytes | None:
        return self._live().data.get(key)

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        return _scan(self._live(), start, end, prefix)

    def close(self) -> None:
        if self._version is not None:
            self._version.readers -= 1
            self._version = None


class MemoryKV(PointWrites):
    """A :class:`~storage.kv.KVStore` held in RAM; ``write`` is atomic, never durable."""

    __slots__ = ("_closed", "_v")

    def __init__(self) -> None:
        self._v = _Version({}, [])
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("store is closed")

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        return self._v.data.get(key)

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        return _PinnedScan(self._v, _scan(self._v, start, end, prefix))

    def write(self, batch: WriteBatch) -> None:
        self._check_open()
        for key, value in batch.ops:  # validate all first: a bad op must not half-apply
            check_key(key)
            if value is not None:
                check_value(value)
        if self._v.readers:
            self._v = _Version(dict(self._v.data), list(self._v.keys))
        data = self._v.data
        added: set[bytes] = set()
        removed: set[bytes] = set()
        for key, value in batch.ops:
            if value is None:
                if data.pop(key, None) is not None:
                    if key in added:
                        added.discard(key)
                    else:
                        removed.add(key)
            else:
                if key not in data:
                    if key in removed:
                        removed.discard(key)
                    else:
                        added.add(key)
                data[key] = value
        self._reindex(added, removed)

    def _reindex(self, added: set[bytes], removed: set[bytes]) -> None:
        keys = self._v.keys
        if len(removed) > _FEW:
            keys = self._v.keys = [k for k in keys if k not in removed]
        else:
            for key in removed:
                del keys[bisect_left(keys, key)]
        if len(added) > _FEW:
            keys.extend(sorted(added))
            keys.sort()
        else:
            for key in added:
                insort(keys, key)

    def snapshot(self) -> MemorySnapshot:
        self._check_open()
        self._v.readers += 1
        return MemorySnapshot(self._v)

    def close(self) -> None:
        self._closed = True
