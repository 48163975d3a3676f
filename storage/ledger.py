"""The ledger schema: blocks, indexes, receipts, state and meta over any KVStore.

It stores bytes by hashes and numbers and knows nothing of transaction or block types
(those live in ``node/``). Key layout (one distinct first byte per key space, numbers as
8-byte big-endian so they scan in order; docs/storage.md has the same table)::

    b"b" + u64(number)   -> block bytes
    b"n" + u64(number)   -> block hash
    b"h" + block_hash    -> u64(number)
    b"t" + tx_hash       -> u64(number) + u32(index in block) + b"\x01" + receipt bytes
    b"r" + tx_hash       -> receipt bytes (stores written before the receipt moved into
                            the "t" entry, whose "t" values are the 12 location bytes)
    b"s" + state_key     -> state value (state keys: 1..MAX_STATE_KEY_LEN bytes)
    b"m" + name (UTF-8)  -> meta value (callers' own records, e.g. consensus view)
    b"c" + b"head"       -> u64(number) + block_hash + state_root
    b"c" + b"txcount"    -> u64(total transactions in blocks 0..head)
    b"c" + b"failedtxcount" -> u64(those of them whose receipt status is not 0)

A block and everything it implies (indexes, receipts, state writes, head, tx counts and
optional meta) go in ONE atomic batch, so after a crash the store is exactly at some
committed head: no block without its receipts, no state ahead of its block.

One writer at a time (the node's commit path); readers may run on any thread.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Self

from storage.kv import (
    MAX_KEY_LEN,
    KVStore,
    ReadView,
    Snapshot,
    StorageError,
    WriteBatch,
    check_value,
    key_range,
    prefix_end,
)

HASH_LEN = 32

P_BLOCK = b"b"
P_HASH_BY_NUMBER = b"n"
P_NUMBER_BY_HASH = b"h"
P_TX = b"t"
P_RECEIPT = b"r"
P_STATE = b"s"
P_META = b"m"
K_HEAD = b"chead"
MAX_STATE_KEY_LEN = MAX_KEY_LEN - len(P_STATE)
"""Longest state key the ledger can store (510): it lives under ``P_STATE + key`` in a KV
store whose keys stop at :data:`storage.kv.MAX_KEY_LEN`. :class:`storage.overlay.StateOverlay`
refuses a longer write, so execution never produces a block the ledger cannot commit."""
K_TX_COUNT = b"ctxcount"
K_FAILED_TX_COUNT = b"cfailedtxcount"

_U64 = struct.Struct(">Q")
_TX_LOC = struct.Struct(">QI")
_TX_ENTRY = struct.Struct(">QIB")
"""A ``b"t"`` value's head: the location and the byte 1, the receipt after it (one put per
transaction, not two); a 12-byte value is an older store's, whose receipt is under ``b"r"``."""


class LedgerError(ValueError):
    """A commit or meta write the ledger refuses; nothing was written."""


