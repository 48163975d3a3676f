"""One node's CPU per transaction, stage by stage, in one process (no sockets, no RPC).

    python -m scripts.bench_node [--blocks 8] [--rounds 3] [--profile]

What a node of a 4-node chain does for each 1,000-transfer block, through the real code:
250 transactions arrive from "clients" (``TxPool.admit_many`` in the node's slices, then
the gossip frame it sends), 750 arrive as gossip frames of 200 (``wire.decode`` +
``TxPool.admit_many`` slice by slice, as ``Node._admit_gossip``), then the proposal
(seal, ``ProposalBody`` encode/decode, inclusion checks), ``Chain.execute`` on RocksDB,
``Chain.commit`` (synced) and ``TxPool.on_commit``. Each stage is timed with CPU time
(``time.process_time``) and reported per transaction of the block, with the node's own
garbage-collector settings; a round runs
``--blocks`` blocks on a fresh ledger and the best round is kept, because on a shared
machine interference only adds. JSON-RPC, TLS and consensus messages are left out (see
docs/performance.md, "Node performance"): this is the part of a node's work that a change
to admission, execution or storage moves, measured far less noisily than a cluster.
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import tempfile
import time
from collections.abc import Sequence

from consensus.crypto import KeyPair
from node.__main__ import _tune_gc
from node.ledger.block import BlockSeal
from node.ledger.chain import Chain, ProposalBody
from node.ledger.genesis import GenesisConfig
from node.ledger.tx import Transaction
from node.runtime import wire
from node.runtime.node import ADMIT_SLICE
from node.runtime.service import SUBMIT_SLICE
from node.runtime.txpool import TxPool, TxRejected
from storage.backends import open_store
from storage.ledger import LedgerStore

BLOCK_TXS = 1000
OWN_TXS = 250  # a quarter of the load reaches each of 4 nodes from its clients
GOSSIP_BATCH = 200
USERS = 1000
STAGES = ("own admit", "gossip out", "gossip in", "proposal", "execute", "commit", "on_commit")


class Workload:
    """Signed transactions for one run: a block of userAdd, then ``blocks`` of transfers."""

    def __init__(self, blocks: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        sealers = [KeyPair.generate(rng) for _ in range(4)]
        self.genesis = GenesisConfig(sealers=tuple(k.public_key for k in sealers))
        self._clients = [KeyPair.generate(rng) for _ in range(8)]
        users = [f"user{i}" for i in range(USERS)]
        self.setup = [self._tx(i, "userAdd", (u, 10**12)) for i, u in enumerate(users)]
        self.blocks = [
            [
                self._tx(i, "userTransfer", (rng.choice(users), rng.choice(users), 1 + i % 50))
                for i in range(BLOCK_TXS)
            ]
            for _ in range(blocks)
        ]

    def _tx(self, i: int, method: str, args: tuple[str | int, ...]) -> bytes:
        g = self.genesis
        tx = Transaction.build(
            chain_id=g.chain_id,
            group_id=g.group_id,
            to="0x5002",
            method=method,
            args=args,
            block_limit=900,
        )
        return tx.sign(self._clients[i % len(self._clients)]).encoded


class OneNode:
    """A ledger on RocksDB and a pool, fed block by block as a node of the chain would be."""

    def __init__(self, genesis: GenesisConfig, folder: str) -> None:
        self.store = LedgerStore(open_store(folder, "rocksdb"))
        self.chain = Chain(self.store, genesis)
        self.pool = TxPool(
            chain_id=genesis.chain_id,
            group_id=genesis.group_id,
            in_chain=lambda h: self.store.tx_location(h) is not None,
            sees_every_commit=True,
        )
        self.seconds = dict.fromkeys(STAGES, 0.0)

    def block(self, raws: Sequence[bytes]) -> None:
        clock = time.process_time
        pool, chain = self.pool, self.chain
        head = chain.head.number
        height = head + 1
        peers = raws[OWN_TXS:]
        frames = [  # what the other nodes gossip: their work, built before the clock starts
            wire.encode(wire.Txs(tuple(peers[i : i + GOSSIP_BATCH])))
            for i in range(0, len(peers), GOSSIP_BATCH)
        ]
        marks = [clock()]
        own = []  # as NodeService._submit: SUBMIT_SLICE at a time
        for i in range(0, OWN_TXS, SUBMIT_SLICE):
            for v in pool.admit_many(raws[i : i + SUBMIT_SLICE], head):
                assert not isinstance(v, TxRejected), v
                own.append(v.tx.encoded)
        marks.append(clock())
        for i in range(0, len(own), GOSSIP_BATCH):
            wire.encode(wire.Txs(tuple(own[i : i + GOSSIP_BATCH])))
        marks.append(clock())
        for frame in frames:
            msg = wire.decode(frame)
            assert isinstance(msg, wire.Txs)
            for i in range(0, len(msg.raw), ADMIT_SLICE):  # as Node._admit_gossip
                pool.admit_many(msg.raw[i : i + ADMIT_SLICE], head)
        marks.append(clock())
        picked = [v for v in pool.seal(BLOCK_TXS, height) if pool.includable(v, height)]
        payload = ProposalBody(int(time.time() * 1000), 0, tuple(v.hash for v in picked)).encode()
        body = ProposalBody.decode(payload)
        assert not pool.missing(body.tx_hashes)
        found = [pool.get(h) for h in body.tx_hashes]
        txs = [v for v in found if v is not None and pool.includable(v, height)]
        marks.append(clock())
        executed = chain.execute(height, chain.head.block_hash, body, txs)
        marks.append(clock())
        block = chain.commit(executed, BlockSeal(0, ()))
        marks.append(clock())
        pool.on_commit(block.number, [v.tx for v in executed.txs])
        marks.append(clock())
        for stage, (a, b) in zip(STAGES, itertools.pairwise(marks), strict=True):
            self.seconds[stage] += b - a

    def close(self) -> None:
        self.store.kv.close()


def one_round(work: Workload) -> dict[str, float]:
    """Microseconds per transaction per stage over ``work``'s transfer blocks."""
    folder = tempfile.mkdtemp(prefix="bench-node-")
    try:
        node = OneNode(work.genesis, folder)
        node.block(work.setup)  # users exist; not timed
        node.seconds = dict.fromkeys(STAGES, 0.0)
        for raws in work.blocks:
            node.block(raws)
        node.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    count = len(work.blocks) * BLOCK_TXS
    return {stage: s / count * 1e6 for stage, s in node.seconds.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=8, help="transfer blocks per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument("--profile", action="store_true", help="pyinstrument one round")
    args = parser.parse_args(argv)
    work = Workload(args.blocks)
    _tune_gc()  # the collector settings of a running node (node/__main__.py)
    if args.profile:
        from pyinstrument import Profiler

        with Profiler(interval=0.0002) as profiler:
            one_round(work)
        profiler.print()
        return 0
    rounds = [one_round(work) for _ in range(args.rounds)]
    best = min(rounds, key=lambda r: sum(r.values()))
    print(f"one node of 4, {BLOCK_TXS}-transfer blocks, CPU us per tx (best of {args.rounds}):")
    for stage in STAGES:
        print(f"  {stage:<10} {best[stage]:7.2f}")
    print(f"  {'total':<10} {sum(best.values()):7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
