"""The changes made while tuning ``ledgerlab bench`` keep behaviour identical (or fix it).

Each test pins one of them: the txpool's skipped storage lookups and expiry scans, the
overlay's remembered base values, the receipt lookups' block cache, the fetch that a
gossip race left waiting, and the view-change timer that outlived its reason.
"""

from __future__ import annotations

import asyncio
import random
import types
from collections.abc import Callable

import pytest

from consensus.crypto import KeyPair
from node.ledger.tx import SignedTransaction, Transaction
from node.runtime.local import MemoryCluster, wait_for
from node.runtime.node import _Fetch
from node.runtime.txpool import Reason, TxPool, TxRejected
from storage.overlay import StateOverlay

KEY = KeyPair.generate(random.Random(3))


def raw_tx(nonce: str, block_limit: int = 100, user: str = "alice") -> bytes:
    tx = Transaction.build(
        chain_id="chain0",
        group_id="group0",
        to="0x5002",
        method="userSave",
        args=[user, 5],
        block_limit=block_limit,
        nonce=nonce,
    )
    return tx.sign(KEY).encode()


def outcome(pool: TxPool, raw: bytes, head: int) -> Reason | None:
    try:
        pool.admit(raw, head)
    except TxRejected as exc:
        return exc.reason
    return None


class Ledger:
    """A consistent pair: committed tx hashes, and every commit shown to the pools."""

    def __init__(self) -> None:
        self.committed: set[bytes] = set()
        self.lookups = 0

    def in_chain(self, tx_hash: bytes) -> bool:
        self.lookups += 1
        return tx_hash in self.committed


def test_txpool_skips_lookups_but_refuses_exactly_as_before() -> None:
    ledger = Ledger()
    kw = {"chain_id": "chain0", "group_id": "group0", "in_chain": ledger.in_chain}
    old = TxPool(**kw, block_limit_window=10, nonce_memory=10)  # type: ignore[arg-type]
    new = TxPool(**kw, block_limit_window=10, nonce_memory=10, sees_every_commit=True)  # type: ignore[arg-type]
    committed = [raw_tx(f"c{i}", block_limit=8) for i in range(3)]
    for raw in committed:
        for pool in (old, new):
            pool.admit(raw, 0)
    stxs = [SignedTransaction.decode(r) for r in committed]
    ledger.committed.update(s.hash for s in stxs)
    for pool in (old, new):
        pool.on_commit(1, stxs)
    heads = range(0, 25)
    cases: list[Callable[[int], bytes]] = [
        lambda h: committed[0],  # replay of a committed tx
        lambda h: raw_tx("c1", block_limit=h + 5),  # committed nonce, new tx
        lambda h: raw_tx(f"fresh{h}", block_limit=h + 5),
        lambda h: raw_tx(f"late{h}", block_limit=h),  # block limit at the head
        lambda h: raw_tx(f"far{h}", block_limit=h + 11),  # beyond the window
    ]
    for head in heads:
        for pool in (old, new):  # keep the nonce memory moving with the head
            pool.on_commit(head + 2, [])
        for case in cases:
            raw = case(head)
            assert outcome(new, raw, head) == outcome(old, raw, head), (head, raw[:12])
    before = ledger.lookups
    for i in range(50):
        new.admit(raw_tx(f"n{i}", block_limit=40), 30)
    assert ledger.lookups == before  # a valid new tx costs no storage lookup
    vtx = new.get(SignedTransaction.decode(raw_tx("n0", block_limit=40)).hash)
    assert vtx is not None and new.includable(vtx, 31) and ledger.lookups == before


def test_txpool_without_the_promise_still_asks_storage() -> None:
    ledger = Ledger()
    ledger.committed.add(SignedTransaction.decode(raw_tx("x")).hash)
    pool = TxPool(chain_id="chain0", group_id="group0", in_chain=ledger.in_chain)
    assert outcome(pool, raw_tx("x"), 0) is Reason.ALREADY_IN_CHAIN


def test_expiry_scan_skipped_only_when_nothing_can_expire() -> None:
    pool = TxPool(chain_id="chain0", group_id="group0", in_chain=lambda h: False)
    for i, limit in enumerate([5, 9, 9, 30]):
        pool.admit(raw_tx(f"e{i}", block_limit=limit), 0)
    pool.on_commit(1, [])
    assert len(pool) == 4
    pool.on_commit(5, [])
    assert len(pool) == 3  # block_limit 5 expired at block 5
    pool.on_commit(8, [])
    assert len(pool) == 3
    pool.on_commit(9, [])
    assert len(pool) == 1
    pool.admit(raw_tx("e9", block_limit=12), 9)  # a lower limit than what is left
    pool.on_commit(12, [])
    assert len(pool) == 1
    pool.on_commit(30, [])
    assert len(pool) == 0


