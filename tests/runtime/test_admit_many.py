"""TxPool.admit_many (a gossip frame or an RPC batch in one call) is admit, one raw at a
time: the same results in order, the same errors and counters, the same pool after."""

from __future__ import annotations

import random

import pytest

from consensus.crypto import KeyPair
from node.ledger.tx import Transaction, VerifiedTx
from node.runtime.txpool import Reason, TxPool, TxRejected

KEY = KeyPair.generate(random.Random(11))
OTHER = KeyPair.generate(random.Random(12))


def raw_tx(
    nonce: str,
    *,
    block_limit: int = 100,
    chain: str = "chain0",
    group: str = "group0",
    key: KeyPair = KEY,
) -> bytes:
    tx = Transaction.build(
        chain_id=chain,
        group_id=group,
        to="0x5002",
        method="userTransfer",
        args=["alice", "bob", 7],
        block_limit=block_limit,
        nonce=nonce,
    )
    return tx.sign(key).encode()


def high_s(raw: bytes) -> bytes:
    """The same signature with s replaced by n - s (and v flipped): valid, not canonical."""
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    r, s, v = raw[-65:-33], int.from_bytes(raw[-33:-1], "big"), raw[-1]
    return raw[:-65] + r + (order - s).to_bytes(32, "big") + bytes([v ^ 1])


COMMITTED = raw_tx("in-chain")
QUARANTINED = raw_tx("quarantined")


def hash_of(raw: bytes) -> bytes:
    return TxPool(chain_id="chain0", group_id="group0", in_chain=lambda h: False).admit(raw, 0).hash


def make_pool(capacity: int = 10) -> TxPool:
    """At head 1, with COMMITTED in the chain and QUARANTINED quarantined."""
    committed = {hash_of(COMMITTED)}
    pool = TxPool(
        chain_id="chain0", group_id="group0", in_chain=committed.__contains__, capacity=capacity
    )
    pool.on_commit(1, [])
    pool.quarantine(hash_of(QUARANTINED))
    return pool


def refuse_nonce(nonce: str):  # type: ignore[no-untyped-def]
    def vet(vtx: VerifiedTx) -> None:
        if vtx.tx.tx.nonce == nonce:
            raise TxRejected(Reason.MEMBERSHIP_BREAKS_QUORUM, f"vetted out: {nonce}")

    return vet


def every_rule() -> list[bytes]:
    """Raws that between them meet every rule, and a few that pass; in a batch, the later
    ones see what the earlier ones did to the pool (a duplicate, a taken nonce)."""
    good = raw_tx("a")
    zeroed = good[:-65] + bytes(64) + b"\x00"
    return [
        good,
        good,  # AlreadyKnown: the first one is in the pool now
        raw_tx("a", key=OTHER),  # NonceCheckFail: nonce pending
        b"\x93\x01\x02",
        b"\xff" * 9000,
        b"\xc5\x01\x02",  # an RLP list header: the FISCO decoder's error
        raw_tx("b", chain="other"),
        raw_tx("c", group="group9"),
        raw_tx("d", block_limit=1),  # head is 1
        raw_tx("e", block_limit=1002),
        COMMITTED,
        QUARANTINED,
        zeroed,
        high_s(raw_tx("f")),
        raw_tx("vetted"),
        raw_tx("g", block_limit=50),
        raw_tx("h", block_limit=40),
        *[raw_tx(f"fill{i}") for i in range(10)],  # the pool fills: TxPoolIsFull
    ]


def outcome(result: VerifiedTx | TxRejected) -> tuple[object, ...]:
    if isinstance(result, TxRejected):
        return ("rejected", result.reason, result.detail, str(result))
    return ("admitted", result.hash, result.sender, result.tx.encoded)


def state(pool: TxPool) -> tuple[object, ...]:
    return (
        [v.hash for v in pool.seal(1000, 2)],
        dict(pool.rejected),
        pool.admitted,
        pool._min_limit,
        dict(pool._pool_nonces),
        {k: set(v) for k, v in pool._rivals.items()},
    )


@pytest.mark.parametrize("for_proposal", [False, True])
@pytest.mark.parametrize("vet_out", [None, "vetted"])
def test_admit_many_is_admit_one_at_a_time(for_proposal: bool, vet_out: str | None) -> None:
    raws = every_rule()
    vet = None if vet_out is None else refuse_nonce(vet_out)
    one, many = make_pool(), make_pool()
    singles: list[VerifiedTx | TxRejected] = []
    for raw in raws:
        try:
            singles.append(one.admit(raw, 1, for_proposal=for_proposal, vet=vet))
        except TxRejected as exc:
            singles.append(exc)
    batch = many.admit_many(raws, 1, for_proposal=for_proposal, vet=vet)
    assert [outcome(r) for r in batch] == [outcome(r) for r in singles]
    assert state(many) == state(one)
    if not for_proposal:  # the list meets every rule of the pool's (a proposal skips two)
        reasons = {r.reason for r in batch if isinstance(r, TxRejected)}
        nodes_own = {Reason.NOT_A_GROUP_MEMBER, Reason.STORAGE_UNAVAILABLE}
        if vet_out is None:
            nodes_own.add(Reason.MEMBERSHIP_BREAKS_QUORUM)
        assert reasons == set(Reason) - nodes_own


def test_a_batch_of_clean_transactions_is_admitted_in_order() -> None:
    pool = make_pool(capacity=100)
    raws = [raw_tx(f"n{i}", block_limit=20 + i) for i in range(20)]
    out = pool.admit_many(raws, 1)
    assert all(isinstance(v, VerifiedTx) and v.sender == KEY.address for v in out)
    assert [v.hash for v in pool.seal(100, 2)] == [v.hash for v in out]  # type: ignore[union-attr]
    assert pool.admitted == 20 and pool._min_limit == 20


def test_a_bug_in_vet_propagates_and_leaves_the_counters_true() -> None:
    pool = make_pool(capacity=100)

    def vet(vtx: VerifiedTx) -> None:
        if vtx.tx.tx.nonce == "boom":
            raise RuntimeError("a bug of ours")

    raws = [raw_tx("ok1"), raw_tx("boom"), raw_tx("ok2")]
    with pytest.raises(RuntimeError):
        pool.admit_many(raws, 1, vet=vet)
    assert len(pool) == 1 and pool.admitted == 1  # ok1 stays; boom and ok2 were not added
