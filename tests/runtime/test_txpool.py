"""Txpool admission rules, sealing order, and what a commit removes."""

from __future__ import annotations

import random

import pytest

from consensus.crypto import KeyPair
from node.ledger.tx import Transaction
from node.runtime.txpool import Reason, TxPool, TxRejected

KEY = KeyPair.generate(random.Random(7))
OTHER = KeyPair.generate(random.Random(8))


def raw_tx(
    *,
    nonce: str,
    block_limit: int = 100,
    chain: str = "chain0",
    group: str = "group0",
    key: KeyPair = KEY,
) -> bytes:
    tx = Transaction.build(
        chain_id=chain,
        group_id=group,
        to="0x5002",
        method="userAdd",
        args=["alice", 5],
        block_limit=block_limit,
        nonce=nonce,
    )
    return tx.sign(key).encode()


def make_pool(committed: set[bytes] | None = None, **kw: int) -> TxPool:
    committed = committed if committed is not None else set()
    return TxPool(chain_id="chain0", group_id="group0", in_chain=committed.__contains__, **kw)


def rejected(pool: TxPool, raw: bytes, head: int = 0) -> Reason:
    before = len(pool)
    with pytest.raises(TxRejected) as info:
        pool.admit(raw, head)
    assert len(pool) == before, "a rejection must not change the pool"
    return info.value.reason


def test_admits_and_keeps_recovered_sender() -> None:
    pool = make_pool()
    vtx = pool.admit(raw_tx(nonce="n1"), head=0)
    assert vtx.sender == KEY.address
    assert vtx.hash in pool and len(pool) == 1 and pool.admitted == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x93\x01\x02", Reason.MALFORMED),
        (b"\xff" * 20000, Reason.MALFORMED),
        (raw_tx(nonce="a", chain="other"), Reason.INVALID_CHAIN_ID),
        (raw_tx(nonce="b", group="group9"), Reason.INVALID_GROUP_ID),
        (raw_tx(nonce="c", block_limit=0), Reason.BLOCK_LIMIT_CHECK_FAIL),
        (raw_tx(nonce="d", block_limit=1001), Reason.BLOCK_LIMIT_CHECK_FAIL),
    ],
)
def test_each_rule_rejects_with_its_reason(raw: bytes, reason: Reason) -> None:
    pool = make_pool()
    assert rejected(pool, raw) is reason
    assert pool.rejected[reason] == 1


def test_block_limit_window_edges_are_inclusive_above_head() -> None:
    pool = make_pool()
    assert (
        rejected(pool, raw_tx(nonce="x", block_limit=10), head=10) is Reason.BLOCK_LIMIT_CHECK_FAIL
    )
    pool.admit(raw_tx(nonce="y", block_limit=11), head=10)
    pool.admit(raw_tx(nonce="z", block_limit=1010), head=10)


def test_duplicate_hash_nonce_and_chain_replay() -> None:
    raw = raw_tx(nonce="n1")
    pool = make_pool()
    pool.admit(raw, 0)
    assert rejected(pool, raw) is Reason.ALREADY_KNOWN
    assert rejected(pool, raw_tx(nonce="n1", key=OTHER)) is Reason.NONCE_CHECK_FAIL
    committed_pool = make_pool(committed={make_pool().admit(raw, 0).hash})
    assert rejected(committed_pool, raw) is Reason.ALREADY_IN_CHAIN


def test_unrecoverable_signature_is_rejected_and_tampering_changes_sender() -> None:
    raw = raw_tx(nonce="s")
    zeroed = raw[:-65] + bytes(64) + b"\x00"  # r = s = 0 recovers no key
    assert rejected(make_pool(), zeroed) is Reason.INVALID_SIGNATURE
    tampered = bytearray(raw)
    tampered[-30] ^= 0x01  # a flipped bit in s recovers some other key, never ours
    try:
        vtx = make_pool().admit(bytes(tampered), 0)
    except TxRejected as exc:
        assert exc.reason is Reason.INVALID_SIGNATURE
    else:
        assert vtx.sender != KEY.address


def test_capacity() -> None:
    pool = make_pool(capacity=2)
    pool.admit(raw_tx(nonce="1"), 0)
    pool.admit(raw_tx(nonce="2"), 0)
    assert rejected(pool, raw_tx(nonce="3")) is Reason.TXPOOL_IS_FULL


def test_seal_is_arrival_ordered_and_bounded() -> None:
    pool = make_pool()
    hashes = [pool.admit(raw_tx(nonce=f"n{i}"), 0).hash for i in range(10)]
    assert [v.hash for v in pool.seal(4, 1)] == hashes[:4]
    assert [v.hash for v in pool.seal(100, 1)] == hashes


