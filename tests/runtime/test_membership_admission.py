"""What a node says about membership and missing sealers, on in-memory clusters.

- F2: the admission quorum check counts only peers heard from within HEARD_WINDOW, so a
  frozen sealer (its link still open, nothing coming out of it) stops counting;
- F1: a change is judged together with the membership changes already pending in the
  node's pool (two that pass alone but break the quorum together are not both admitted);
- F5: a free node refuses client transactions (NotAGroupMember, 10011) and says it is
  free when asked why nothing commits; reads and ``call`` still work;
- F7: stall reasons name the sealers this node has not heard from, and a node that
  leads the new view says so instead of waiting for its own NewView.
"""

from __future__ import annotations

import random
import time

import pytest

from consensus import Progress
from consensus.crypto import KeyPair
from node.ledger.tx import Transaction
from node.rpc.client import AsyncRpcClient, RpcError
from node.rpc.errors import ErrorCode
from node.runtime import node as node_module
from node.runtime import wire
from node.runtime.txpool import Reason, TxRejected
from tests.runtime.cluster import MemoryCluster, transfer, wait_until
from tests.runtime.test_membership_chain import KEYS, gov, new_chain, pubs, tx

GOVERNOR = KeyPair.generate(random.Random(37))
_nonce = iter(range(10**6))


def change(method: str, key: bytes, *, head: int) -> bytes:
    """A governor's Consensus-precompile call (0x1003) naming node ``key``."""
    t = Transaction.build(
        chain_id="chain0",
        group_id="group0",
        to="0x1003",
        method=method,
        args=[key.hex()],
        block_limit=head + 500,
        nonce=f"adm{next(_nonce)}",
    )
    return t.sign(GOVERNOR).encode()


def freeze(cluster: MemoryCluster, *indices: int) -> None:
    """Nothing comes out of these nodes any more, but their links stay up: what a
    SIGSTOPped process looks like to its peers until their idle timeout."""
    frozen = {cluster.keys[i].public_key.hex() for i in indices}
    cluster.hub.drop = lambda src, dst, data: src in frozen


# -- F1: pending changes count --------------------------------------------------------