class CountingState:
    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = data
        self.reads: dict[bytes, int] = {}

    def get(self, key: bytes) -> bytes | None:
        self.reads[key] = self.reads.get(key, 0) + 1
        return self.data.get(key)


def test_overlay_write_set_unchanged_and_reads_base_once() -> None:
    base = CountingState({b"a": b"1", b"b": b"2", b"d": b"4"})
    ov = StateOverlay(base)
    assert ov.get(b"a") == b"1"
    ov.put(b"a", b"10")  # read, then changed
    assert ov.get(b"b") == b"2"
    ov.put(b"b", b"2")  # read, then written back unchanged: not a change
    ov.put(b"c", b"3")  # written without a read
    ov.delete(b"d")  # deleted without a read
    assert ov.get(b"zz") is None
    ov.put(b"zz", b"new")  # read as absent, then created
    mark = ov.mark()
    ov.put(b"a", b"99")
    ov.revert(mark)
    assert ov.write_set() == [(b"a", b"10"), (b"c", b"3"), (b"d", None), (b"zz", b"new")]
    assert base.reads[b"a"] == 1 and base.reads[b"b"] == 1 and base.reads[b"zz"] == 1


@pytest.mark.asyncio
async def test_receipts_of_one_block_decode_it_once() -> None:
    from node.runtime.service import NodeService

    async with MemoryCluster(4, tick_ms=20) as cluster:
        node = cluster.node(0)
        raws = [raw_tx(f"r{i}", block_limit=500, user=f"u{i}") for i in range(20)]
        hashes = [h for h in node.submit(raws) if isinstance(h, bytes)]
        assert len(hashes) == 20
        await wait_for(lambda: node.chain.store.total_tx_count() >= 20)
        plain = NodeService(node)
        expected = [plain.receipt(h) for h in hashes]
        service = NodeService(node)
        calls = 0
        real = node.chain.block

        def counting(number: int):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            return real(number)

        service.node = types.SimpleNamespace(
            chain=types.SimpleNamespace(  # type: ignore[assignment]
                store=node.chain.store, block=counting
            )
        )
        assert [service.receipt(h) for h in hashes] == expected
        blocks = {r["block_number"] for r in expected if r is not None}
        assert calls == len(blocks)


@pytest.mark.asyncio
async def test_fetch_resolves_when_the_tx_arrived_before_the_fetch_registered() -> None:
    async with MemoryCluster(4, tick_ms=20) as cluster:
        node = cluster.node(1)
        raw = raw_tx("f1", block_limit=500)
        tx_hash = SignedTransaction.decode(raw).hash
        # The proposal found it missing; it came in (gossip won the race) before the
        # fetch task ran and registered: the fetch must count it, not wait for it.
        node.submit([raw])
        registered: list[_Fetch] = []
        fetches = node._fetches

        class Spy(list):  # type: ignore[type-arg]
            def append(self, fetch: _Fetch) -> None:
                registered.append(fetch)
                super().append(fetch)

        node._fetches = Spy(fetches)
        ran: list[object] = []
        node._run_proposal = lambda action, body: "ran"  # type: ignore[method-assign,assignment,return-value]
        feed = node._feed
        node._feed = lambda event: ran.append(event) if event == "ran" else feed(event)  # type: ignore[method-assign,func-returns-value]
        sent = []
        node.transport.send = lambda peer, data: sent.append(data)  # type: ignore[method-assign]
        action = types.SimpleNamespace(height=node.replica.height, view=node.replica.view)
        body = types.SimpleNamespace(proposer=0, tx_hashes=(tx_hash,))
        await asyncio.wait_for(node._fetch_then_execute(action, body, [tx_hash]), 1)  # type: ignore[arg-type]
        assert registered and registered[0].done.is_set() and not registered[0].wanted
        requests = [d for d in sent if d[:1] == b"\x03"]  # wire.Kind.TX_REQUEST
        assert ran == ["ran"] and requests == [], "executed at once, asked nobody"


@pytest.mark.asyncio
async def test_an_idle_chain_does_not_change_views() -> None:
    """The timer armed at a commit that emptied the pool must not fire 3 s later."""
    async with MemoryCluster(4, tick_ms=20) as cluster:
        nodes = cluster.running()
        nodes[0].submit([raw_tx(f"i{i}", block_limit=500, user=f"u{i}") for i in range(30)])
        await wait_for(lambda: all(n.chain.head.number >= 1 and not len(n.pool) for n in nodes))
        await asyncio.sleep(3.6)  # consensus_timeout is 3 s
        assert [n.replica.view for n in nodes] == [0, 0, 0, 0]
        assert all(n.replica.counters.view_changes == 0 for n in nodes)
