"""Security rules on a running cluster (memory transport, real JSON-RPC over HTTP).

Already covered elsewhere, not repeated here: a replay of a committed transaction while
blocks commit, to every node, on real processes (tests/adversarial, ``test_replays_of_
committed_and_in_flight_txs_while_blocks_commit``) and the pool's rules one by one
(tests/runtime/test_txpool.py); the owner rules of permissioned DagTransfer and the
governor rules of SystemConfig and Consensus in the executor (tests/ledger/
test_dag_transfer.py, test_system_config.py, test_consensus_precompile.py), a
non-governor's ``config set`` from the console (tests/cli/test_cluster.py) and
governance dry runs through ``call`` (tests/rpc/test_call_json.py); a non-sealer sender
index and forged signatures in the replica (tests/consensus/test_replica.py); RPC bodies
over 8 MiB (413, -32000), heads over 32 KiB (431) and batches over 20,000 (-32001)
(tests/rpc/test_http.py, tests/adversarial ``test_http_framing_abuse``,
``test_malformed_json_rpc``).

Added here, end to end on live nodes: a replayed transaction is refused inside and after
its block_limit window, by RPC and by gossip, and never commits twice; in permissioned
mode nobody but a user's owner can spend its balance (another key, an admin, a forged
or re-signed copy of the owner's transaction); governance calls (setValueByKey,
addSealer, addObserver, remove at 0x1003) from a normal account end in receipts with
-50000 and change nothing on any node; votes signed by an observer, whatever sealer
index they claim, do not make a quorum.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from consensus import messages as cm
from consensus.crypto import KeyPair, hash32
from node.ledger.tx import SignedTransaction, Transaction
from node.rpc.client import AsyncRpcClient, RpcError
from node.runtime import Node, wire
from node.runtime.local import MemoryCluster

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

RNG = random.Random(1212)
ADMIN, ALICE, BOB, MALLORY, GOVERNOR = (KeyPair.generate(RNG) for _ in range(5))
NO_PERMISSION = -50000


async def until(cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    try:
        async with asyncio.timeout(timeout):
            while not cond():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def status(receipt: dict) -> int:
    return int(receipt["status"], 16)


def client(node: Node) -> AsyncRpcClient:
    assert node.rpc_server is not None
    return AsyncRpcClient("127.0.0.1", node.rpc_server.port)


def raw(key: KeyPair, method: str, args: list, *, block_limit: int, nonce: str | None = None,
        to: str = "0x5002") -> SignedTransaction:  # fmt: skip
    tx = Transaction.build(chain_id="chain0", group_id="group0", to=to, method=method,
                           args=args, block_limit=block_limit, nonce=nonce)  # fmt: skip
    return tx.sign(key)


async def refused(c: AsyncRpcClient, data: bytes) -> str:
    with pytest.raises(RpcError) as info:
        await c.send_raw(data)
    return str(info.value.reason)


# -- replays -----------------------------------------------------------------------------------


async def test_a_replay_is_refused_inside_and_after_its_block_limit_window() -> None:
    async with MemoryCluster(4, rpc=True) as cluster:
        nodes = cluster.running()
        clients = [client(n) for n in nodes]
        try:
            head = await clients[0].block_number()
            t = raw(ALICE, "userSave", ["replayed", 7], block_limit=head + 3)
            await clients[0].send_raw(t.encoded)
            receipt = await clients[0].wait_for_receipt(t.hash, 20)
            assert status(receipt) == 0
            committed_at = int(receipt["blockNumber"], 16)
            assert committed_at <= head + 3
            total = nodes[0].chain.store.total_tx_count()

            async def replay_everywhere(expected: set[str]) -> None:
                for c in clients:  # by RPC, to every node
                    assert await refused(c, t.encoded) in expected
                before = [dict(n.pool.rejected) for n in nodes]
                gossip = wire.encode(wire.Txs((t.encoded,)))
                for i, n in enumerate(nodes):  # and by gossip, from a member
                    nodes[(i + 1) % 4].transport.send(n.node_id, gossip)
                await until(
                    lambda: all(
                        sum(n.pool.rejected.values()) > sum(b.values())
                        for n, b in zip(nodes, before, strict=True)
                    ),
                    10,
                    "every node to refuse the gossiped replay",
                )
                assert all(t.hash not in n.pool for n in nodes)

            # inside the window: head < block_limit
            assert nodes[0].chain.head.number < t.tx.block_limit
            await replay_everywhere({"AlreadyInChain"})
            # after it: commit other transactions until the head passes block_limit
            k = 0
            while nodes[0].chain.head.number <= t.tx.block_limit + 1:
                now = nodes[0].chain.head.number
                await clients[k % 4].send_raw(
                    raw(BOB, "userSave", [f"filler{k}", 1], block_limit=now + 100).encoded
                )
                k += 1
                await until(lambda now=now: nodes[0].chain.head.number > now, 20, "a block")
            await until(lambda: len({n.chain.head for n in nodes}) == 1, 20, "one head")
            await replay_everywhere({"AlreadyInChain", "BlockLimitCheckFail"})
            # a never-sent transaction whose window has passed is refused as such
            late = raw(ALICE, "userSave", ["late", 1], block_limit=t.tx.block_limit)
            for c in clients:
                assert await refused(c, late.encoded) == "BlockLimitCheckFail"
            # the replayed transaction is in the chain exactly once, where it was
            await asyncio.sleep(0.5)
            for n in nodes:
                assert n.chain.store.tx_location(t.hash)[0] == committed_at
                assert n.chain.store.total_tx_count() == total + k
                assert n.chain.store.tx_location(late.hash) is None
        finally:
            for c in clients:
                await c.close()


# -- permissioned DagTransfer -------------------------------------------------------------------


async def test_only_the_owner_can_spend_a_balance_in_permissioned_mode() -> None:
    async with MemoryCluster(4, rpc=True, asset_admins=(ADMIN.address,)) as cluster:
        nodes = cluster.running()
        async with client(nodes[0]) as c0, client(nodes[2]) as c2:
            assert status(await c0.send_tx(ADMIN, "0x5002", "userAdd",
                                           ["alice", 100, ALICE.address.hex()])) == 0  # fmt: skip
            assert status(await c0.send_tx(ADMIN, "0x5002", "userAdd",
                                           ["bob", 0, BOB.address.hex()])) == 0  # fmt: skip
            head = await c0.block_number()
            attempts = {
                "another account": await c2.user_transfer(MALLORY, "alice", "bob", 50),
                "the recipient": await c2.user_transfer(BOB, "alice", "bob", 50),
                "an asset admin": await c2.user_transfer(ADMIN, "alice", "bob", 50),
                "a draw by another": await c2.user_draw(MALLORY, "alice", 1),
            }
            for who, receipt in attempts.items():
                assert status(receipt) == NO_PERMISSION, (who, receipt)
            # the owner's own transaction, signed again by someone else: another sender
            mine = raw(ALICE, "userTransfer", ["alice", "bob", 60], block_limit=head + 100)
            resigned = SignedTransaction(mine.tx, MALLORY.sign(mine.tx.signing_hash))
            await c0.send_raw(resigned.encoded)
            assert status(await c0.wait_for_receipt(resigned.hash, 20)) == NO_PERMISSION
            # or edited (more money) while keeping the owner's signature: the signature
            # now recovers to some other key (or none), never to the owner's
            bigger = raw(ALICE, "userTransfer", ["alice", "bob", 99], block_limit=head + 100)
            forged = SignedTransaction(bigger.tx, mine.signature)
            try:
                await c0.send_raw(forged.encoded)
            except RpcError as exc:
                assert exc.reason == "InvalidSignature"
            else:
                assert status(await c0.wait_for_receipt(forged.hash, 20)) == NO_PERMISSION
            for n in nodes:
                async with client(n) as c:
                    assert (await c.user_balance("alice"))["values"] == [100]
                    assert (await c.user_balance("bob"))["values"] == [0]
            # and the owner can
            assert status(await c2.user_transfer(ALICE, "alice", "bob", 60)) == 0
            assert (await c0.user_balance("bob"))["values"] == [60]


# -- governance -------------------------------------------------------------------------------


async def test_governance_from_a_normal_account_fails_with_no_permission() -> None:
    async with MemoryCluster(4, observers=1, free=1, rpc=True,
                             governors=(GOVERNOR.address,)) as cluster:  # fmt: skip
        nodes = cluster.running()
        sealers = [k.public_key.hex() for k in cluster.keys[:4]]
        observer, free = cluster.keys[4].public_key.hex(), cluster.keys[5].public_key.hex()
        async with client(nodes[1]) as c:
            before = (
                await c.sealers(),
                await c.observers(),
                await c.system_config("tx_count_limit"),
            )
            assert before == (sealers, [observer], "1000")
            calls = [
                ("0x1000", "setValueByKey", ["tx_count_limit", "5"]),
                ("0x1000", "setValueByKey", ["consensus_timeout", "3600"]),
                ("0x1003", "addObserver", [free]),
                ("0x1003", "addSealer", [observer]),
                ("0x1003", "remove", [sealers[0]]),
                ("0x1003", "addObserver", [sealers[3]]),  # demote a sealer
            ]
            for key in (MALLORY, ADMIN):  # any account that is not a genesis governor
                for to, method, args in calls:
                    receipt = await c.send_tx(key, to, method, args)
                    assert status(receipt) == NO_PERMISSION, (method, args, receipt)
            for n in nodes:
                async with client(n) as other:
                    after = (await other.sealers(), await other.observers(),
                             await other.system_config("tx_count_limit"))  # fmt: skip
                    assert after == before
            # the governor can (the path works; only the sender was wrong)
            receipt = await c.send_tx(
                GOVERNOR, "0x1000", "setValueByKey", ["tx_count_limit", "900"]
            )
            assert status(receipt) == 0
            await until(lambda: len({n.chain.head for n in nodes}) == 1, 20, "one head")
            assert await c.system_config("tx_count_limit") == "900"


# -- votes from a non-sealer ------------------------------------------------------------------


async def test_an_observers_votes_do_not_make_a_quorum() -> None:
    """Sealers 2 and 3 are down: 0 and 1 cannot commit alone (quorum 3 of 4). The running
    observer signs Prepares and Commits for the pending block claiming to be sealer 2, 3,
    or its own index; the sealers drop every one and nothing commits, until sealer 2
    comes back."""
    async with MemoryCluster(4, observers=1, tick_ms=20) as cluster:
        await cluster.stop(2)
        await cluster.stop(3)
        n0, n1, obs = cluster.node(0), cluster.node(1), cluster.node(4)
        votes: list[cm.Prepare | cm.Commit] = []

        def sniff(src: str, dst: str, data: bytes) -> bool:
            if data[:1] == bytes([wire.Kind.CONSENSUS]):
                msg = cm.decode_message(data[1:])
                if isinstance(msg, cm.Prepare | cm.Commit):
                    votes.append(msg)
            return False

        cluster.hub.drop = sniff
        tx = raw(ALICE, "userSave", ["carol", 3], block_limit=500)
        n0.submit([tx.encoded])
        await until(lambda: any(isinstance(v, cm.Prepare) for v in votes), 30, "a Prepare")
        cluster.hub.drop = None
        template = next(v for v in votes if isinstance(v, cm.Prepare))
        key = cluster.keys[4]  # the observer's own key
        forged: list[bytes] = []
        for kind, digest in ((cm.Prepare, cm.prepare_digest), (cm.Commit, cm.commit_digest)):
            for claimed in (2, 3, 4, 200):
                d = digest(template.view, template.height, template.proposal_digest,
                           template.block_hash, template.state_root)  # fmt: skip
                vote = kind(
                    template.view,
                    template.height,
                    template.proposal_digest,
                    template.block_hash,
                    template.state_root,
                    claimed,
                    key.sign(d),
                )
                forged.append(wire.encode(wire.Consensus(vote.encode())))
        drops = [sum(n.replica.counters.drops.values()) for n in (n0, n1)]
        for _ in range(3):
            for frame in forged:
                for target in (n0, n1):
                    obs.transport.send(target.node_id, frame)
            await asyncio.sleep(0.3)
        assert all(n.chain.head.number == 0 for n in (n0, n1, obs)), "forged votes committed"
        for n, before in zip((n0, n1), drops, strict=True):
            assert sum(n.replica.counters.drops.values()) > before
            assert (
                n.replica.counters.drops["bad_signature"]
                + n.replica.counters.drops["redundant"]
                + n.replica.counters.drops["duplicate"]
                >= 1
            )
            assert n.replica.counters.drops["non_sealer"] >= 1
        await cluster.start(2)
        await until(lambda: all(n.chain.store.tx_location(tx.hash) for n in (n0, n1)), 60,
                    "the block to commit once a real sealer is back")  # fmt: skip
        assert hash32(tx.encoded) == tx.hash
