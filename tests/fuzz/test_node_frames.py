"""Peer frames into running nodes (node/runtime/wire.py, the replica, block sync, the
txpool): a 4-sealer memory cluster keeps committing while a certified member -- the
observer's identity, relaying as a Byzantine sealer 3 would -- sends it mutated frames.

The seeds are real: every frame the cluster exchanged while committing its first blocks
(PrePrepares, Prepares, Commits, gossip, status, sync), captured on the hub. Each example
sends a few mutations of them (byte edits, field edits, a body under another kind byte,
and consensus messages whose fields were edited and then signed again with sealer 3's
key, so they get past the signature check into the replica's rules) and then a marker
transaction; when the marker is in the target's pool every frame before it has been
handled. Per example: no frame raised inside the node (``dropped["handler_error"]`` and
the supervisor's error count stay 0). At the end: a new transfer commits on every node,
all heads agree, and the chain holds only transactions that were validly signed.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.codec import DecodeError
from consensus.crypto import hash32
from consensus.messages import NewView, PrePrepare, ViewChange, decode_message, encode_message
from node.ledger.block import Block
from node.ledger.tx import SignedTransaction
from node.runtime import wire
from node.runtime.local import MemoryCluster
from node.transport.memory import MemoryTransport
from tests.consensus.test_messages import all_messages
from tests.fuzz.live import LoopThread, fates, internal_errors, wait
from tests.fuzz.support import fuzz, mutated_bytes, mutated_tree, time_limit
from tests.runtime.cluster import transfer

pytestmark = pytest.mark.timeout(time_limit(300))

N = 4
_marker_ids = itertools.count()


class Rig:
    def __init__(self, loop: LoopThread) -> None:
        self.loop = loop
        self.cluster = MemoryCluster(N, observers=1, seed=12, tick_ms=20)
        self.captured: list[bytes] = []
        self.sent_txs: set[bytes] = set()  # hashes of the valid txs we asked to commit

    def start(self) -> None:
        c = self.cluster

        async def go() -> None:
            for i in range(N):  # the sealers; the observer's identity is ours
                await c.start(i)
            self.evil = MemoryTransport(c.hub, c.keys[N].public_key.hex())
            await self.evil.start()

        self.loop.call(go, timeout=60)
        c.hub.drop = lambda src, dst, data: self.captured.append(data) and False
        for k in range(3):
            self.submit(
                k % N, [transfer(100 + j, head=self.head()) for j in range(5 * k, 5 * k + 5)]
            )
            target = 5 * (k + 1)
            wait(lambda t=target: self.committed_everywhere(t), 60, f"{target} txs committed")
        c.hub.drop = None
        self.evil.set_members([k.public_key.hex() for k in c.keys])

    def by_kind(self) -> dict[int, list[bytes]]:
        out: dict[int, list[bytes]] = {}
        for f in self.captured:
            if f:
                out.setdefault(f[0], []).append(f)
        return out

    @property
    def nodes(self) -> list:
        return self.cluster.running()

    def head(self) -> int:
        return self.loop.do(lambda: self.nodes[0].chain.head.number)

    def submit(self, i: int, raws: list[bytes]) -> None:
        for raw in raws:
            self.sent_txs.add(hash32(raw))
        out = self.loop.do(lambda: self.nodes[i].submit(raws))
        assert all(isinstance(x, bytes) for x in out), out

    def committed_everywhere(self, count: int) -> bool:
        return self.loop.do(
            lambda: all(n.chain.store.total_tx_count() >= count for n in self.nodes)
        )

    def send(self, target: int, frames: list[bytes]) -> None:
        """``frames`` then a marker tx to node ``target``; back once all were handled."""
        node_id = self.nodes[target].node_id
        marker = transfer(
            next(_marker_ids), head=self.head(), nonce=f"marker-{secrets.token_hex(8)}"
        )
        mhash = hash32(marker)
        self.sent_txs.add(mhash)

        def push() -> None:
            for f in frames:
                self.evil.send(node_id, f)
            self.evil.send(node_id, wire.encode(wire.Txs((marker,))))

        node = self.nodes[target]
        before = self.loop.do(lambda: fates(node))
        self.loop.do(push)
        try:
            wait(
                lambda: self.loop.do(
                    lambda: mhash in node.pool or node.chain.store.tx_location(mhash) is not None
                ),
                30,
                "the marker transaction to be handled",
            )
        except AssertionError:
            after = self.loop.do(lambda: fates(node))
            diff = {k: after[k] - before[k] for k in after if after[k] != before[k]}
            raise AssertionError(
                f"marker not handled; counters moved {diff}; evil {self.evil.stats.snapshot()};"
                f" frames {[f[:40].hex() for f in frames]}"
            ) from None


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    with LoopThread() as loop:
        r = Rig(loop)
        r.start()
        yield r
        loop.call(lambda: r.evil.close())
        for i in range(N):
            loop.call(lambda i=i: r.cluster.stop(i), timeout=60)


# -- strategies --------------------------------------------------------------------------------

_SEALER3 = MemoryCluster(N, observers=1, seed=12).keys[3]  # same seed: the same keys


@dataclasses.dataclass(frozen=True)
class Retarget:
    """A consensus message edited by a Byzantine sealer 3 and moved to the target's
    current slot (``dh`` heights and ``dv`` views ahead), then signed with its key."""

    body: bytes
    dh: int
    dv: int


def retarget(r: Retarget, height: int, view: int, head: bytes) -> bytes:
    try:
        msg = decode_message(r.body)
    except DecodeError:
        return bytes([wire.Kind.CONSENSUS]) + r.body
    h, v = height + r.dh, view + r.dv
    changes: dict[str, object] = {"sender": 3}
    if isinstance(msg, PrePrepare):
        changes["proposal"] = dataclasses.replace(
            msg.proposal, height=h, parent_hash=head if r.dh == 0 else msg.proposal.parent_hash
        )
        changes["view"] = v
    elif hasattr(msg, "height"):
        changes.update(height=h, view=max(v, 1) if isinstance(msg, ViewChange | NewView) else v)
    try:
        msg = dataclasses.replace(msg, **changes)  # type: ignore[arg-type]
        msg = dataclasses.replace(msg, signature=_SEALER3.sign(msg.digest))
    except (ValueError, TypeError):  # e.g. a certificate that no longer fits its height
        pass
    return bytes([wire.Kind.CONSENSUS]) + msg.encode()


@st.composite
def frames(draw: st.DrawFn, by_kind: dict[int, list[bytes]]) -> bytes | Retarget:
    seed = draw(st.sampled_from(by_kind[draw(st.sampled_from(sorted(by_kind)))]))
    how = draw(st.sampled_from(["bytes", "tree", "tree", "resigned", "resigned", "kind", "random"]))
    kind, body = seed[:1], seed[1:]
    if how == "bytes":
        return draw(mutated_bytes(seed))
    if how == "kind":
        return bytes([draw(st.sampled_from(list(wire.Kind)) | st.integers(0, 255))]) + body
    if how == "random":
        return kind + draw(st.binary(max_size=300))
    if not body:
        return seed
    edited = draw(mutated_tree(body))
    if how == "resigned" and kind == bytes([wire.Kind.CONSENSUS]):
        return Retarget(edited if draw(st.booleans()) else body, draw(st.integers(0, 2)),
                        draw(st.integers(0, 1)))  # fmt: skip
    return kind + edited


# -- the tests ---------------------------------------------------------------------------------


def test_the_capture_holds_every_busy_kind(rig: Rig) -> None:
    kinds = {f[0] for f in rig.captured if f}
    assert {wire.Kind.CONSENSUS, wire.Kind.TXS, wire.Kind.STATUS} <= kinds, kinds
    # add what a quiet run may not have exchanged: tx fetches and block sync
    block = rig.loop.do(lambda: rig.nodes[0].chain.store.block_by_number(1))
    assert block is not None
    tx = Block.decode(block).transactions[0]
    rig.captured += [
        wire.encode(wire.TxRequest(2, (hash32(tx), b"\x01" * 32))),
        wire.encode(wire.TxResponse(2, (tx,))),
        wire.encode(wire.BlockRequest(1, 3)),
        wire.encode(wire.BlockResponse((block,))),
        # view changes and new views (a quiet run has none), signed by test keys: the
        # retargeting signs them again as sealer 3
        *(wire.encode(wire.Consensus(encode_message(m))) for m in all_messages()),  # type: ignore[arg-type]
    ]


@fuzz(300)
@given(st.data())
def test_mutated_frames_are_handled_or_counted_and_never_raise(
    rig: Rig, data: st.DataObject
) -> None:
    drawn = data.draw(st.lists(frames(rig.by_kind()), min_size=1, max_size=8))
    target = data.draw(st.integers(0, N - 1))
    node = rig.nodes[target]
    height, view, head = rig.loop.do(
        lambda: (node.chain.head.number + 1, node.replica.view, node.chain.head.block_hash)
    )
    batch = [retarget(f, height, view, head) if isinstance(f, Retarget) else f for f in drawn]
    before = rig.loop.do(lambda: fates(node))
    rig.send(target, batch)
    after = rig.loop.do(lambda: fates(node))
    assert rig.loop.do(lambda: internal_errors(node)) == 0, rig.loop.do(
        lambda: node.supervisor.errors
    )
    assert after["dropped.handler_error"] == 0
    assert sum(after.values()) > sum(before.values())  # at least the marker was counted


def test_the_cluster_still_commits_and_holds_only_signed_transactions(rig: Rig) -> None:
    head = rig.head()
    raw = transfer(10_000, head=head)
    rig.submit(1, [raw])
    wait(
        lambda: rig.loop.do(
            lambda: all(n.chain.store.tx_location(hash32(raw)) is not None for n in rig.nodes)
        ),
        90,
        "a fresh transfer to commit on every node",
    )
    wait(lambda: rig.loop.do(lambda: len({n.chain.head for n in rig.nodes}) == 1), 30, "one head")
    nodes = rig.nodes
    for n in nodes:
        assert internal_errors(n) == 0 and n.dropped["handler_error"] == 0, n.supervisor.errors
    chain = nodes[0].chain

    def committed() -> list[bytes]:
        out = []
        for number in range(1, chain.head.number + 1):
            block = chain.block(number)
            assert block is not None
            out += block.transactions
        return out

    for raw_tx in rig.loop.do(committed):
        stx = SignedTransaction.decode(raw_tx)
        stx.recover_sender()  # a valid signature; a fuzzed tx may have a stranger's
        assert stx.tx.chain_id == "chain0"
    # and every valid transaction we sent (the markers too) committed: nothing was lost
    wait(
        lambda: rig.sent_txs <= {hash32(r) for r in rig.loop.do(committed)},
        90,
        "every transaction sent to commit",
    )
