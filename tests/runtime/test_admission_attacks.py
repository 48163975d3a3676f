"""Attacks on transaction admission and on a proposal's tx fetch (in-process clusters).

Valid inputs at their edges (size limit, block_limit window, nonce reuse), the same tx
from two sides at once, client batches whose pool changes between slices, and peers that
answer a TxRequest with garbage, with a rival of the wanted tx, or not at all. Each test
asserts what the node must do: a typed refusal that changes nothing, answers in the
batch's order, every block committed on every node, no fetch left behind, no internal
error.
"""

from __future__ import annotations

import asyncio
import types
from typing import Any

import pytest

from node.ledger.tx import SignedTransaction, tx_hash
from node.runtime import Node, wire
from node.runtime import service as service_module
from node.runtime.node import ADMIT_SLICE
from node.runtime.service import SUBMIT_SLICE, NodeService
from node.runtime.txpool import BLOCK_LIMIT_WINDOW, Reason, TxPool, TxRejected
from tests.runtime.cluster import (
    MemoryCluster,
    loops_alive,
    memory_cluster,
    pool_sizes_at_probe,
    transfer,
    wait_until,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


def committed(node: Node, raw: bytes) -> bool:
    return node.chain.store.tx_location(tx_hash(raw)) is not None


def reasons(results: list[Any]) -> list[Reason | None]:
    return [r.reason if isinstance(r, TxRejected) else None for r in results]


def no_internal_errors(nodes: list[Node]) -> bool:
    return all(not n.supervisor.errors and loops_alive(n) for n in nodes)


def answer_tx_requests_with(node: Node, reply: Any) -> list[wire.TxRequest]:
    """``node`` answers every TxRequest with ``reply(request)`` (frame bytes, or None: no
    answer) instead of its pool's txs; the requests it got are returned (a list kept up)."""
    real = node._on_frame
    seen: list[wire.TxRequest] = []

    def on_frame(peer: str, frame: bytes) -> None:
        if frame[:1] == bytes([wire.Kind.TX_REQUEST]):
            msg = wire.decode(frame)
            assert isinstance(msg, wire.TxRequest)
            seen.append(msg)
            out = reply(msg)
            if out is not None:
                node.transport.send(peer, out)
            return
        real(peer, frame)

    node._on_frame = on_frame  # type: ignore[method-assign]
    return seen


# -- boundaries -----------------------------------------------------------------------


async def test_the_size_limit_is_inclusive_and_a_byte_more_is_malformed_and_changes_nothing() -> (
    None
):
    raw = transfer(1, args=["u" * 200, 1])
    exact = TxPool(chain_id="chain0", group_id="group0", in_chain=lambda h: False,
                   max_tx_size=len(raw))  # fmt: skip
    assert exact.admit(raw, 0).hash == tx_hash(raw)
    short = TxPool(chain_id="chain0", group_id="group0", in_chain=lambda h: False,
                   max_tx_size=len(raw) - 1)  # fmt: skip
    with pytest.raises(TxRejected) as exc:
        short.admit(raw, 0)
    assert exc.value.reason is Reason.MALFORMED and str(len(raw)) in exc.value.detail
    assert len(short) == 0 and short.admitted == 0 and short.rejected[Reason.MALFORMED] == 1
    # and the same tx is admitted once the limit allows it: the refusal left no trace
    short.max_tx_size = len(raw)
    assert short.admit(raw, 0).hash == tx_hash(raw)


async def test_block_limit_edges_at_a_running_node() -> None:
    async with memory_cluster(4) as nodes:
        node = nodes[0]
        head = node.chain.head.number

        def at(limit: int, i: int) -> bytes:
            return transfer(i, head=limit - 500)  # transfer() sets block_limit = head + 500

        results = node.submit(
            [
                at(head, 1),
                at(head + 1, 2),
                at(head + BLOCK_LIMIT_WINDOW, 3),
                at(head + BLOCK_LIMIT_WINDOW + 1, 4),
            ]
        )
        assert reasons(results) == [
            Reason.BLOCK_LIMIT_CHECK_FAIL,
            None,
            None,
            Reason.BLOCK_LIMIT_CHECK_FAIL,
        ]
        assert len(node.pool) == 2
        # both edge txs commit (block 1 <= limit), on every node
        ok = [r for r in results if isinstance(r, bytes)]
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 2 for n in nodes), 20)
        assert all(n.chain.store.tx_location(h) is not None for n in nodes for h in ok)
        assert no_internal_errors(nodes)


