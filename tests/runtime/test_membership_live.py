"""Sealers and observers changed on chain, on running in-memory clusters: a free node
that starts, is admitted and syncs once it is an observer, becomes a sealer; a sealer is
removed; the node-side quorum check at admission; a restart reads the membership."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest

from consensus.crypto import KeyPair
from node.ledger.tx import Transaction
from node.rpc.client import AsyncRpcClient, RpcError
from node.rpc.errors import ErrorCode
from node.runtime import Node
from node.runtime.service import NodeService
from node.runtime.txpool import Reason, TxRejected
from tests.runtime.cluster import MemoryCluster, start_nodes, tcp_chain, transfer, wait_until

pytestmark = pytest.mark.asyncio
GOVERNOR = KeyPair.generate(random.Random(31))
_nonce = iter(range(10**6))


def change(method: str, key: bytes, *, head: int) -> bytes:
    """A governor's Consensus-precompile call (0x1003) naming node ``key``."""
    tx = Transaction.build(
        chain_id="chain0",
        group_id="group0",
        to="0x1003",
        method=method,
        args=[key.hex()],
        block_limit=head + 500,
        nonce=f"gov{next(_nonce)}",
    )
    return tx.sign(GOVERNOR).encode()


def same_head(nodes: list[Node]) -> bool:
    return len({n.chain.head for n in nodes}) == 1


async def commit_transfers(nodes: list[Node], count: int, start: int) -> None:
    """``count`` transfers sent round-robin to ``nodes``; all of them commit everywhere."""
    total = nodes[0].chain.store.total_tx_count() + count
    for i in range(count):
        node = nodes[i % len(nodes)]
        (result,) = node.submit([transfer(start + i, head=node.chain.head.number)])
        assert isinstance(result, bytes), result
    await wait_until(
        lambda: all(n.chain.store.total_tx_count() == total for n in nodes) and same_head(nodes),
        timeout=60,
    )


async def govern(node: Node, method: str, key: bytes, nodes: list[Node]) -> int:
    """Send a membership change to ``node``; the height that committed it, on ``nodes``."""
    (tx_hash,) = node.submit([change(method, key, head=node.chain.head.number)])
    assert isinstance(tx_hash, bytes), tx_hash
    await wait_until(
        lambda: all(n.chain.store.tx_location(tx_hash) is not None for n in nodes), timeout=60
    )
    location = nodes[0].chain.store.tx_location(tx_hash)
    assert location is not None
    return int(location[0])


@pytest.mark.timeout(180)
@pytest.mark.parametrize("jitter_ms", [0, 5])
async def test_a_new_node_joins_as_observer_then_sealer_and_sealer_0_leaves(
    jitter_ms: int,
) -> None:
    cluster = MemoryCluster(4, free=1, governors=(GOVERNOR.address,), tick_ms=20)
    if jitter_ms:  # frames reorder: peers persist each boundary block at different times
        rng = random.Random(jitter_ms)
        cluster.hub.latency = lambda src, dst: rng.uniform(0, jitter_ms / 1000)
    async with cluster:
        keys = [k.public_key for k in cluster.keys]
        old = cluster.running()
        await commit_transfers(old, 4, 0)
        # started before governance adds it: a free node, refused by every member
        new = await cluster.start(4)
        assert (new.role, new.index) == ("free", None)
        assert new.transport.peers() == frozenset()
        assert new.replica.config.node_key == keys[4] and new.replica.config.index is None

        height = await govern(old[0], "addObserver", keys[4], old)
        nodes = [*old, new]
        await wait_until(lambda: new.role == "observer" and same_head(nodes), timeout=60)
        assert all(n.membership == (tuple(keys[:4]), (keys[4],)) for n in nodes)
        assert all(n.chain.block(height).header.sealer_list == tuple(keys[:4]) for n in nodes)  # type: ignore[union-attr]
        await commit_transfers(nodes, 6, 100)

        height = await govern(old[1], "addSealer", keys[4], nodes)
        await wait_until(lambda: all(n.membership.sealers == tuple(keys) for n in nodes))
        assert (new.role, new.index) == ("sealer", 4)
        assert all(len(n.replica.config.sealers) == 5 for n in nodes)
        await commit_transfers(nodes, 10, 200)  # node4 leads some of these heights
        after = old[0].chain.block(height + 1)
        assert after is not None and after.header.sealer_list == tuple(keys)
        assert len(after.seal.signatures) >= 4  # a quorum of 5

        height = await govern(old[2], "remove", keys[0], nodes)
        members = nodes[1:]
        await wait_until(lambda: all(n.membership.sealers == tuple(keys[1:]) for n in members))
        assert [n.index for n in members] == [0, 1, 2, 3]  # the later sealers shifted down
        await commit_transfers(members, 10, 300)
        assert same_head(members)
        assert all(
            n.transport.peers() == frozenset(m.node_id for m in members) - {n.node_id}
            for n in members
        )
        # node0 is a free node now: the members dropped it, its chain stops at the removal
        gone = old[0]
        assert gone.role == "free" and gone.transport.peers() == frozenset()
        assert height <= gone.chain.head.number < members[0].chain.head.number
        last = gone.chain.head
        assert members[0].chain.store.hash_by_number(last.number) == last.block_hash
        # each replica runs with the list of its head, and a restart reads it from state
        await cluster.stop(4)
        restarted = await cluster.start(4)
        assert (restarted.role, restarted.index) == ("sealer", 3)
        assert restarted.replica.config.sealers == tuple(keys[1:])
        await commit_transfers(cluster.running()[1:], 4, 400)


