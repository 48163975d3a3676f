"""LMDB backend (via ``lmdb``): a copy-on-write B+tree in one memory-mapped file.

A batch is one write transaction; LMDB commits by writing new pages and then flipping a
meta page, so a crash keeps the old tree or the new one, never a mix. ``sync=True``
fsyncs data and meta page at commit. A snapshot is a read transaction (MVCC, no locks);
keep it short, since pages it can see are not reused while it is open.
"""

from __future__ import annotations

from collections.abc import Iterator

import lmdb

from storage.kv import (
    MAX_KEY_LEN,
    PointWrites,
    StorageError,
    WriteBatch,
    check_key,
    check_value,
    key_range,
)

_INITIAL_MAP_SIZE = 1 << 34  # 16 GiB of address space; the file only grows as used


def _cursor_scan(
    txn: lmdb.Transaction[bytes], low: bytes, high: bytes | None, *, own_txn: bool
) -> Iterator[tuple[bytes, bytes]]:
    try:
        cursor = txn.cursor()
        if not cursor.set_range(low):
            return
        for key, value in cursor.iternext(keys=True, values=True):
            if high is not None and key >= high:
                return
            yield key, value
    except lmdb.Error as exc:
        raise StorageError(f"LMDB scan failed: {exc}") from exc
    finally:
        if own_txn:
            txn.abort()


class LmdbSnapshot:
    """A read transaction held open until :meth:`close`."""

    def __init__(self, txn: lmdb.Transaction[bytes]) -> None:
        self._txn: lmdb.Transaction[bytes] | None = txn

    def _live(self) -> lmdb.Transaction[bytes]:
        if self._txn is None:
            raise StorageError("snapshot is closed")
        return self._txn

    def get(self, key: bytes) -> bytes | None:
        if not 0 < len(key) <= MAX_KEY_LEN:
            return None  # cannot be stored, so it is absent (LMDB would raise instead)
        try:
            return self._live().get(key)
        except lmdb.Error as exc:
            raise StorageError(f"LMDB read failed: {exc}") from exc

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        low, high = key_range(start, end, prefix)
        return _cursor_scan(self._live(), low, high, own_txn=False)

    def close(self) -> None:
        if self._txn is not None:
            self._txn.abort()
            self._txn = None


class LmdbKV(PointWrites):
    """A :class:`~storage.kv.KVStore` in an LMDB environment directory."""

    def __init__(self, path: str, *, sync: bool = True) -> None:
        try:
            self._env: lmdb.Environment | None = lmdb.open(
                path, map_size=_INITIAL_MAP_SIZE, sync=sync, metasync=sync, readahead=False
            )
        except lmdb.Error as exc:
            raise StorageError(f"cannot open LMDB at {path}: {exc}") from exc
        self._snapshots: list[LmdbSnapshot] = []

    def _live(self) -> lmdb.Environment:
        if self._env is None:
            raise StorageError("store is closed")
        return self._env

    def get(self, key: bytes) -> bytes | None:
        env = self._live()
        if not 0 < len(key) <= MAX_KEY_LEN:
            return None  # cannot be stored, so it is absent (LMDB would raise instead)
        try:
            with env.begin() as txn:
                return txn.get(key)
        except lmdb.Error as exc:
            raise StorageError(f"LMDB read failed: {exc}") from exc

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        low, high = key_range(start, end, prefix)
        txn = self._live().begin()  # opened now: the scan sees the store as of this call
        return _cursor_scan(txn, low, high, own_txn=True)

    def write(self, batch: WriteBatch) -> None:
        env = self._live()
        for key, value in batch.ops:  # validate first: a bad op must not abort mid-way
            check_key(key)
            if value is not None:
                check_value(value)
        while True:
            try:
                with env.begin(write=True) as txn:
                    for key, value in batch.ops:
                        if value is None:
                            txn.delete(key)
                        else:
                            txn.put(key, value)
                return
            except lmdb.MapFullError:
                env.set_mapsize(env.info()["map_size"] * 2)  # txn aborted; grow and redo
            except lmdb.Error as exc:
                raise StorageError(f"LMDB write failed: {exc}") from exc

    def snapshot(self) -> LmdbSnapshot:
        snap = LmdbSnapshot(self._live().begin())
        self._snapshots = [s for s in self._snapshots if s._txn is not None]
        self._snapshots.append(snap)
        return snap

    def close(self) -> None:
        if self._env is None:
            return
        for snap in self._snapshots:
            snap.close()
        self._env.close()
        self._env = None
