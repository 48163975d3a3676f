"""The key-value engine interface every backend implements.

Small on purpose: point reads and writes, an ordered scan, an atomic batch and a read
snapshot are all the ledger schema needs, and all that RocksDB, LMDB or a dict can give
with the same meaning.

Contract every backend keeps (tests/storage/test_kv_contract.py checks it on each one):

- keys and values are ``bytes``; keys are non-empty and at most :data:`MAX_KEY_LEN` bytes
  (LMDB's limit, so data moves between backends); anything else is a ``TypeError`` /
  ``ValueError`` raised before anything is written;
- keys are ordered bytewise (``memcmp``), so big-endian numbers scan in numeric order;
- a scan reads one consistent state, as of the call (later writes do not show up in a
  scan already started);
- :meth:`KVStore.write` is atomic, and durable when the store was opened with
  ``sync=True`` (fsync / WAL sync before it returns);
- any use of a closed store or snapshot raises :class:`StorageError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

MAX_KEY_LEN = 511
"""Longest key every backend accepts (LMDB's compiled-in limit)."""


class StorageError(RuntimeError):
    """The engine failed (disk full, corrupt file, closed store)."""


def check_key(key: object) -> bytes:
    """``key`` if it is a valid key, else a typed error (before anything is written)."""
    if not isinstance(key, bytes):
        raise TypeError(f"keys are bytes, not {type(key).__name__}")
    if not 0 < len(key) <= MAX_KEY_LEN:
        raise ValueError(f"key length {len(key)} is outside 1..{MAX_KEY_LEN}")
    return key


def check_value(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"values are bytes, not {type(value).__name__}")
    return value


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key above every key that starts with ``prefix`` (None: no such key)."""
    head = prefix.rstrip(b"\xff")
    if not head:
        return None
    return head[:-1] + bytes([head[-1] + 1])


def key_range(
    start: bytes = b"", end: bytes | None = None, prefix: bytes | None = None
) -> tuple[bytes, bytes | None]:
    """Fold a scan's ``prefix`` into plain ``[low, high)`` bounds (``high`` None: open).

    Every backend scans through this one function, so they agree on the edge cases.
    """
    if prefix is None:
        return start, end
    low = max(start, prefix)
    high = prefix_end(prefix)
    if end is not None and (high is None or end < high):
        high = end
    return low, high


class ReadView(Protocol):
    """Anything that can answer reads: a store or a snapshot of one."""

    def get(self, key: bytes) -> bytes | None: ...

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Pairs in key order with ``start <= key < end``, limited to ``prefix`` when given."""
        ...


class WriteBatch:
    """Puts and deletes applied all together or not at all by :meth:`KVStore.write`."""

    __slots__ = ("ops",)

    def __init__(self) -> None:
        self.ops: list[tuple[bytes, bytes | None]] = []

    def put(self, key: bytes, value: bytes) -> None:
        # the common case tested inline (a block commit makes thousands of puts); anything
        # else gets the full checks and their typed errors
        if type(key) is bytes and 0 < len(key) <= MAX_KEY_LEN and type(value) is bytes:
            self.ops.append((key, value))
        else:
            self.ops.append((check_key(key), check_value(value)))

    def delete(self, key: bytes) -> None:
        self.ops.append((check_key(key), None))

    def __len__(self) -> int:
        return len(self.ops)


class PointWrites:
    """``put`` and ``delete`` as one-operation batches, for engines whose one write path
    is an atomic :meth:`KVStore.write` (so single writes get the same validation)."""

    __slots__ = ()

    def write(self, batch: WriteBatch) -> None:
        raise NotImplementedError

    def put(self, key: bytes, value: bytes) -> None:
        batch = WriteBatch()
        batch.put(key, value)
        self.write(batch)

    def delete(self, key: bytes) -> None:
        batch = WriteBatch()
        batch.delete(key)
        self.write(batch)


class Snapshot(ReadView, Protocol):
    """A consistent read view that later writes do not change; close it when done."""

    def close(self) -> None: ...


class KVStore(ReadView, Protocol):
    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def write(self, batch: WriteBatch) -> None:
        """Apply ``batch`` atomically and durably: after a crash all of it or none of it."""
        ...

    def snapshot(self) -> Snapshot: ...

    def close(self) -> None: ...
