"""The ledger schema on every backend: commit rules, readers, meta, snapshots, reopen."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from storage import (
    GENESIS_STATE_ROOT,
    BlockCommit,
    BlockOrderError,
    Head,
    KVStore,
    LedgerError,
    LedgerStore,
    next_state_root,
)
from storage.kv import WriteBatch
from storage.ledger import K_FAILED_TX_COUNT, K_HEAD, K_TX_COUNT

from .conftest import PERSISTENT, OpenStore


def h(*parts: object) -> bytes:
    return hashlib.sha3_256(repr(parts).encode()).digest()


def block(
    number: int,
    parent_root: bytes,
    txs: int = 3,
    writes: list[tuple[bytes, bytes | None]] | None = None,
) -> BlockCommit:
    if writes is None:
        writes = [(b"acct/%d" % i, b"%d" % (number * 10 + i)) for i in range(txs)]
    return BlockCommit(
        number=number,
        block_hash=h("block", number),
        block=b"block-%d" % number,
        tx_hashes=[h("tx", number, i) for i in range(txs)],
        receipts=[b"receipt-%d-%d" % (number, i) for i in range(txs)],
        state_writes=writes,
        state_root=next_state_root(parent_root, writes),
    )


def commit_chain(ledger: LedgerStore, count: int) -> list[BlockCommit]:
    root, out = GENESIS_STATE_ROOT, []
    for n in range(count):
        c = block(n, root)
        ledger.commit_block(c)
        root = c.state_root
        out.append(c)
    return out


def all_pairs(kv: KVStore) -> list[tuple[bytes, bytes]]:
    return list(kv.scan())


def test_empty_ledger(kv: KVStore) -> None:
    ledger = LedgerStore(kv)
    assert ledger.head() is None
    assert ledger.total_tx_count() == 0
    assert ledger.block_by_number(0) is None
    assert ledger.block_by_number(-1) is None
    assert ledger.hash_by_number(0) is None
    assert ledger.block_by_hash(h("block", 0)) is None
    assert ledger.tx_location(h("tx", 0, 0)) is None
    assert ledger.receipt(h("tx", 0, 0)) is None
    assert list(ledger.state.scan()) == []


def test_commit_and_read_back(kv: KVStore) -> None:
    ledger = LedgerStore(kv)
    chain = commit_chain(ledger, 3)
    last = chain[-1]
    assert ledger.head() == Head(2, last.block_hash, last.state_root)
    assert ledger.total_tx_count() == 9
    for c in chain:
        assert ledger.block_by_number(c.number) == c.block
        assert ledger.block_by_hash(c.block_hash) == c.block
        assert ledger.hash_by_number(c.number) == c.block_hash
        assert ledger.number_by_hash(c.block_hash) == c.number
        for i, (tx_hash, receipt) in enumerate(zip(c.tx_hashes, c.receipts, strict=True)):
            assert ledger.tx_location(tx_hash) == (c.number, i)
            assert ledger.receipt(tx_hash) == receipt
    assert ledger.block_by_number(3) is None
    assert ledger.state.get(b"acct/1") == b"21"
    assert list(ledger.state.scan(prefix=b"acct/")) == [
        (b"acct/0", b"20"),
        (b"acct/1", b"21"),
        (b"acct/2", b"22"),
    ]
    assert list(ledger.state.scan(b"acct/1", b"acct/2")) == [(b"acct/1", b"21")]


def test_every_key_sits_in_a_documented_space(kv: KVStore) -> None:
    ledger = LedgerStore(kv)
    ledger.put_meta("view", b"7")
    commit_chain(ledger, 2)
    counts: dict[bytes, int] = {}
    for key, _ in kv.scan():
        space = key[:1] if key not in (K_HEAD, K_TX_COUNT, K_FAILED_TX_COUNT) else key
        counts[space] = counts.get(space, 0) + 1
    assert counts == {
        b"b": 2, b"n": 2, b"h": 2, b"t": 6, b"s": 3, b"m": 1, K_HEAD: 1, K_TX_COUNT: 1,
        K_FAILED_TX_COUNT: 1,
    }  # fmt: skip


def test_a_tx_entry_holds_its_location_and_receipt(kv: KVStore) -> None:
    """One put per transaction: ``b"t" + hash -> u64(number) u32(index) 0x01 receipt``,
    an empty receipt included (it must not read as an older store's 12-byte entry)."""
    ledger = LedgerStore(kv)
    g = block(0, GENESIS_STATE_ROOT, txs=2)
    g = replace(g, receipts=[b"", b"\x00" * 300])
    ledger.commit_block(g)
    first, second = g.tx_hashes
    assert kv.get(b"t" + first) == (0).to_bytes(8, "big") + (0).to_bytes(4, "big") + b"\x01"
    assert ledger.receipt(first) == b"" and ledger.tx_location(first) == (0, 0)
    assert ledger.receipt(second) == b"\x00" * 300 and ledger.tx_location(second) == (0, 1)
    assert ledger.receipt(h("no such tx")) is None


def test_an_older_stores_separate_receipts_still_read(kv: KVStore) -> None:
    """Stores written before the receipt moved into the "t" entry keep a 12-byte location
    under ``b"t"`` and the receipt under ``b"r"``: both still answer."""
    ledger = LedgerStore(kv)
    commit_chain(ledger, 1)
    old_hash = h("old tx")
    batch = WriteBatch()
    batch.put(b"t" + old_hash, (7).to_bytes(8, "big") + (3).to_bytes(4, "big"))
    batch.put(b"r" + old_hash, b"old receipt")
    kv.write(batch)
    assert ledger.tx_location(old_hash) == (7, 3)
    assert ledger.receipt(old_hash) == b"old receipt"


def test_state_deletes_and_empty_blocks(kv: KVStore) -> None:
    ledger = LedgerStore(kv)
    g = block(0, GENESIS_STATE_ROOT, writes=[(b"a", b"1"), (b"b", b"2")])
    ledger.commit_block(g)
    b1 = block(1, g.state_root, txs=0, writes=[(b"a", None)])
    ledger.commit_block(b1)
    assert ledger.state.get(b"a") is None
    assert list(ledger.state.scan()) == [(b"b", b"2")]
    b2 = block(2, b1.state_root, txs=0, writes=[])
    ledger.commit_block(b2)
    head = ledger.head()
    assert head is not None
    assert head.state_root == b1.state_root  # nothing written: root unchanged
    assert ledger.total_tx_count() == 3


@pytest.mark.parametrize("number", [1, 5, -1])
def test_first_block_must_be_genesis(kv: KVStore, number: int) -> None:
    ledger = LedgerStore(kv)
    with pytest.raises(BlockOrderError) as err:
        ledger.commit_block(replace(block(0, GENESIS_STATE_ROOT), number=number))
    assert (err.value.expected, err.value.got) == (0, number)
    assert all_pairs(kv) == []


@pytest.mark.parametrize("number", [0, 1, 3, 4])
def test_out_of_order_blocks_are_refused(kv: KVStore, number: int) -> None:
    ledger = LedgerStore(kv)
    chain = commit_chain(ledger, 2)
    before = all_pairs(kv)
    with pytest.raises(BlockOrderError, match="expected block 2"):
        ledger.commit_block(replace(chain[-1], number=number, block_hash=h("other")))
    assert all_pairs(kv) == before
    ledger.commit_block(block(2, chain[-1].state_root))  # the right one still goes in


@pytest.mark.parametrize(
    "change",
    [
        {"receipts": [b"only one"]},
        {"block_hash": b"short"},
        {"state_root": bytes(31)},
        {"tx_hashes": [b"x" * 31, h(1), h(2)]},
        {"tx_hashes": [h(1), h(1), h(2)]},
        {"receipts": [b"r", "not bytes", b"r"]},
        {"receipts": [b"r", b"r", None]},
        {"state_writes": [(b"k", b"v"), (b"k" * 511, b"v")]},
        {"block": None},
        {"state_writes": [("str key", b"v")]},
        {"state_writes": [(b"k", 5)]},
        {"state_writes": [(b"k" * 600, b"v")]},
        {"meta": [("", b"v")]},
    ],
)
def test_malformed_commits_write_nothing(kv: KVStore, change: dict[str, object]) -> None:
    ledger = LedgerStore(kv)
    commit_chain(ledger, 1)
    before, head = all_pairs(kv), ledger.head()
    with pytest.raises(LedgerError):
        ledger.commit_block(replace(block(1, GENESIS_STATE_ROOT), **change))  # type: ignore[arg-type]
    assert all_pairs(kv) == before
    assert ledger.head() == head
    assert ledger.total_tx_count() == 3


def test_meta(kv: KVStore) -> None:
    ledger = LedgerStore(kv)
    assert ledger.get_meta("pbft/view") is None
    ledger.put_meta("pbft/view", b"\x03")
    ledger.put_meta("pbft/prepared", b"cert")
    assert ledger.get_meta("pbft/view") == b"\x03"
    ledger.delete_meta("pbft/view")
    assert ledger.get_meta("pbft/view") is None
    c = replace(block(0, GENESIS_STATE_ROOT), meta=[("pbft/prepared", None), ("x", b"1")])
    ledger.commit_block(c)  # meta changes ride in the block's batch
    assert ledger.get_meta("pbft/prepared") is None
    assert ledger.get_meta("x") == b"1"
    assert list(ledger.state.scan()) == [(w[0], w[1]) for w in c.state_writes]
    with pytest.raises(LedgerError):
        ledger.put_meta("", b"v")
    with pytest.raises(LedgerError):
        ledger.put_meta("name", "not bytes")  # type: ignore[arg-type]


def test_snapshot_is_a_consistent_past_ledger(kv: KVStore) -> None:
    ledger = LedgerStore(kv)
    chain = commit_chain(ledger, 2)
    with ledger.snapshot() as snap:
        more = block(2, chain[-1].state_root, writes=[(b"acct/0", None), (b"new", b"1")])
        ledger.commit_block(more)
        assert snap.head() == Head(1, chain[1].block_hash, chain[1].state_root)
        assert snap.total_tx_count() == 6
        assert snap.block_by_number(2) is None
        assert snap.receipt(more.tx_hashes[0]) is None
        assert snap.state.get(b"acct/0") == b"10"
        assert [k for k, _ in snap.state.scan()] == [b"acct/0", b"acct/1", b"acct/2"]
    head = ledger.head()
    assert head is not None and head.number == 2
    assert ledger.state.get(b"acct/0") is None


@pytest.mark.parametrize("backend", PERSISTENT)
def test_reopen_recovers_head_and_count(backend: str, reopen: OpenStore) -> None:
    ledger = LedgerStore(reopen())
    chain = commit_chain(ledger, 4)
    ledger.put_meta("view", b"9")
    ledger = LedgerStore(reopen())
    assert ledger.head() == Head(3, chain[-1].block_hash, chain[-1].state_root)
    assert ledger.total_tx_count() == 12
    assert ledger.get_meta("view") == b"9"
    ledger.commit_block(block(4, chain[-1].state_root))
    assert ledger.total_tx_count() == 15