def test_commit_removes_txs_remembers_nonces_and_expires() -> None:
    pool = make_pool(nonce_memory=3)
    a = pool.admit(raw_tx(nonce="a", block_limit=5), 0)
    b = pool.admit(raw_tx(nonce="b", block_limit=50), 0)
    pool.on_commit(1, [a.tx])
    assert a.hash not in pool and b.hash in pool
    assert not pool.includable(a, 2)  # its nonce is now in the chain
    assert rejected(pool, raw_tx(nonce="a", key=OTHER), head=1) is Reason.NONCE_CHECK_FAIL
    for n in range(2, 6):
        pool.on_commit(n, [])
    # block 1's nonces are forgotten after nonce_memory blocks
    pool.admit(raw_tx(nonce="a", key=OTHER, block_limit=60), head=5)
    pool.on_commit(50, [])
    assert b.hash not in pool, "a tx whose block_limit has passed expires"


def test_committing_a_peer_tx_evicts_our_tx_with_the_same_nonce() -> None:
    pool = make_pool()
    mine = pool.admit(raw_tx(nonce="same"), 0)
    theirs = make_pool().admit(raw_tx(nonce="same", key=OTHER), 0)
    assert pool.on_commit(1, [theirs.tx]) == [(mine.hash, Reason.NONCE_CHECK_FAIL)]
    assert mine.hash not in pool and len(pool) == 0


# -- a proposal's transaction against a pool holding another of its nonce ---------------


def test_a_proposal_tx_is_admitted_beside_a_pending_rival_and_one_commit_evicts_both() -> None:
    pool = make_pool()
    mine = pool.admit(raw_tx(nonce="k"), 0)
    theirs_raw = raw_tx(nonce="k", key=OTHER)
    with pytest.raises(TxRejected) as exc:
        pool.admit(theirs_raw, 0)  # gossip and clients: the pool decides
    assert exc.value.reason is Reason.NONCE_CHECK_FAIL
    theirs = pool.admit_for_proposal(theirs_raw, 0)  # a proposal names it: the block decides
    assert mine.hash in pool and theirs.hash in pool and len(pool) == 2
    assert [v.hash for v in pool.seal(10, 1)] == [mine.hash], "never two of one nonce"
    assert pool.on_commit(1, [theirs.tx]) == [(mine.hash, Reason.NONCE_CHECK_FAIL)]
    assert len(pool) == 0, "the loser left with the winner"
    for raw in (raw_tx(nonce="k"), theirs_raw):
        with pytest.raises(TxRejected):
            pool.admit_for_proposal(raw, 1)


def test_a_rival_takes_over_the_nonce_when_the_first_holder_expires() -> None:
    pool = make_pool()
    first = pool.admit(raw_tx(nonce="k", block_limit=5), 0)
    rival = pool.admit_for_proposal(raw_tx(nonce="k", block_limit=50, key=OTHER), 0)
    assert pool.on_commit(5, []) == [(first.hash, Reason.BLOCK_LIMIT_CHECK_FAIL)]  # expired
    assert first.hash not in pool and rival.hash in pool
    assert [v.hash for v in pool.seal(10, 6)] == [rival.hash]
    with pytest.raises(TxRejected) as exc:
        pool.admit(raw_tx(nonce="k", block_limit=60), 5)
    assert exc.value.reason is Reason.NONCE_CHECK_FAIL, "the rival now holds the nonce"
    assert pool.on_commit(6, [rival.tx]) == [], "a committed tx is not dropped"
    assert len(pool) == 0


def test_a_proposal_tx_is_admitted_into_a_full_pool_but_keeps_every_other_rule() -> None:
    pool = make_pool(capacity=1)
    pool.admit(raw_tx(nonce="a"), 0)
    extra = pool.admit_for_proposal(raw_tx(nonce="b"), 0)
    assert extra.hash in pool
    with pytest.raises(TxRejected) as exc:
        pool.admit_for_proposal(raw_tx(nonce="c", chain="other"), 0)
    assert exc.value.reason is Reason.INVALID_CHAIN_ID
    with pytest.raises(TxRejected) as exc:
        pool.admit_for_proposal(raw_tx(nonce="d", block_limit=2000), 0)
    assert exc.value.reason is Reason.BLOCK_LIMIT_CHECK_FAIL


def test_a_quarantined_tx_leaves_and_is_refused_everywhere() -> None:
    pool = make_pool()
    raw = raw_tx(nonce="q")
    vtx = pool.admit(raw, 0)
    pool.quarantine(vtx.hash)
    assert vtx.hash not in pool and pool.quarantined == 1
    for admit in (pool.admit, pool.admit_for_proposal):
        with pytest.raises(TxRejected) as exc:
            admit(raw, 0)
        assert exc.value.reason is Reason.QUARANTINED
    pool.admit(raw_tx(nonce="q", key=OTHER), 0)  # its nonce is free again