@pytest.mark.timeout(10)
def test_membership_after_applies_the_pending_changes_first() -> None:
    chain = new_chain()
    # alone, addSealer of a free node fails (-51104); after a pending addObserver it works
    assert chain.membership_after(gov("addSealer", KEYS[4])) is None
    pending = [tx("userSave", "a", 1), gov("addObserver", KEYS[4])]
    assert chain.membership_pending(pending) == (pubs(0, 1, 2, 3), pubs(4))
    after = chain.membership_after(gov("addSealer", KEYS[4]), pending=pending)
    assert after == (pubs(0, 1, 2, 3, 4), ())
    # two removals: each alone leaves three sealers, together two
    first = gov("remove", KEYS[0])
    assert chain.membership_after(gov("remove", KEYS[1])) == (pubs(0, 2, 3), ())
    assert chain.membership_after(gov("remove", KEYS[1]), pending=[first]) == (pubs(2, 3), ())
    # a pending change that would fail changes nothing (its receipt will say why)
    assert chain.membership_pending([gov("remove", KEYS[5])]) == chain.membership()
    assert chain.membership() == (pubs(0, 1, 2, 3), ())  # nothing written


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_a_change_that_breaks_the_quorum_only_with_a_pending_one_is_refused() -> None:
    """Five sealers, node4 down. remove(node0) and remove(node1) each leave four sealers,
    three of them up (quorum 3); together three sealers, two of them up."""
    async with MemoryCluster(5, governors=(GOVERNOR.address,)) as cluster:
        keys = [k.public_key for k in cluster.keys]
        await cluster.stop(4)
        node = cluster.node(2)
        await wait_until(lambda: len(node.heard_peers()) == 3)
        head = node.chain.head.number
        alone = change("remove", keys[1], head=head)  # would pass alone: {0, 2, 3, 4}, 3 up
        first, second = node.submit([change("remove", keys[0], head=head), alone])
        assert isinstance(first, bytes), first
        assert first in node.pool  # pending, not committed: the same call admitted it
        assert isinstance(second, TxRejected), second
        assert second.reason is Reason.MEMBERSHIP_BREAKS_QUORUM
        detail = second.detail
        assert "remove would leave 3 sealers (after the 1 membership change(s) pending" in detail
        assert "quorum 3, but only 2 of them are connected" in detail
        assert "not heard from: node4 (sealer 2)" in detail
        # once the first commits, the second is judged on the head, and refused again
        others = [cluster.node(i) for i in (1, 2, 3)]  # node0, removed, may stop before
        await wait_until(lambda: all(len(n.membership.sealers) == 4 for n in others))
        (again,) = node.submit([alone])
        assert isinstance(again, TxRejected) and "pending" not in again.detail
        assert "would leave 3 sealers, quorum 3, but only 2" in again.detail


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_a_pending_change_from_gossip_counts_too() -> None:
    """The change pending at node2 came from node1 by gossip: node2 judges a client's
    change with it. Consensus frames are dropped so that nothing commits meanwhile."""
    async with MemoryCluster(5, governors=(GOVERNOR.address,)) as cluster:
        keys = [k.public_key for k in cluster.keys]
        await cluster.stop(4)
        a, b = cluster.node(1), cluster.node(2)
        await wait_until(lambda: len(b.heard_peers()) == 3)

        def consensus_frame(src: str, dst: str, data: bytes) -> bool:
            return isinstance(wire.decode(data), wire.Consensus)

        cluster.hub.drop = consensus_frame  # status and gossip still flow: all heard
        head = a.chain.head.number
        (tx_hash,) = a.submit([change("remove", keys[0], head=head)])
        assert isinstance(tx_hash, bytes), tx_hash
        await wait_until(lambda: tx_hash in b.pool)
        (refused,) = b.submit([change("remove", keys[1], head=head)])
        assert isinstance(refused, TxRejected), refused
        assert refused.reason is Reason.MEMBERSHIP_BREAKS_QUORUM
        assert "pending in this node's pool" in refused.detail
        (forced,) = b.submit([change("remove", keys[1], head=head)], force=True)
        assert isinstance(forced, bytes)


# -- F2: only peers heard from recently count -------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.asyncio
async def test_a_frozen_sealer_stops_counting_within_the_window() -> None:
    async with MemoryCluster(4, governors=(GOVERNOR.address,)) as cluster:
        keys = [k.public_key for k in cluster.keys]
        node = cluster.node(0)
        frozen_id = keys[3].hex()
        await wait_until(lambda: frozen_id in node.heard_peers())
        freeze(cluster, 3)
        since = time.monotonic()
        await wait_until(
            lambda: frozen_id not in node.heard_peers(), timeout=node_module.HEARD_WINDOW + 3
        )
        took = time.monotonic() - since
        assert took <= node_module.HEARD_WINDOW + 1.5, took
        assert frozen_id in node.transport.peers()  # its link is still up
        # without node1 the new set {0, 2, 3} needs 3: node3 no longer counts
        (refused,) = node.submit([change("remove", keys[1], head=node.chain.head.number)])
        assert isinstance(refused, TxRejected), refused
        assert refused.reason is Reason.MEMBERSHIP_BREAKS_QUORUM
        assert "only 2 of them are connected" in refused.detail
        assert "heard from within 5 s" in refused.detail
        assert "not heard from: node3 (sealer 2)" in refused.detail  # index in the new set
        # it speaks again: it counts again, and the same change is admitted
        cluster.hub.drop = None
        await wait_until(lambda: frozen_id in node.heard_peers(), timeout=5)
        (ok,) = node.submit([change("remove", keys[1], head=node.chain.head.number)])
        assert isinstance(ok, bytes), ok


# -- F5: a free node refuses transactions, and says it is free -------------------------


