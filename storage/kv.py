"""The key-value engine interface every backend implements.

Small on purpose: point reads and writes, an ordered scan, an atomic batch and a read
snapshot are all the ledger schema needs, and all that RocksDB, LMDB or a dict can give
with the same meaning.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class StorageError(RuntimeError):
    """The engine failed (disk full, corrupt file, closed store)."""


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
        self.ops.append((key, value))

    def delete(self, key: bytes) -> None:
        self.ops.append((key, None))

    def __len__(self) -> int:
        return len(self.ops)


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