async def test_nonce_reuse_within_a_batch_across_slices_and_after_commit() -> None:
    async with memory_cluster(4) as nodes:
        service = NodeService(nodes[0])
        first = transfer(0, args=["alice", 1], nonce="reused")
        rival = transfer(0, args=["bob", 2], nonce="reused")
        batch = [first, *[transfer(i) for i in range(1, SUBMIT_SLICE + 3)], rival, first]
        results = list(await service.submit(batch))
        assert len(results) == len(batch)
        assert results[0] == tx_hash(first)
        for raw, r in zip(batch[1:-2], results[1:-2], strict=True):
            assert r == tx_hash(raw)  # each answer is its own input's hash, in order
        assert reasons(results[-2:]) == [Reason.NONCE_CHECK_FAIL, Reason.ALREADY_KNOWN]
        await wait_until(lambda: all(committed(n, first) for n in nodes), 20)
        again = nodes[2].submit([rival, first])
        assert reasons(again) == [Reason.NONCE_CHECK_FAIL, Reason.ALREADY_IN_CHAIN]
        assert not any(committed(n, rival) for n in nodes)


async def test_one_tx_sent_to_two_nodes_at_once_commits_once_and_both_clients_get_its_hash() -> (
    None
):
    async with memory_cluster(4) as nodes:
        raw = transfer(7)
        a, b = nodes[0].submit([raw]), nodes[3].submit([raw])
        assert a == b == [tx_hash(raw)]
        # and from a client and from gossip at once: the client's copy is the second
        gossip = transfer(8)
        nodes[1].transport._inbox.put(nodes[2].node_id, wire.encode(wire.Txs((gossip,))))
        await wait_until(lambda: tx_hash(gossip) in nodes[1].pool or committed(nodes[1], gossip))
        late = nodes[1].submit([gossip])
        assert reasons(late) in ([Reason.ALREADY_KNOWN], [Reason.ALREADY_IN_CHAIN])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 2 for n in nodes), 20)
        assert all(committed(n, raw) and committed(n, gossip) for n in nodes)
        assert no_internal_errors(nodes)


# -- a client batch whose pool changes between slices ------------------------------------


async def test_a_tx_committed_while_an_earlier_slice_was_admitted_is_already_in_chain() -> None:
    async with memory_cluster(4) as nodes:
        node = nodes[0]
        landed = transfer(999)
        assert isinstance(nodes[1].submit([landed])[0], bytes)  # node0 gets it by gossip
        fresh = [transfer(i) for i in range(2 * SUBMIT_SLICE)]
        batch = [*fresh[:SUBMIT_SLICE], landed, *fresh[SUBMIT_SLICE:]]
        slices = 0

        async def sleep(delay: float) -> None:  # between slices: the block lands
            nonlocal slices
            slices += 1
            if slices == 1:
                await wait_until(lambda: committed(node, landed), 20)
            await asyncio.sleep(delay)

        shim = types.SimpleNamespace(sleep=sleep)
        real = service_module.asyncio
        service_module.asyncio = shim  # type: ignore[assignment]
        try:
            results = list(await NodeService(node).submit(batch))
        finally:
            service_module.asyncio = real
        assert slices == 2
        assert (
            reasons(results)
            == [None] * SUBMIT_SLICE + [Reason.ALREADY_IN_CHAIN] + [None] * SUBMIT_SLICE
        )
        assert [r for r in results if isinstance(r, bytes)] == [tx_hash(r) for r in fresh]
        total = 1 + len(fresh)
        await wait_until(lambda: all(n.chain.store.total_tx_count() == total for n in nodes), 20)
        assert no_internal_errors(nodes)


