"""RocksDB backend (via ``rocksdict``): the engine FISCO BCOS uses.

A batch goes to the write-ahead log as one record, so a crash keeps all of it or none;
with ``sync=True`` the log is fsynced before :meth:`RocksKV.write` returns.

Snapshots: ``rocksdict`` 0.3.29's ``Snapshot.iter()`` drops the snapshot and iterates the
live database, so a snapshot here is a RocksDB iterator opened at snapshot time instead;
an iterator reads the version of the database it was created on (memtables and files are
pinned until it is released), which is exactly a snapshot's meaning.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator

import rocksdict

from storage.kv import (
    MAX_KEY_LEN,
    PointWrites,
    StorageError,
    WriteBatch,
    check_key,
    check_value,
    key_range,
)

_CHUNK = 256  # pairs read per lock hold when scanning a shared snapshot iterator


def _options() -> rocksdict.Options:
    opts = rocksdict.Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.set_keep_log_file_num(3)  # RocksDB's info LOG files, not the WAL
    return opts


class RocksSnapshot:
    """A consistent read view backed by one pinned iterator (see the module docstring)."""

    def __init__(self, iterator: rocksdict.RdictIter) -> None:
        self._it: rocksdict.RdictIter | None = iterator
        self._lock = threading.Lock()  # the iterator has one cursor; scans take turns

    def _iter(self) -> rocksdict.RdictIter:
        if self._it is None:
            raise StorageError("snapshot is closed")
        return self._it

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            it = self._iter()
            it.seek(key)
            if it.valid() and it.key() == key:
                value: bytes = it.value()
                return value
            return None

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        low, high = key_range(start, end, prefix)
        self._iter()
        return self._chunks(low, high)

    def _chunks(self, low: bytes, high: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """Read a chunk, remember where it ended, re-seek: nested scans cannot disturb us."""
        resume, skip_first = low, False
        while True:
            with self._lock:
                it = self._iter()
                it.seek(resume)
                if skip_first and it.valid() and it.key() == resume:
                    it.next()
                chunk: list[tuple[bytes, bytes]] = []
                while it.valid() and len(chunk) < _CHUNK:
                    key: bytes = it.key()
                    if high is not None and key >= high:
                        break
                    chunk.append((key, it.value()))
                    it.next()
            yield from chunk
            if len(chunk) < _CHUNK:
                return
            resume, skip_first = chunk[-1][0], True

    def close(self) -> None:
        with self._lock:
            self._it = None  # releases the pinned version


class RocksKV(PointWrites):
    """A :class:`~storage.kv.KVStore` in a RocksDB directory."""

    def __init__(self, path: str, *, sync: bool = True) -> None:
        try:
            self._db: rocksdict.Rdict | None = rocksdict.Rdict(path, _options())
        except Exception as exc:  # rocksdict raises plain Exception for I/O and lock errors
            raise StorageError(f"cannot open RocksDB at {path}: {exc}") from exc
        self._write_opts = rocksdict.WriteOptions()
        self._write_opts.sync = sync
        self._snapshots: weakref.WeakSet[RocksSnapshot] = weakref.WeakSet()

    def _live(self) -> rocksdict.Rdict:
        if self._db is None:
            raise StorageError("store is closed")
        return self._db

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._live().get(key)
        return value

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        low, high = key_range(start, end, prefix)
        opts = rocksdict.ReadOptions()
        if high is not None:
            opts.set_iterate_upper_bound(high)
        it = self._live().iter(opts)  # opened now: the scan sees the store as of this call
        it.seek(low)
        return self._drain(it, opts)

    @staticmethod
    def _drain(
        it: rocksdict.RdictIter, opts: rocksdict.ReadOptions
    ) -> Iterator[tuple[bytes, bytes]]:
        """``opts`` is held on purpose: the iterator reads its upper bound from it, and
        rocksdict 0.3.29 does not keep it alive (a freed bound silently cuts scans short)."""
        while it.valid():
            yield it.key(), it.value()
            it.next()

    def write(self, batch: WriteBatch) -> None:
        db = self._live()
        wb = rocksdict.WriteBatch(raw_mode=True)
        put = wb.put
        for key, value in batch.ops:
            if value is None:
                wb.delete(check_key(key))
            elif type(key) is bytes and 0 < len(key) <= MAX_KEY_LEN and type(value) is bytes:
                put(key, value)  # the checks of check_key/check_value, inline
            else:
                put(check_key(key), check_value(value))
        try:
            db.write(wb, self._write_opts)
        except Exception as exc:
            raise StorageError(f"RocksDB write failed: {exc}") from exc

    def snapshot(self) -> RocksSnapshot:
        snap = RocksSnapshot(self._live().iter(rocksdict.ReadOptions()))
        self._snapshots.add(snap)
        return snap

    def close(self) -> None:
        """Release snapshots too: RocksDB stays locked while any iterator is alive."""
        if self._db is None:
            return
        for snap in list(self._snapshots):
            snap.close()
        db, self._db = self._db, None
        try:
            db.close()
        except Exception as exc:  # after a failed write: the files are released all the same
            raise StorageError(f"RocksDB close: {exc}") from exc
