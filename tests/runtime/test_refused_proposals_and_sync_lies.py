"""Proposals a sealer refuses (proposer index, clock, byte cap) and lying sync peers:
each test failed before its fix."""

from __future__ import annotations

import asyncio
import time

import pytest

from consensus import messages as cm
from node.ledger.chain import ProposalBody
from node.runtime import wire
from tests.runtime.cluster import MemoryCluster, loops_alive, transfer, wait_until

pytestmark = pytest.mark.asyncio


def preprepare_frame(cluster: MemoryCluster, view: int, height: int, body: ProposalBody) -> bytes:
    """A PrePrepare for ``body`` signed with the key of the leader of (view, height)."""
    node = cluster.running()[0]
    leader = node.replica.leader_of(view, height)
    proposal = cm.Proposal(height, node.chain.head.block_hash, body.encode())
    sig = cluster.keys[leader].sign(cm.preprepare_digest(view, height, proposal.digest))
    return wire.encode(
        wire.Consensus(cm.encode_message(cm.PrePrepare(view, proposal, leader, sig)))
    )


async def test_proposal_naming_a_proposer_outside_the_sealer_list_is_refused_not_fatal() -> None:
    # A Byzantine leader's proposal names proposer 200 (of 4) and a tx nobody holds. The
    # fetch task indexed sealer_ids[200]: IndexError inside the TaskGroup killed the node.
    async with MemoryCluster(4) as cluster:
        nodes = cluster.running()
        leader = nodes[0].replica.leader_of(0, 1)
        body = ProposalBody(int(time.time() * 1000), 200, (b"\x07" * 32,))
        frame = preprepare_frame(cluster, 0, 1, body)
        for n in nodes:
            if n is not nodes[leader]:
                nodes[leader].transport.send(n.node_id, frame)
        await asyncio.sleep(0.3)
        honest = [n for n in nodes if n is not nodes[leader]]
        assert all(loops_alive(n) for n in honest)
        assert all(n.replica.counters.drops["invalid_proposal"] == 1 for n in honest)
        assert all(not n._fetches for n in honest)
        nodes[1].submit([transfer(i) for i in range(5)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 5 for n in nodes))


async def test_a_lying_height_claim_does_not_make_block_sync_spin() -> None:
    # Sealer 3 signs a Prepare for height 10**6: the replica asks for sync with sealer 3 as
    # the hint. Sealer 3 has nothing to give (it answers empty); the sync loop kept the hint
    # and asked it again at once, forever (thousands of requests a second, syncing=True).
    async with MemoryCluster(4) as cluster:
        nodes = cluster.running()
        victim, liar = nodes[0], nodes[3]
        h, d = 10**6, b"\x01" * 32
        vote = cm.Prepare(0, h, d, d, d, 3, cluster.keys[3].sign(cm.prepare_digest(0, h, d, d, d)))
        liar.transport.send(victim.node_id, wire.encode(wire.Consensus(cm.encode_message(vote))))
        await asyncio.sleep(1.0)
        assert victim.replica.counters.sync_requests >= 1
        assert liar.frames_in["BlockRequest"] <= 3
        assert not victim.sync.syncing
        assert loops_alive(victim)
        victim.submit([transfer(i) for i in range(5)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 5 for n in nodes))


async def test_a_proposal_far_ahead_of_our_clock_gets_no_vote() -> None:
    # A leader whose clock (or malice) is a day ahead proposes a block timestamped a day
    # ahead. Every later block must be at least as late, so accepting it would pin the
    # chain's time a day ahead for good. Honest sealers refuse to vote; after the view
    # change the next leader proposes with a sane timestamp.
    async with MemoryCluster(4, consensus_timeout=3, tick_ms=10) as cluster:
        nodes = cluster.running()
        leader = nodes[0].replica.leader_of(0, 1)
        nodes[leader]._clock = lambda: time.time() + 86_400
        nodes[(leader + 1) % 4].submit([transfer(i) for i in range(5)])
        await wait_until(lambda: all(n.chain.head.number >= 1 for n in nodes), timeout=30)
        block = nodes[0].chain.block(1)
        assert block is not None
        assert abs(block.header.timestamp / 1000 - time.time()) < 60
        assert all(n.replica.view >= 1 for n in nodes)


async def test_a_block_never_outgrows_what_peers_can_sync_or_the_node_can_read_back() -> None:
    # tx_count_limit allows 10,000 txs of up to 8 KB: a leader sealed all 2,200 pending
    # 7.8 KB txs into one 17 MB block. Block.decode refuses more than 16 MB, so the node
    # could not read its own head back (the next proposal raised DecodeError in the seal
    # loop), and a BlockResponse item holds at most wire.MAX_ITEM bytes, so no peer could
    # ever sync it. Proposals are now capped in bytes as well as in count.
    async with MemoryCluster(4, tx_count_limit=5000) as cluster:
        nodes = cluster.running()
        leader = nodes[nodes[0].replica.leader_of(0, 1)]
        # 16 args of 256 UTF-8 bytes (the most a tx may carry): ~4.3 KB each, 9.5 MB in all
        big = [transfer(i, args=["\u20ac" * 85 + "a"] * 16) for i in range(2200)]
        assert sum(map(len, big)) > wire.MAX_ITEM
        assert all(isinstance(r, bytes) for r in leader.submit(big))
        await wait_until(
            lambda: all(n.chain.store.total_tx_count() == 2200 for n in nodes), timeout=60
        )
        store = nodes[0].chain.store
        for number in range(1, nodes[0].chain.head.number + 1):
            raw = store.block_by_number(number)
            assert raw is not None and len(raw) <= wire.MAX_ITEM
        head = nodes[0].chain.head.number
        leader.submit([transfer(9999, head=head)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 2201 for n in nodes))
        assert all(loops_alive(n) for n in nodes)