# -- peers that answer a fetch badly ------------------------------------------------------


def only_leader_and(cluster: MemoryCluster, raws: list[bytes], *also: int) -> None:
    """The txs reach the pools of height 1's leader (node1) and of ``also``, nobody else."""
    for i in (1, *also):
        node = cluster.node(i)
        for raw in raws:
            node.pool.admit(raw, 0)


@pytest.mark.parametrize(
    "answer",
    ["malformed frame", "junk txs", "rival with the same nonce", "nothing"],
)
async def test_a_proposer_that_answers_a_fetch_badly_delays_it_but_the_block_commits(
    answer: str,
) -> None:
    async with MemoryCluster(4, consensus_timeout=30) as cluster:
        nodes = cluster.running()
        wanted = transfer(1, args=["carol", 5], nonce="n-wanted")
        rival = transfer(1, args=["mallory", 5], nonce="n-wanted")
        replies = {
            "malformed frame": lambda req: bytes([wire.Kind.TX_RESPONSE]) + b"\xc1\xff",
            "junk txs": lambda req: wire.encode(
                wire.TxResponse(req.number, (b"", b"\x00" * 40, wanted[:-1] + b"\x01"))
            ),
            "rival with the same nonce": lambda req: wire.encode(
                wire.TxResponse(req.number, (rival,))
            ),
            "nothing": lambda req: None,
        }
        asked = answer_tx_requests_with(cluster.node(1), replies[answer])
        only_leader_and(cluster, [wanted], 2)  # node0 and node3 fetch; node2 can answer
        await wait_until(lambda: all(committed(n, wanted) for n in nodes), 40)
        assert asked, "the proposer was asked first"
        assert not any(committed(n, rival) for n in nodes)
        await wait_until(lambda: all(not n._fetches for n in nodes), 5)
        assert no_internal_errors(nodes)
        if answer == "malformed frame":
            assert nodes[0].dropped["malformed"] + nodes[3].dropped["malformed"] >= 1
        # the chain goes on: the rival (if a follower took it) is evicted by the winner
        assert all(tx_hash(rival) not in n.pool for n in nodes)
        head = nodes[0].chain.head.number
        nodes[2].submit([transfer(50, head=head)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 2 for n in nodes), 20)


async def test_unsolicited_tx_responses_go_through_admission_and_break_nothing() -> None:
    async with memory_cluster(4) as nodes:
        node, peer = nodes[0], nodes[1].node_id
        good = transfer(3)
        other_chain = transfer(4, chain_id="chain9")
        expired = transfer(5, head=-500)  # block_limit 0
        bad_sig = transfer(6)[:-1] + b"\x07"  # recovery id 7
        frame = wire.encode(wire.TxResponse(77, (b"junk", other_chain, expired, bad_sig, good)))
        before = dict(node.pool.rejected)
        node.transport._inbox.put(peer, frame)
        await wait_until(lambda: good_in(node, good))
        got = {r: node.pool.rejected[r] - before[r] for r in Reason}
        assert got[Reason.MALFORMED] >= 1
        assert got[Reason.INVALID_CHAIN_ID] == 1
        assert got[Reason.BLOCK_LIMIT_CHECK_FAIL] == 1
        assert got[Reason.INVALID_SIGNATURE] + got[Reason.MALFORMED] >= 2
        assert len(node.pool) == 1 or committed(node, good)
        # it was gossiped by nobody; the regossip of a stuck pool brings it to a block
        await wait_until(lambda: all(committed(n, good) for n in nodes), 30)
        assert no_internal_errors(nodes)


