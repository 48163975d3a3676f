"""Restarts, observers, catch-up and hostile peers, on in-process memory clusters."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest

from consensus import PersistedState
from consensus import messages as cm
from consensus.crypto import KeyPair
from node.ledger.block import BlockSeal
from node.runtime import wire
from node.runtime.node import PBFT_META
from storage.ledger import LedgerStore
from tests.runtime.cluster import MemoryCluster, loops_alive, transfer, wait_until

pytestmark = pytest.mark.asyncio


def same_head(nodes) -> bool:
    return len({n.chain.head for n in nodes}) == 1


async def test_observer_follows_the_chain_and_forwards_client_txs() -> None:
    async with MemoryCluster(4, observers=1) as cluster:
        observer = cluster.nodes[4]
        assert observer.role == "observer" and observer.index is None
        results = observer.submit([transfer(i) for i in range(50)])
        assert all(isinstance(r, bytes) for r in results)
        await wait_until(
            lambda: all(n.chain.store.total_tx_count() == 50 for n in cluster.running())
        )
        await wait_until(lambda: same_head(cluster.running()))
        assert observer.replica.counters.messages_out.total() == 0, "observers never vote"


async def test_a_node_that_was_down_for_many_blocks_catches_up_by_sync() -> None:
    # The node that goes away is an observer, so the sealers are not slowed by view
    # changes for a dead leader while the gap grows (one-tx blocks make 200 heights).
    async with MemoryCluster(4, observers=1, tx_count_limit=1) as cluster:
        cluster.nodes[0].submit([transfer(0)])
        await wait_until(lambda: all(n.chain.head.number == 1 for n in cluster.running()))
        await cluster.stop(4)
        cluster.nodes[0].submit([transfer(i) for i in range(1, 200)])
        await wait_until(lambda: cluster.nodes[0].chain.head.number == 200, timeout=60)
        node = await cluster.start(4)
        await wait_until(lambda: node.chain.head == cluster.nodes[0].chain.head, timeout=60)
        assert node.sync.stats["imported"] == 199


async def test_restarted_sealer_keeps_its_view_and_rejoins() -> None:
    async with MemoryCluster(4) as cluster:
        cluster.nodes[0].submit([transfer(0)])
        await wait_until(lambda: all(n.chain.head.number == 1 for n in cluster.running()))
        view = cluster.nodes[3].replica.view
        await cluster.stop(3)
        cluster.nodes[0].submit([transfer(1, head=1)])  # leader of height 2 is sealer 2
        await wait_until(lambda: cluster.nodes[0].chain.head.number == 2)
        node = await cluster.start(3)
        assert node.replica.view >= view
        await wait_until(lambda: node.chain.head == cluster.nodes[0].chain.head)
        cluster.nodes[1].submit([transfer(i, head=2) for i in range(2, 10)])
        await wait_until(lambda: same_head(cluster.running()) and node.chain.head.number >= 3)
        assert node.replica.counters.messages_out.total() > 0, "it votes again"


async def test_a_chain_restarted_at_once_in_view_1_commits_without_waiting_a_timeout() -> None:
    # Found on real processes: sealers 0, 1 and 3 had moved to view 1; sealer 2, the
    # leader of view 1 at the next height, was down for that view change and came back in
    # view 0. After a full restart the three announced their ViewChange(1) at start, each
    # before its links to the nodes started after it were up, so sealer 2 never heard
    # f + 1 of them and waited in view 0 for a proposal: half a timeout until a re-send.
    cluster = MemoryCluster(4, consensus_timeout=60, tick_ms=10)
    async with cluster:
        pass  # genesis written on every node's store; all stopped again
    for i in (0, 1, 3):  # what each of them persisted when it left view 0
        state = PersistedState(1, None, signed=(0, 1))  # signed in view 0, then left it
        LedgerStore(cluster.kvs[i]).put_meta(PBFT_META, state.encode())
    async with cluster:
        nodes = cluster.running()
        assert [n.replica.view for n in nodes] == [1, 1, 0, 1]
        assert cluster.nodes[2].replica.leader_of(1, 1) == 2
        nodes[0].submit([transfer(0)])
        await wait_until(lambda: all(n.chain.head.number == 1 for n in nodes), timeout=10)
        assert all(n.replica.view == 1 for n in nodes)


async def test_stopping_the_leader_causes_a_view_change_and_progress() -> None:
    async with MemoryCluster(4, consensus_timeout=3, tick_ms=10) as cluster:
        cluster.nodes[0].submit([transfer(0)])
        await wait_until(lambda: all(n.chain.head.number == 1 for n in cluster.running()))
        leader = cluster.nodes[0].replica.leader_of(cluster.nodes[0].replica.view, 2)
        await cluster.stop(leader)
        alive = cluster.running()
        alive[0].submit([transfer(i, head=1) for i in range(1, 20)])
        await wait_until(lambda: all(n.chain.head.number >= 2 for n in alive), timeout=30)
        assert all(n.replica.view >= 1 for n in alive)
        await wait_until(lambda: same_head(alive))


def fates(node) -> Counter[str]:
    """Every counter that says what became of an inbound frame, flat."""
    c: Counter[str] = Counter()
    c.update({f"dropped.{k}": v for k, v in node.dropped.items()})
    c.update({f"replica.{k}": v for k, v in node.replica.counters.drops.items()})
    c.update({f"sync.{k}": v for k, v in node.sync.stats.items()})
    c.update({f"pool.{r.value}": v for r, v in node.pool.rejected.items()})
    return c


async def test_hostile_frames_are_dropped_and_the_cluster_keeps_committing() -> None:
    captured: list[tuple[str, bytes]] = []
    async with MemoryCluster(4) as cluster:
        hub = cluster.hub
        hub.drop = lambda src, dst, data: captured.append((src, data)) and False
        nodes = cluster.running()
        nodes[0].submit([transfer(i) for i in range(30)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 30 for n in nodes))
        hub.drop = None
        evil = nodes[3].transport  # a certified member turned hostile
        rng = random.Random(5)
        outsider = KeyPair.generate(rng)
        block = nodes[0].chain.block(1)
        forged_seal = BlockSeal(
            0,
            (
                (1, outsider.sign(b"\x00" * 32)),
                (2, outsider.sign(b"\x01" * 32)),
                (3, outsider.sign(b"\x02" * 32)),
            ),
        )
        # a PrePrepare from sealer 3 for height 2, whose leader (view 0) is sealer 2
        proposal = cm.Proposal(2, nodes[0].chain.head.block_hash, b"payload")
        digest = cm.preprepare_digest(0, 2, proposal.digest)
        signature = outsider.sign(digest)
        preprepare = cm.PrePrepare(view=0, proposal=proposal, sender=3, signature=signature)
        forged = block.with_seal(forged_seal).encode()
        # each frame, and the one counter of node0 that must say what became of it
        cases = [
            (b"", "dropped.malformed"),
            (b"\xff\x00garbage", "dropped.malformed"),
            (bytes([wire.Kind.CONSENSUS]) + rng.randbytes(200), "replica.malformed"),
            (bytes([wire.Kind.TXS]) + rng.randbytes(100), "dropped.malformed"),
            (wire.encode(wire.Txs((b"not a tx", rng.randbytes(300)))), "pool.Malformed"),
            (wire.encode(wire.BlockResponse((forged, b"junk"))), "sync.unsolicited"),
            (wire.encode(wire.Consensus(cm.encode_message(preprepare))), "replica.not_leader"),
            # a lying height claim: node0 asks, gets nothing new, and skips the liar
            (
                wire.encode(wire.Status(10**9, b"\x01" * 32, nodes[0].chain.genesis_hash)),
                "sync.peers_skipped",
            ),
            # well-formed requests are answered, not dropped
            (wire.encode(wire.BlockRequest(0, 10)), "sync.served_blocks"),
        ]
        target = nodes[0]
        for frame, counter in cases:
            before = fates(target)
            evil.send(target.node_id, frame)
            await wait_until(lambda c=counter, b=before: fates(target)[c] > b[c], timeout=10)
            changed = {k for k, v in fates(target).items() if v != before[k]} - {counter}
            assert not {k for k in changed if k.startswith(("dropped.", "pool."))}, (
                counter,
                changed,
            )
        for src, data in captured:  # replay everything ever sent
            if src == evil.node_id:
                evil.broadcast(data)
        await asyncio.sleep(0.3)
        honest = nodes[:3]
        assert all(loops_alive(n) for n in honest)
        assert all(n.supervisor.errors.total() == 0 for n in honest), "no input reached a bug"
        assert all(n.chain.head.number == nodes[0].chain.head.number for n in honest)
        nodes[1].submit([transfer(100 + i, head=nodes[1].chain.head.number) for i in range(30)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 60 for n in nodes))
        await wait_until(lambda: same_head(nodes))
        # one block 1 (its seal may hold a different quorum of signatures on each node)
        assert len({n.chain.store.hash_by_number(1) for n in nodes}) == 1