@pytest.mark.timeout(60)
async def test_admission_refuses_a_change_that_breaks_the_quorum_unless_forced() -> None:
    async with MemoryCluster(4, free=1, governors=(GOVERNOR.address,), rpc=True) as cluster:
        keys = [k.public_key for k in cluster.keys]
        await cluster.stop(3)
        node = cluster.node(0)
        await wait_until(lambda: len(node.transport.peers()) == 2)
        head = node.chain.head.number
        # without node1 the new set {0, 2, 3} needs 3, and node3 is down: 2 connected
        (refused,) = node.submit([change("remove", keys[1], head=head)])
        assert isinstance(refused, TxRejected)
        assert refused.reason is Reason.MEMBERSHIP_BREAKS_QUORUM
        assert "3 sealers, quorum 3" in refused.detail and "only 2 of them" in refused.detail
        assert node.pool.rejected[Reason.MEMBERSHIP_BREAKS_QUORUM] == 1
        # what does not lower the quorum of connected sealers passes: an observer, or
        # removing the node that is down ({0, 1, 2}: all three connected)
        ok = node.submit(
            [
                change("addObserver", keys[4], head=head),
                change("remove", keys[3], head=head),
                # alone it would fail (-51104); after the pending addObserver it leaves
                # {0, 1, 2, 4}, three of them up: admitted
                change("addSealer", keys[4], head=head),
            ]
        )
        assert all(isinstance(r, bytes) for r in ok), ok
        # over JSON-RPC: the typed error, then the same transaction with {"force": true}
        raw = change("addObserver", keys[1], head=head)  # demoting 1: {0, 2, 3}, 2 connected
        assert node.rpc_server is not None
        async with AsyncRpcClient("127.0.0.1", node.rpc_server.port) as client:
            with pytest.raises(RpcError) as info:
                await client.send_raw(raw)
            err = info.value
            assert err.code == ErrorCode.MembershipBreaksQuorum.value == 10010
            assert err.data == {"reason": "MembershipBreaksQuorum", "status": "0x271a"}
            assert "only 2 of them are connected" in err.message and "force" in err.message
            with pytest.raises(RpcError) as info:
                await client.request("sendRawTransaction", ["group0", "0x" + raw.hex(), {"f": 1}])
            assert info.value.code == ErrorCode.InvalidParams
            tx_hash = await client.send_raw(raw, force=True)
            assert bytes.fromhex(tx_hash[2:]) in node.pool
        # a gossiped copy is never vetted: node1 admits the same bytes from its peer
        other = cluster.node(1)
        await wait_until(lambda: bytes.fromhex(tx_hash[2:]) in other.pool)