def good_in(node: Node, raw: bytes) -> bool:
    return tx_hash(raw) in node.pool or committed(node, raw)


@pytest.mark.parametrize("kind", [wire.Txs, wire.TxResponse])
async def test_a_tx_response_is_admitted_in_slices_behind_waiting_consensus_frames(
    kind: type,
) -> None:
    # Gossip (Txs) is admitted ADMIT_SLICE at a time with consensus frames handled between
    # slices; a TxResponse (solicited or not) must not be a way around that: a peer
    # could otherwise hold every vote behind 20,000 admissions (~0.7 s) per frame.
    async with memory_cluster(4) as nodes:
        node, peer = nodes[0], nodes[1].node_id
        raws = tuple(transfer(i) for i in range(10 * ADMIT_SLICE))
        seen = pool_sizes_at_probe(node)  # pool size each time the probe was handled
        inbox = node.transport._inbox
        admit_many = node.pool.admit_many

        def probe_on_first_admission(batch, head, **kw):  # type: ignore[no-untyped-def]
            if not seen and not probed:  # the probe arrives while the frame is admitted
                probed.append(True)
                inbox.put(peer, wire.encode(wire.Consensus(b"probe")))
            return admit_many(batch, head, **kw)

        probed: list[bool] = []
        node.pool.admit_many = probe_on_first_admission  # type: ignore[method-assign]
        msg = wire.Txs(raws) if kind is wire.Txs else wire.TxResponse(1, raws)
        inbox.put(peer, wire.encode(msg))
        await wait_until(lambda: len(node.pool) == len(raws) and seen, timeout=30)
        assert seen[0] <= ADMIT_SLICE, f"the consensus frame waited for {seen[0]} admissions"
        assert no_internal_errors(nodes)


# -- a commit while a fetch is in progress --------------------------------------------------


async def test_a_block_synced_while_its_fetch_waits_ends_the_fetch_and_the_node_goes_on() -> None:
    async with MemoryCluster(4, consensus_timeout=30) as cluster:
        nodes = cluster.running()
        late = nodes[3]
        raws = [transfer(i) for i in range(5)]
        asked = answer_tx_requests_with(cluster.node(1), lambda req: None)
        for i in (0, 2):
            answer_tx_requests_with(cluster.node(i), lambda req: None)
        only_leader_and(cluster, raws, 0, 2)  # a quorum without node3, which fetches in vain
        await wait_until(lambda: all(n.chain.head.number >= 1 for n in nodes[:3]), 20)
        await wait_until(lambda: late.chain.head.number >= 1, 20)  # block sync
        # The fetch is moot once its height is committed: it ends at once and asks no
        # more peers (it used to ask every peer in turn, 2 s each, for a decided block).
        synced_at = len(asked)
        await wait_until(lambda: not late._fetches, 1.5)
        await asyncio.sleep(2.5)
        assert len(asked) == synced_at, "asked the proposer again after the block was synced"
        assert all(committed(late, r) for r in raws)
        assert no_internal_errors(nodes)
        head = late.chain.head.number
        late.submit([transfer(60, head=head)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 6 for n in nodes), 20)