class BlockOrderError(LedgerError):
    """The block's number is not head + 1 (0 on an empty ledger)."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(f"expected block {expected}, got block {got}")
        self.expected = expected
        self.got = got


@dataclass(frozen=True, slots=True)
class Head:
    """The last committed block."""

    number: int
    block_hash: bytes
    state_root: bytes

    def encode(self) -> bytes:
        return _U64.pack(self.number) + self.block_hash + self.state_root

    @classmethod
    def decode(cls, raw: bytes) -> Head:
        if len(raw) != 8 + 2 * HASH_LEN:
            raise StorageError(f"corrupt head record ({len(raw)} bytes)")
        return cls(_U64.unpack_from(raw)[0], raw[8 : 8 + HASH_LEN], raw[8 + HASH_LEN :])


@dataclass(frozen=True, slots=True)
class BlockCommit:
    """Everything one block writes; ``receipts[i]`` belongs to ``tx_hashes[i]``.

    ``state_writes`` is the block's write set (``None`` deletes a key), normally
    ``StateOverlay.write_set()``; ``state_root`` is the root after it (see
    :func:`storage.state_root.next_state_root`). ``meta`` lets a caller update its own
    records in the same batch, e.g. clear a prepared certificate as the block lands.
    ``failed_txs`` is how many of the block's receipts have a non-zero status (the ledger
    stores receipts as bytes and cannot tell); it feeds the failed-transaction counter.
    """

    number: int
    block_hash: bytes
    block: bytes
    tx_hashes: Sequence[bytes]
    receipts: Sequence[bytes]
    state_writes: Sequence[tuple[bytes, bytes | None]]
    state_root: bytes
    meta: Sequence[tuple[str, bytes | None]] = ()
    failed_txs: int = 0


def _meta_key(name: str) -> bytes:
    if not isinstance(name, str) or not name:
        raise LedgerError("meta names are non-empty strings")
    return P_META + name.encode()


class StateView:
    """The state key space of a ledger as a ``ReadView`` (keys without the ``s`` prefix).

    It is what an executor's :class:`~storage.overlay.StateOverlay` reads through to.
    """

    __slots__ = ("_view",)

    def __init__(self, view: ReadView) -> None:
        self._view = view

    def get(self, key: bytes) -> bytes | None:
        return self._view.get(P_STATE + key)

    def scan(
        self, start: bytes = b"", end: bytes | None = None, *, prefix: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        low, high = key_range(start, end, prefix)
        outer_high = prefix_end(P_STATE) if high is None else P_STATE + high
        cut = len(P_STATE)
        return ((k[cut:], v) for k, v in self._view.scan(P_STATE + low, outer_high))


STATE_CACHE_ENTRIES = 1 << 16
"""State values a live :class:`LedgerStore` keeps in memory (about 10 MB at most)."""

_MISSING = object()


class CachedStateView(StateView):
    """:class:`StateView` of a live :class:`LedgerStore`, with a read cache the store keeps
    equal to what it committed: every commit writes its state changes into it after the
    batch is written, and nothing else writes state. A block's execution reads each key it
    touches from here (a dict lookup) instead of through the KV engine (~1 us on RocksDB).
    Snapshots read the engine directly."""

    __slots__ = ("_cache",)

    def __init__(self, view: ReadView, cache: dict[bytes, bytes | None]) -> None:
        super().__init__(view)
        self._cache = cache

    def get(self, key: bytes) -> bytes | None:
        if type(key) is not bytes:
            return self._view.get(P_STATE + key)
        cache = self._cache
        value = cache.get(key, _MISSING)
        if value is _MISSING:
            value = self._view.get(P_STATE + key)
            if len(cache) >= STATE_CACHE_ENTRIES:
                cache.clear()
            cache[key] = value
        return value  # type: ignore[return-value]


class LedgerReader:
    """Read-side queries over any view: the live store or a snapshot of it."""

    def __init__(self, view: ReadView) -> None:
        self._view = view
        self.state = StateView(view)

    def head(self) -> Head | None:
        raw = self._view.get(K_HEAD)
        return None if raw is None else Head.decode(raw)

    def total_tx_count(self) -> int:
        raw = self._view.get(K_TX_COUNT)
        return 0 if raw is None else int(_U64.unpack(raw)[0])

    def total_failed_tx_count(self) -> int:
        """Committed transactions whose receipt status is not 0 (FISCO's failedTxSum)."""
        raw = self._view.get(K_FAILED_TX_COUNT)
        return 0 if raw is None else int(_U64.unpack(raw)[0])

    def block_by_number(self, number: int) -> bytes | None:
        if not 0 <= number < 1 << 64:
            return None
        return self._view.get(P_BLOCK + _U64.pack(number))

    def hash_by_number(self, number: int) -> bytes | None:
        if not 0 <= number < 1 << 64:
            return None
        return self._view.get(P_HASH_BY_NUMBER + _U64.pack(number))

    def number_by_hash(self, block_hash: bytes) -> int | None:
        raw = self._view.get(P_NUMBER_BY_HASH + block_hash)
        return None if raw is None else int(_U64.unpack(raw)[0])

    def block_by_hash(self, block_hash: bytes) -> bytes | None:
        number = self.number_by_hash(block_hash)
        return None if number is None else self.block_by_number(number)

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        """``(block number, index in block)`` of a committed transaction."""
        raw = self._view.get(P_TX + tx_hash)
        if raw is None:
            return None
        number, index = _TX_LOC.unpack_from(raw)
        return int(number), int(index)

    def receipt(self, tx_hash: bytes) -> bytes | None:
        raw = self._view.get(P_TX + tx_hash)
        if raw is None:
            return None
        if len(raw) > _TX_LOC.size:
            return raw[_TX_ENTRY.size :]
        return self._view.get(P_RECEIPT + tx_hash)  # written by an older version

    def get_meta(self, name: str) -> bytes | None:
        return self._view.get(_meta_key(name))


class LedgerSnapshot(LedgerReader):
    """A consistent ledger as of :meth:`LedgerStore.snapshot` (head, blocks, state agree)."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__(snapshot)
        self._snapshot = snapshot

    def close(self) -> None:
        self._snapshot.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LedgerStore(LedgerReader):
    """The ledger on a :class:`~storage.kv.KVStore`; head and tx counts are cached.

    A store written before the failed-transaction counter existed has blocks and no
    counter: :attr:`needs_failed_tx_backfill` is then true, the counter is neither read
    nor written, and whoever can read receipts (``node.ledger.chain.Chain`` at open)
    computes it once and hands it to :meth:`backfill_failed_tx_count`.
    """

    def __init__(self, kv: KVStore) -> None:
        super().__init__(kv)
        self._kv = kv
        self._state_cache: dict[bytes, bytes | None] = {}
        self.state = CachedStateView(kv, self._state_cache)
        self._lock = threading.Lock()  # serialises writers; readers never take it
        self._head = super().head()
        self._tx_count = super().total_tx_count()
        self._failed_count: int | None = super().total_failed_tx_count()
        if self._head is not None and kv.get(K_FAILED_TX_COUNT) is None:
            self._failed_count = None  # an older store with blocks: unknown until backfilled

    @property
    def kv(self) -> KVStore:
        return self._kv

    def head(self) -> Head | None:
        return self._head

    def total_tx_count(self) -> int:
        return self._tx_count

    def total_failed_tx_count(self) -> int:
        """As :meth:`LedgerReader.total_failed_tx_count`; 0 until an older store is
        backfilled (see :attr:`needs_failed_tx_backfill`)."""
        return self._failed_count or 0

    @property
    def needs_failed_tx_backfill(self) -> bool:
        """The store has blocks but no failed-transaction counter (written before it)."""
        return self._failed_count is None

    def backfill_failed_tx_count(self, head: Head, failed: int) -> None:
        """Record ``failed`` as the failed-transaction count of blocks 0..``head``.

        Raises :class:`LedgerError` (writing nothing) unless the counter is missing and
        ``head`` is still the head, so a count taken from an older head cannot land.
        """
        if type(failed) is not int or not 0 <= failed <= self._tx_count:
            raise LedgerError(f"failed tx count {failed!r} outside 0..{self._tx_count}")
        batch = WriteBatch()
        batch.put(K_FAILED_TX_COUNT, _U64.pack(failed))
        with self._lock:
            if self._failed_count is not None:
                raise LedgerError("the failed tx count is already recorded")
            if head != self._head:
                raise LedgerError("the head moved while the failed tx count was computed")
            self._kv.write(batch)
            self._failed_count = failed

    def commit_block(self, c: BlockCommit) -> None:
        """Write block ``c`` and all it implies in one atomic (and durable) batch.

        Raises :class:`BlockOrderError` unless ``c.number`` is head + 1, and
        :class:`LedgerError` for malformed input; in both cases nothing is written.
        """
        with self._lock:
            expected = 0 if self._head is None else self._head.number + 1
            if c.number != expected:
                raise BlockOrderError(expected, c.number)
            _check_commit(c)
            try:
                batch = _commit_batch(c, self._tx_count, self._failed_count)
            except (TypeError, ValueError) as exc:  # a bad key or value inside the commit
                raise LedgerError(str(exc)) from exc
            self._kv.write(batch)
            cache = self._state_cache
            if len(cache) + len(c.state_writes) > STATE_CACHE_ENTRIES:
                cache.clear()
            cache.update(c.state_writes)
            self._head = Head(c.number, c.block_hash, c.state_root)
            self._tx_count += len(c.tx_hashes)
            if self._failed_count is not None:
                self._failed_count += c.failed_txs

    def put_meta(self, name: str, value: bytes) -> None:
        """Store a named record on its own, atomically and durably (e.g. a PBFT view)."""
        batch = WriteBatch()
        try:
            batch.put(_meta_key(name), value)
        except (TypeError, ValueError) as exc:
            raise LedgerError(str(exc)) from exc
        with self._lock:
            self._kv.write(batch)

    def delete_meta(self, name: str) -> None:
        batch = WriteBatch()
        batch.delete(_meta_key(name))
        with self._lock:
            self._kv.write(batch)

    def snapshot(self) -> LedgerSnapshot:
        return LedgerSnapshot(self._kv.snapshot())


def _commit_batch(c: BlockCommit, tx_count_before: int, failed_before: int | None) -> WriteBatch:
    num = _U64.pack(c.number)
    batch = WriteBatch()
    put = batch.put
    put(P_BLOCK + num, c.block)
    put(P_HASH_BY_NUMBER + num, c.block_hash)
    put(P_NUMBER_BY_HASH + c.block_hash, num)
    # Per transaction one put (location and receipt in one value: each RocksDB entry costs
    # a memtable insert), appended without a call: the key is a one-byte prefix and a
    # 32-byte hash (_check_commit), so only the receipt needs put's check.
    ops = batch.ops
    head = _TX_ENTRY.pack
    number = c.number
    for index, (tx_hash, receipt) in enumerate(zip(c.tx_hashes, c.receipts, strict=True)):
        if type(receipt) is not bytes:
            receipt = bytes(check_value(receipt))  # raises, or takes a bytes subclass
        ops.append((P_TX + tx_hash, head(number, index, 1) + receipt))
    for key, value in c.state_writes:
        state_key = P_STATE + key  # bytes (or a TypeError)
        if value is None:
            batch.delete(state_key)
        elif len(state_key) <= MAX_KEY_LEN and type(value) is bytes:
            ops.append((state_key, value))  # put's inline check
        else:
            put(state_key, value)  # raises, or takes a bytes subclass as put does
    for name, meta_value in c.meta:
        if meta_value is None:
            batch.delete(_meta_key(name))
        else:
            put(_meta_key(name), meta_value)
    put(K_HEAD, Head(c.number, c.block_hash, c.state_root).encode())
    put(K_TX_COUNT, _U64.pack(tx_count_before + len(c.tx_hashes)))
    if failed_before is not None:  # None: an older store not backfilled yet
        put(K_FAILED_TX_COUNT, _U64.pack(failed_before + c.failed_txs))
    return batch


def _check_commit(c: BlockCommit) -> None:
    if len(c.tx_hashes) != len(c.receipts):
        raise LedgerError(f"{len(c.tx_hashes)} tx hashes but {len(c.receipts)} receipts")
    for name, value in (("block_hash", c.block_hash), ("state_root", c.state_root)):
        if not isinstance(value, bytes) or len(value) != HASH_LEN:
            raise LedgerError(f"{name} must be {HASH_LEN} bytes")
    if any(not isinstance(h, bytes) or len(h) != HASH_LEN for h in c.tx_hashes):
        raise LedgerError(f"tx hashes must be {HASH_LEN} bytes")
    if len(set(c.tx_hashes)) != len(c.tx_hashes):
        raise LedgerError("a tx hash appears twice in the block")
    if type(c.failed_txs) is not int or not 0 <= c.failed_txs <= len(c.tx_hashes):
        raise LedgerError(f"failed_txs {c.failed_txs!r} outside 0..{len(c.tx_hashes)}")
