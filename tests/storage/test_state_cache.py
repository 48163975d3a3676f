"""A live LedgerStore's state reads come from a cache the store keeps equal to what it
committed; every read must equal the engine's own answer, also after deletes, when the
cache is full, and after a failed write."""

from __future__ import annotations

import pytest

from storage import ledger as ledger_module
from storage.kv import StorageError, WriteBatch
from storage.ledger import LedgerStore, StateView
from storage.memory import MemoryKV

from .crash_writer import COUNTER, _account, next_block

KEYS = [_account(i) for i in range(40)] + [COUNTER, b"never/written"]


def engine_reads(kv: MemoryKV) -> list[bytes | None]:
    view = StateView(kv)  # no cache: straight to the engine
    return [view.get(k) for k in KEYS]


def test_cached_reads_equal_the_engine_block_after_block() -> None:
    kv = MemoryKV()
    store = LedgerStore(kv)
    deletes = 0
    for _ in range(150):
        before = [store.state.get(k) for k in KEYS]  # fills the cache, absent keys too
        assert before == engine_reads(kv)
        commit = next_block(store)
        deletes += sum(v is None for _, v in commit.state_writes)
        store.commit_block(commit)
        assert [store.state.get(k) for k in KEYS] == engine_reads(kv)
    assert deletes > 0  # the deleted-key path was exercised
    with store.snapshot() as snap:
        assert type(snap.state) is StateView  # snapshots read the engine
        assert [snap.state.get(k) for k in KEYS] == engine_reads(kv)


def test_a_full_cache_starts_over_and_stays_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "STATE_CACHE_ENTRIES", 8)
    kv = MemoryKV()
    store = LedgerStore(kv)
    for _ in range(60):
        store.commit_block(next_block(store))
        assert [store.state.get(k) for k in KEYS] == engine_reads(kv)
        assert len(store._state_cache) <= 8


class FailingKV(MemoryKV):
    fail = False

    def write(self, batch: WriteBatch) -> None:
        if self.fail:
            raise StorageError("disk full")
        super().write(batch)


def test_a_failed_commit_leaves_the_cache_as_the_engine() -> None:
    kv = FailingKV()
    store = LedgerStore(kv)
    for _ in range(5):
        store.commit_block(next_block(store))
    before = [store.state.get(k) for k in KEYS]
    kv.fail = True
    with pytest.raises(StorageError):
        store.commit_block(next_block(store))
    assert [store.state.get(k) for k in KEYS] == before == engine_reads(kv)


def test_keys_that_are_not_bytes_read_as_before() -> None:
    kv = MemoryKV()
    store = LedgerStore(kv)
    store.commit_block(next_block(store))
    key = COUNTER
    assert store.state.get(bytearray(key)) == StateView(kv).get(key)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.state.get("text")  # type: ignore[arg-type]