async def test_a_proposal_partly_pooled_partly_queued_partly_unknown_commits() -> None:
    async with MemoryCluster(4, consensus_timeout=30) as cluster:
        nodes = cluster.running()
        follower = nodes[0]
        pooled = [transfer(i) for i in range(5)]
        queued = tuple(transfer(i) for i in range(100, 100 + 40 * ADMIT_SLICE))
        unknown = [transfer(i) for i in range(200, 205)]
        everything = [*pooled, *queued, *unknown]
        requests = answer_tx_requests_with(
            cluster.node(1),
            lambda req: wire.encode(
                wire.TxResponse(
                    req.number,
                    tuple(v.tx.encoded for h in req.hashes if (v := cluster.node(1).pool.get(h))),
                )
            ),
        )
        for i in (2, 3):
            for raw in everything:
                cluster.node(i).pool.admit(raw, 0)
        for raw in pooled:
            follower.pool.admit(raw, 0)
        follower.transport._inbox.put(nodes[2].node_id, wire.encode(wire.Txs(queued)))
        for raw in everything:  # the leader last: its proposal comes while node0 admits
            cluster.node(1).pool.admit(raw, 0)
        total = len(everything)
        await wait_until(lambda: all(n.chain.store.total_tx_count() == total for n in nodes), 40)
        pooled_hashes = {tx_hash(r) for r in pooled}
        asked = {h for req in requests for h in req.hashes}
        assert not asked & pooled_hashes, "asked for txs it held"
        await wait_until(lambda: not follower._fetches, 1.5)
        assert no_internal_errors(nodes)
        assert all(SignedTransaction.decode(r).hash not in follower.pool for r in everything)


# -- batches: concurrent, across the RPC chunk, membership changing mid-batch -------------


async def test_two_concurrent_batches_sharing_txs_answer_each_input_once_in_order() -> None:
    async with memory_cluster(4) as nodes:
        service = NodeService(nodes[0])
        shared = [transfer(i) for i in range(3 * SUBMIT_SLICE)]
        own_a = [transfer(i) for i in range(100, 100 + SUBMIT_SLICE)]
        own_b = [transfer(i) for i in range(200, 200 + SUBMIT_SLICE)]
        a_in = [x for pair in zip(shared, own_a * 3, strict=True) for x in pair]
        b_in = [*own_b, *reversed(shared)]
        a, b = await asyncio.gather(service.submit(a_in), service.submit(b_in))
        assert len(a) == len(a_in) and len(b) == len(b_in)
        for raws, results in ((a_in, a), (b_in, b)):
            for raw, r in zip(raws, results, strict=True):
                assert r == tx_hash(raw) or (
                    isinstance(r, TxRejected) and r.reason is Reason.ALREADY_KNOWN
                ), (raw, r)
        # every distinct tx got exactly one hash answer over the two batches
        hashes = [r for r in (*a, *b) if isinstance(r, bytes)]
        distinct = {tx_hash(r) for r in (*shared, *own_a, *own_b)}
        assert sorted(hashes) == sorted(distinct)
        total = len(distinct)
        await wait_until(lambda: all(n.chain.store.total_tx_count() == total for n in nodes), 20)


async def test_an_rpc_batch_past_one_submit_chunk_answers_each_id_with_its_own_tx() -> None:
    from node.rpc import Dispatcher
    from node.rpc.jsonrpc import SUBMIT_CHUNK

    async with memory_cluster(4) as nodes:
        node = nodes[0]
        dispatcher = Dispatcher({node.genesis.group_id: NodeService(node)})
        raws = [transfer(i) for i in range(SUBMIT_CHUNK + SUBMIT_SLICE)]
        raws.insert(SUBMIT_CHUNK + 3, raws[5])  # a duplicate in the second chunk
        raws.insert(7, transfer(7, head=-500))  # expired, in the first slice
        batch = [
            {
                "jsonrpc": "2.0",
                "id": 1000 + i,
                "method": "sendRawTransaction",
                "params": [node.genesis.group_id, "0x" + raw.hex()],
            }
            for i, raw in enumerate(raws)
        ]
        answers = await dispatcher.handle(batch)
        assert [a["id"] for a in answers] == [1000 + i for i in range(len(raws))]
        errors = {a["id"] - 1000: a["error"]["message"] for a in answers if "error" in a}
        assert set(errors) == {7, SUBMIT_CHUNK + 4}, errors
        for a in answers:
            if "result" in a:
                assert a["result"] == "0x" + tx_hash(raws[a["id"] - 1000]).hex()
        assert len(node.pool) + node.chain.store.total_tx_count() == len(raws) - 2


