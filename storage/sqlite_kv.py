"""SQLite backend (stdlib ``sqlite3``, WAL mode): works wherever Python does.

One ``WITHOUT ROWID`` table keyed by a BLOB (SQLite compares BLOBs with ``memcmp``, the
order the contract asks for). A batch is one ``BEGIN IMMEDIATE .. COMMIT``. In WAL mode,
``synchronous=FULL`` syncs the WAL at every commit (survives power loss) and ``NORMAL``
syncs only at checkpoints (survives a process crash, not a power cut). A snapshot, and
each scan, is a second connection holding a read transaction open.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator

from storage.kv import PointWrites, StorageError, WriteBatch, check_key, check_value, key_range

_FILE = "kv.sqlite3"


def _connect(path: str, *, sync: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(os.path.join(path, _FILE), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if sync else 'NORMAL'}")
    return conn


def _select(
    conn: sqlite3.Connection, low: bytes, high: bytes | None, *, close_after: bool
) -> Iterator[tuple[bytes, bytes]]:
    """Rows stream from ``conn``'s open read transaction, so the scan stays consistent."""
    try:
        if high is None:
            cur = conn.execute("SELECT k, v FROM kv WHERE k >= ? ORDER BY k", (low,))
        else:
            sql = "SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k"
            cur = conn.execute(sql, (low, high))
        # Not ``yield from``: it would close the cursor on early exit, which raises once
        # the connection is closed.
        for row in cur:  # noqa: UP028
            yield row
    except sqlite3.Error as exc:
        raise StorageError(f"SQLite scan failed: {exc}") from exc
    finally:
        if close_after:
            conn.close()


def _read_connection(path: str) -> sqlite3.Connection:
    """A connection with a read transaction open from now on: a snapshot."""
    try:
        conn = _connect(path, sync=False)
        conn.execute("BEGIN")
        conn.execute("SELECT 1 FROM kv LIMIT 1").fetchall()  # the read starts here
    except sqlite3.Error as exc:
        raise StorageError(f"SQLite snapshot failed: {exc}") from exc
    return conn


class SqliteSnapshot:
    """A second connection with a read transaction open since creation."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError("snapshot is closed")
        return self._conn

    def get(self, key: bytes) -> bytes | None:
        row = self._live().execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        low, high = key_range(start, end, prefix)
        return _select(self._live(), low, high, close_after=False)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # ends the read transaction
            self._conn = None


class SqliteKV(PointWrites):
    """A :class:`~storage.kv.KVStore` in ``<path>/kv.sqlite3``."""

    def __init__(self, path: str, *, sync: bool = True) -> None:
        self._path = path
        self._lock = threading.Lock()  # one connection, shared by threads in turn
        try:
            os.makedirs(path, exist_ok=True)
            self._conn: sqlite3.Connection | None = _connect(path, sync=sync)
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"
            )
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open SQLite store at {path}: {exc}") from exc
        self._snapshots: list[SqliteSnapshot] = []

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError("store is closed")
        return self._conn

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            try:
                row = self._live().execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite read failed: {exc}") from exc
        return None if row is None else bytes(row[0])

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        low, high = key_range(start, end, prefix)
        self._live()
        conn = _read_connection(self._path)  # its own read transaction, closed at the end
        return _select(conn, low, high, close_after=True)

    def write(self, batch: WriteBatch) -> None:
        for key, value in batch.ops:  # validate first: a bad op must not abort mid-way
            check_key(key)
            if value is not None:
                check_value(value)
        with self._lock:
            conn = self._live()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._apply(conn, batch.ops)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite write failed: {exc}") from exc

    @staticmethod
    def _apply(conn: sqlite3.Connection, ops: list[tuple[bytes, bytes | None]]) -> None:
        """Runs of puts and of deletes each go in one ``executemany``, in batch order."""
        i = 0
        while i < len(ops):
            j = i
            deleting = ops[i][1] is None
            while j < len(ops) and (ops[j][1] is None) == deleting:
                j += 1
            if deleting:
                conn.executemany("DELETE FROM kv WHERE k = ?", [(k,) for k, _ in ops[i:j]])
            else:
                conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", ops[i:j])
            i = j

    def snapshot(self) -> SqliteSnapshot:
        self._live()
        snap = SqliteSnapshot(_read_connection(self._path))
        self._snapshots = [s for s in self._snapshots if s._conn is not None]
        self._snapshots.append(snap)
        return snap

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            for snap in self._snapshots:
                snap.close()
            self._conn.close()
            self._conn = None