@pytest.mark.timeout(90)
@pytest.mark.asyncio
async def test_a_free_node_refuses_transactions_and_says_it_is_free() -> None:
    async with MemoryCluster(4, free=1, governors=(GOVERNOR.address,), rpc=True) as cluster:
        free = await cluster.start(4)
        assert free.role == "free"
        (refused,) = free.submit([transfer(1)])
        assert isinstance(refused, TxRejected)
        assert refused.reason is Reason.NOT_A_GROUP_MEMBER
        assert "not a sealer or observer" in refused.detail
        (forced,) = free.submit([transfer(2)], force=True)  # force skips only the quorum check
        assert isinstance(forced, TxRejected) and forced.reason is Reason.NOT_A_GROUP_MEMBER
        assert len(free.pool) == 0 and free.pool.rejected[Reason.NOT_A_GROUP_MEMBER] == 2
        assert free.stall_reason().startswith("free node: in neither the sealer nor the observer")
        assert free.rpc_server is not None
        async with AsyncRpcClient("127.0.0.1", free.rpc_server.port) as client:
            with pytest.raises(RpcError) as info:
                await client.send_raw(transfer(3))
            err = info.value
            assert err.code == ErrorCode.NotAGroupMember.value == 10011
            assert err.data == {"reason": "NotAGroupMember", "status": "0x271b"}
            assert "send them to a sealer or observer" in err.message
            # the batch path: each entry gets the error
            answers = await client.send_raw_batch([transfer(4), transfer(5)])
            assert [getattr(a, "code", None) for a in answers] == [10011, 10011]
            # reads and call still work
            assert await client.block_number() == 0
            sealers = await client.call("0x1003", "getSealerList", [])
            assert sealers["values"][0] == 4
            status = await client.consensus_status()
            assert status["accountType"] == "free" and status["stalled"] is False
            # a removed node left holding txs it can never commit: stalled, and says why
            head = free.chain.head.number
            free.pool.admit(transfer(6, head=head), head)
            await wait_until(lambda: free.stall.stalled, timeout=free.stall_limit() + 5)
            status = await client.consensus_status()
            assert status["stalled"] is True
            assert status["stallReason"].startswith("free node: in neither")
            assert "waiting for a proposal" not in status["stallReason"]
        # the members take the same kind of transaction
        member = cluster.node(0)
        (ok,) = member.submit([transfer(7, head=member.chain.head.number)])
        assert isinstance(ok, bytes), ok


# -- F7: stall reasons name the missing sealers ----------------------------------------


@pytest.mark.timeout(90)
@pytest.mark.asyncio
async def test_a_stall_reason_names_the_sealers_not_heard_from() -> None:
    async with MemoryCluster(4) as cluster:
        await cluster.stop(2)
        cluster.node(3)  # running, but frozen below: its link stays up
        freeze(cluster, 3)
        node = cluster.node(0)
        (tx_hash,) = node.submit([transfer(1, head=node.chain.head.number)])
        assert isinstance(tx_hash, bytes)
        await wait_until(lambda: node.stall.stalled, timeout=node.stall_limit() + 10)
        await wait_until(lambda: len(node.heard_peers()) == 1, timeout=10)
        reason = node.stall_reason()
        assert reason.endswith(
            "; 2 of 4 sealers heard from, quorum 3; not heard from: node2 (sealer 2), "
            "node3 (sealer 3)"
        ), reason
        assert "node0 (" not in reason and "node1 (" not in reason  # the ones alive


@pytest.mark.timeout(30)
@pytest.mark.asyncio
async def test_a_node_leading_the_new_view_says_so() -> None:
    async with MemoryCluster(4) as cluster:
        node = cluster.node(1)

        def progress(leader: int) -> Progress:
            return Progress(
                phase="view_change",
                height=1,
                view=5,
                leader=leader,
                quorum=3,
                prepares=0,
                commits=0,
                view_changes=1,
            )

        await wait_until(lambda: len(node.heard_peers()) == 3)
        replica = node.replica
        replica.progress = lambda: progress(1)  # type: ignore[method-assign]
        assert node.stall_reason() == (
            "view change to view 5: this node leads the new view and needs 3 ViewChanges, has 1"
        )
        replica.progress = lambda: progress(2)  # type: ignore[method-assign]
        assert node.stall_reason() == (
            "view change to view 5: 1 of 3 ViewChanges, waiting for the NewView from node2"
        )
        await cluster.stop(2)
        assert node.stall_reason() == (
            "view change to view 5: 1 of 3 ViewChanges, waiting for the NewView from node2 "
            "(not heard from)"
        )
