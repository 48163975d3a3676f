"""A node's ledger, opened read-only from its data directory, for the offline checks.

RocksDB's read-only mode takes no lock and writes nothing, so it can even read the store
of a running node (as of the moment it is opened). Other backends are opened normally
(the checks run after the nodes stopped).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import rocksdict

from node.ledger.block import Block, Receipt
from node.runtime.config import NodeConfig
from storage.backends import open_store
from storage.kv import KVStore, ReadView, key_range
from storage.ledger import LedgerReader


class ReadOnlyRocks:
    """The read half of :class:`storage.rocksdb_kv.RocksKV`, on a read-only handle."""

    def __init__(self, path: str) -> None:
        opts = rocksdict.Options(raw_mode=True)
        self._db = rocksdict.Rdict(path, opts, access_type=rocksdict.AccessType.read_only())

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        low, high = key_range(start, end, prefix)
        opts = rocksdict.ReadOptions()
        if high is not None:
            opts.set_iterate_upper_bound(high)
        it = self._db.iter(opts)
        it.seek(low)
        while it.valid():
            yield it.key(), it.value()
            it.next()
        del opts  # held until here: the iterator reads its bound from it

    def close(self) -> None:
        self._db.close()


@dataclass(slots=True)
class NodeLedger:
    """One node's committed chain as its store holds it."""

    name: str
    reader: LedgerReader
    _view: ReadView

    @property
    def height(self) -> int:
        head = self.reader.head()
        return -1 if head is None else head.number

    def block(self, number: int) -> Block:
        raw = self.reader.block_by_number(number)
        if raw is None:
            raise LookupError(f"{self.name} has no block {number}")
        return Block.decode(raw)

    def block_hash(self, number: int) -> bytes | None:
        return self.reader.hash_by_number(number)

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        raw = self.reader.receipt(tx_hash)
        return None if raw is None else Receipt.decode(raw)


@contextlib.contextmanager
def open_ledger(name: str, home: Path) -> Iterator[NodeLedger]:
    """The ledger in node folder ``home`` (its config says where and which backend)."""
    cfg = NodeConfig.load(home / "config.toml")
    path = str(cfg.path(cfg.data_dir))
    view: ReadOnlyRocks | KVStore
    if cfg.storage_backend == "rocksdb":
        view = ReadOnlyRocks(path)
    else:
        view = open_store(path, cfg.storage_backend)
    try:
        yield NodeLedger(name, LedgerReader(view), view)
    finally:
        view.close()