@pytest.mark.timeout(60)
async def test_rpc_and_metrics_read_the_current_membership() -> None:
    async with MemoryCluster(4, free=1, governors=(GOVERNOR.address,), rpc=True) as cluster:
        keys = [k.public_key for k in cluster.keys]
        nodes = cluster.running()
        await govern(nodes[0], "addObserver", keys[4], nodes)
        await govern(nodes[0], "remove", keys[2], nodes)
        await wait_until(lambda: all(len(n.membership.sealers) == 3 for n in nodes))
        node = cluster.node(3)
        assert node.rpc_server is not None
        async with AsyncRpcClient("127.0.0.1", node.rpc_server.port) as client:
            assert await client.sealers() == [keys[i].hex() for i in (0, 1, 3)]
            assert await client.observers() == [keys[4].hex()]
            status = await client.consensus_status()
            assert status["nodeIndex"] == 2 and status["nodeNum"] == 3
            assert status["minRequiredQuorum"] == 3 and status["accountType"] == "sealer"
            call = await client.call("0x1003", "getSealerList", [])
            assert call["values"] == [3, *(keys[i].hex() for i in (0, 1, 3))]
        removed = cluster.node(2)
        assert removed.rpc_server is not None
        async with AsyncRpcClient("127.0.0.1", removed.rpc_server.port) as client:
            status = await client.consensus_status()
            assert status["accountType"] == "free" and status["nodeIndex"] is None
        (gauge,) = [m for m in NodeService(node).metrics() if m.name == "ledgerlab_consensus_nodes"]
        assert gauge.kind == "gauge"
        assert list(gauge.samples) == [({"type": "observer"}, 1), ({"type": "sealer"}, 3)]


@pytest.mark.timeout(120)
async def test_over_tcp_a_free_node_is_admitted_once_added_and_a_removed_one_dropped(
    tmp_path: Path,
) -> None:
    from tests.runtime.test_cluster_tcp import free_base

    _, configs = tcp_chain(tmp_path, 4, free_base(5), free=1, governors=(GOVERNOR.address,))
    async with contextlib.AsyncExitStack() as stack:
        old = await start_nodes(stack, configs[:4])
        new = await stack.enter_async_context(Node.from_config(configs[4].home / "config.toml"))
        assert new.role == "free"
        await commit_transfers(old, 2, 0)
        assert new.transport.peers() == frozenset()  # refused by every member
        key = new.key.public_key
        await govern(old[0], "addObserver", key, old)
        nodes = [*old, new]
        await wait_until(lambda: new.role == "observer" and same_head(nodes), timeout=40)
        await wait_until(lambda: len(new.transport.peers()) == 4, timeout=40)
        await govern(old[3], "addSealer", key, nodes)
        await wait_until(lambda: all(n.membership.sealers[-1:] == (key,) for n in nodes))
        await commit_transfers(nodes, 5, 100)
        await govern(new, "remove", old[0].key.public_key, nodes)
        members = nodes[1:]
        await wait_until(lambda: all(old[0].node_id not in n.transport.peers() for n in members))
        assert old[0].role == "free"
        await commit_transfers(members, 5, 200)
        assert [n.index for n in members] == [0, 1, 2, 3]


@pytest.mark.timeout(120)
async def test_a_node_down_during_changes_syncs_across_them_and_votes_again() -> None:
    async with MemoryCluster(4, free=1, governors=(GOVERNOR.address,), tick_ms=20) as cluster:
        keys = [k.public_key for k in cluster.keys]
        await cluster.stop(3)
        new = await cluster.start(4)
        live = cluster.running()  # 0, 1, 2 and the free node 4
        sealers = live[:3]
        await govern(sealers[0], "addObserver", keys[4], sealers)
        await wait_until(lambda: new.role == "observer" and same_head(live))
        await govern(sealers[1], "addSealer", keys[4], live)  # 5 sealers, 4 of them up
        await commit_transfers(live, 4, 0)
        await govern(sealers[2], "remove", keys[0], live)  # {1, 2, 3, 4}: node3 still down
        live = live[1:]
        await commit_transfers(live, 4, 100)
        # node3 restarts at its old head, with the genesis lists: it reaches peers it knows,
        # imports every block checked against the set in force at each height, and follows
        back = await cluster.start(3)
        await wait_until(lambda: back.chain.head == live[0].chain.head, timeout=60)
        assert back.sync.stats["imported"] > 0 and back.sync.stats["bad_blocks"] == 0
        assert back.membership.sealers == tuple(keys[1:]) and back.index == 2
        assert back.replica.config.sealers == tuple(keys[1:])
        nodes = [*live, back]
        await commit_transfers(nodes, 6, 200)