async def test_a_node_made_free_between_slices_refuses_the_rest_of_the_batch_typed() -> None:
    async with memory_cluster(4) as nodes:
        node = nodes[0]
        raws = [transfer(i) for i in range(2 * SUBMIT_SLICE + 3)]

        async def sleep(delay: float) -> None:  # a block removed this node meanwhile
            node.role = "free"
            await asyncio.sleep(delay)

        real = service_module.asyncio
        service_module.asyncio = types.SimpleNamespace(sleep=sleep)  # type: ignore[assignment]
        try:
            results = list(await NodeService(node).submit(raws))
        finally:
            service_module.asyncio = real
            node.role = "sealer"
        assert results[:SUBMIT_SLICE] == [tx_hash(r) for r in raws[:SUBMIT_SLICE]]
        assert reasons(results[SUBMIT_SLICE:]) == [Reason.NOT_A_GROUP_MEMBER] * (
            len(raws) - SUBMIT_SLICE
        )
        assert all(tx_hash(r) not in node.pool for r in raws[SUBMIT_SLICE:])


async def test_a_tx_request_naming_one_big_tx_thousands_of_times_gets_it_once() -> None:
    async with memory_cluster(4) as nodes:
        node, asker = nodes[0], nodes[1]
        big = transfer(1, args=[f"{i:02d}" + "b" * 250 for i in range(16)])
        node.pool.admit(big, node.chain.head.number)
        many = [
            transfer(i, args=[f"{i}-{j:02d}" + "m" * 200 for j in range(16)]) for i in range(40)
        ]
        for raw in many:
            node.pool.admit(raw, node.chain.head.number)
        answers: list[wire.TxResponse] = []
        real = asker._on_frame

        def on_frame(peer: str, frame: bytes) -> None:
            if frame[:1] == bytes([wire.Kind.TX_RESPONSE]):
                msg = wire.decode(frame)
                assert isinstance(msg, wire.TxResponse)
                answers.append(msg)
            real(peer, frame)

        asker._on_frame = on_frame  # type: ignore[method-assign]
        copies = (wire.MAX_FRAME // len(big)) + 100  # the naive answer would not fit a frame
        hashes = (tx_hash(big),) * copies + tuple(tx_hash(r) for r in many)
        node.transport._inbox.put(asker.node_id, wire.encode(wire.TxRequest(1, hashes)))
        await wait_until(lambda: bool(answers), 10)
        assert answers[0].raw == (big, *many), "each asked-for tx once, in the order asked"
        assert no_internal_errors(nodes)


async def test_a_leader_proposing_a_forged_tx_gets_no_votes_and_the_chain_goes_on() -> None:
    from node.ledger.tx import VerifiedTx

    async with MemoryCluster(4, consensus_timeout=3, tick_ms=10) as cluster:
        nodes = cluster.running()
        leader = cluster.node(1)
        forged = transfer(1, args=["forger", 9], nonce="forged")[:-1] + b"\x07"  # v = 7
        stx = SignedTransaction.decode(forged)  # well formed; its signature recovers nothing
        # A Byzantine leader's pool: the forged tx as if verified (sender made up).
        leader.pool._pending[stx.hash] = VerifiedTx(stx, b"\x66" * 20)
        leader.pool._pool_nonces[stx.tx.nonce] = stx.hash
        good = transfer(2)
        assert isinstance(nodes[2].submit([good])[0], bytes)
        await wait_until(lambda: all(committed(n, good) for n in nodes), 30)
        assert not any(committed(n, forged) for n in nodes)
        assert all(stx.hash not in n.pool for n in nodes if n is not leader)
        assert sum(n.pool.rejected[Reason.INVALID_SIGNATURE] for n in nodes) >= 1
        assert all(n.replica.view >= 1 for n in nodes), "its view was changed"
        await wait_until(lambda: all(not n._fetches for n in nodes), 10)
        assert no_internal_errors(nodes)
