"""No client can halt the chain (in-process): racing nonces, a tx whose execution raises,
and a stall that says so. The multi-process versions are in tests/adversarial/."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from node.ledger.tx import SignedTransaction
from node.runtime import Node
from node.runtime.service import NodeService
from node.runtime.txpool import Reason, TxRejected
from tests.runtime.cluster import MemoryCluster, loops_alive, transfer, wait_until

pytestmark = pytest.mark.asyncio

TIMEOUT = 3  # consensus_timeout (s), the system config minimum


def committed(node: Node, raw: bytes) -> bool:
    return node.chain.store.tx_location(SignedTransaction.decode(raw).hash) is not None


def signed(nonce: str, user: str) -> bytes:
    return transfer(0, args=[user, 7], nonce=nonce)


async def test_one_nonce_sent_to_different_nodes_at_once_does_not_stall_the_chain() -> None:
    async with MemoryCluster(4, consensus_timeout=TIMEOUT, tick_ms=10) as cluster:
        nodes = cluster.running()
        x, y = signed("k", "xavier"), signed("k", "yvonne")
        # Both reach their nodes before any gossip: each pair refuses the other's tx.
        for i, raw in ((0, x), (2, x), (1, y), (3, y)):
            assert isinstance(nodes[i].submit([raw])[0], bytes)
        loop = asyncio.get_running_loop()
        start = loop.time()
        either = lambda: all(committed(n, x) or committed(n, y) for n in nodes)  # noqa: E731
        await wait_until(either, 2 * TIMEOUT)
        winner, loser = (x, y) if committed(nodes[0], x) else (y, x)
        assert all(committed(n, winner) and not committed(n, loser) for n in nodes)
        loser_hash = SignedTransaction.decode(loser).hash
        assert all(loser_hash not in n.pool for n in nodes), "the loser is evicted everywhere"
        with pytest.raises(TxRejected) as exc:
            nodes[0].pool.admit(loser, nodes[0].chain.head.number)
        assert exc.value.reason is Reason.NONCE_CHECK_FAIL, "and refused from then on"
        # and the chain goes on committing, in well under a view change per block
        head = nodes[0].chain.head.number
        nodes[1].submit([transfer(i, head=head) for i in range(30)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 31 for n in nodes), 10)
        await wait_until(lambda: len({n.chain.head for n in nodes}) == 1)
        assert loop.time() - start < 4 * TIMEOUT


async def test_a_transaction_whose_execution_raises_is_quarantined_not_proposed_forever() -> None:
    async with MemoryCluster(4, consensus_timeout=TIMEOUT, tick_ms=10) as cluster:
        nodes = cluster.running()
        for node in nodes:  # the same bug on every node, as real code would have it
            executor = node.chain.executor
            real = executor.execute_block

            def buggy(state: Any, *, _real: Any = real, **kw: Any) -> Any:
                if any(v.tx.tx.args[:1] == ("boom",) for v in kw["txs"]):
                    raise KeyError("a bug only this transaction reaches")
                return _real(state, **kw)

            executor.execute_block = buggy  # type: ignore[method-assign]
        poison = signed("poison", "boom")
        good = [transfer(i) for i in range(10)]
        nodes[0].submit([*good[:5], poison, *good[5:]])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 10 for n in nodes), 30)
        poison_hash = SignedTransaction.decode(poison).hash
        assert not any(committed(n, poison) for n in nodes)
        assert all(poison_hash not in n.pool and n.pool.quarantined == 1 for n in nodes)
        assert sum(n.supervisor.errors["execute"] for n in nodes) >= 1
        results = nodes[2].submit([poison])
        assert isinstance(results[0], TxRejected) and results[0].reason is Reason.QUARANTINED
        head = nodes[0].chain.head.number
        nodes[3].submit([transfer(i, head=head) for i in range(10, 20)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 20 for n in nodes), 10)
        assert all(loops_alive(n) for n in nodes)


async def test_a_stall_says_so_with_the_reason_and_clears_when_the_chain_moves() -> None:
    async with MemoryCluster(4, consensus_timeout=TIMEOUT, tick_ms=10) as cluster:
        nodes = cluster.running()
        nodes[0].submit([transfer(0)])
        await wait_until(lambda: all(n.chain.head.number == 1 for n in nodes))
        r = nodes[0].replica
        leader = r.leader_of(r.view, r.height)
        down, refuser = [i for i in range(4) if i != leader][:2]
        await cluster.stop(down)
        bad = cluster.node(refuser)
        real = bad.pool.admit, bad.pool.admit_for_proposal, bad.pool.admit_many

        def refuse(raw: bytes, head: int) -> Any:
            raise TxRejected(Reason.MALFORMED, "planted: this node refuses every tx")

        def refuse_all(raws: Any, head: int, **kw: Any) -> Any:
            return [TxRejected(Reason.MALFORMED, "planted: this node refuses every tx")] * len(raws)

        # fetched and (re-)gossiped: regossip after a timeout would otherwise cure it
        bad.pool.admit = bad.pool.admit_for_proposal = refuse  # type: ignore[method-assign]
        bad.pool.admit_many = refuse_all  # type: ignore[method-assign]
        lead = cluster.node(leader)
        head = lead.chain.head.number
        lead.pool.admit(transfer(1, head=head), head)  # only the leader holds it: others fetch
        alive = cluster.running()
        services = {n.config.name: NodeService(n) for n in alive}

        def status(n: Node) -> dict[str, Any]:
            return dict(services[n.config.name].consensus_status())

        await wait_until(lambda: all(status(n)["stalled"] for n in alive), 30)
        await wait_until(
            lambda: "refused" in (status(bad)["stall_reason"] or "")
            and "unavailable" in (status(bad)["stall_reason"] or ""),
            30,
        )
        def changing_view(n: Node) -> bool:
            cs = status(n)
            return bool(cs["leader_failed"]) and cs["to_view"] > cs["view"]

        await wait_until(lambda: any(changing_view(n) for n in alive), 30)
        cs = status(lead)
        assert cs["seconds_since_last_commit"] > TIMEOUT
        assert cs["stall_reason"], "a stalled node always says why"
        metrics = {m.name: m for m in services[lead.config.name].metrics()}
        assert metrics["ledgerlab_stalled"].samples[0][1] == 1
        assert metrics["ledgerlab_seconds_since_last_commit"].samples[0][1] > TIMEOUT
        # the cure: the refusing node accepts again; the chain moves and the stall clears
        bad.pool.admit, bad.pool.admit_for_proposal, bad.pool.admit_many = real  # type: ignore[method-assign]
        await wait_until(lambda: all(n.chain.head.number == 2 for n in alive), 60)
        await asyncio.sleep(1.2)  # one status-loop pass
        assert not any(status(n)["stalled"] for n in alive)
        assert all(status(n)["stall_reason"] is None for n in alive)


async def test_a_full_restart_commits_at_once_even_with_an_hour_long_timeout() -> None:
    # Before, every restarted sealer abstained in the slot it restarted in, so after a
    # full down/up nothing committed until a view change: an hour at 3600 s.
    async with MemoryCluster(4, consensus_timeout=3600, tick_ms=10) as cluster:
        nodes = cluster.running()
        nodes[0].submit([transfer(0)])
        await wait_until(lambda: all(n.chain.head.number == 1 for n in nodes), 10)
        for i in range(4):
            await cluster.stop(i)
        for i in range(4):
            await cluster.start(i)
        nodes = cluster.running()
        nodes[3].submit([transfer(i, head=1) for i in range(1, 20)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 20 for n in nodes), 10)
        assert all(n.replica.view == 0 for n in nodes), "no view change was needed"


async def test_seconds_since_last_commit_survives_a_restart_and_the_stall_limit_is_capped() -> None:
    async with MemoryCluster(4, consensus_timeout=3600, tick_ms=10) as cluster:
        nodes = cluster.running()
        nodes[0].submit([transfer(0)])
        await wait_until(lambda: all(n.chain.head.number == 1 for n in nodes), 10)
        await asyncio.sleep(1.5)
        await cluster.stop(2)
        node = await cluster.start(2)
        assert NodeService(node).consensus_status()["seconds_since_last_commit"] >= 1.4
        assert node.consensus_timeout() == 3600 and node.stall_limit() == 30
