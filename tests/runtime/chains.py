"""One node's chain on any KV backend, driven as the runtime drives it (no event loop):
``TxPool.admit`` -> ``seal`` / ``includable`` -> ``Chain.execute`` -> ``Chain.commit`` ->
``TxPool.on_commit`` (node/runtime/node.py ``_propose``, ``_run_proposal``, ``_commit``)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from consensus.crypto import KeyPair
from node.ledger.block import Block, BlockSeal
from node.ledger.chain import Chain, ExecutedBlock, ProposalBody
from node.ledger.genesis import GenesisConfig
from node.ledger.tx import Arg, Transaction, VerifiedTx
from node.runtime.txpool import TxPool
from storage import BACKENDS, KVStore, LedgerStore, open_store

SEALERS = tuple(KeyPair.generate(random.Random(200 + i)) for i in range(4))
CLIENT = KeyPair.generate(random.Random(201))
GOVERNOR = KeyPair.generate(random.Random(202))
GENESIS = GenesisConfig(sealers=tuple(k.public_key for k in SEALERS), governors=(GOVERNOR.address,))

__all__ = ["BACKENDS", "CLIENT", "GENESIS", "GOVERNOR", "NodeChain", "node_chain", "signed"]


def signed(
    method: str,
    *args: Arg,
    to: str | bytes = "0x5002",
    nonce: str | None = None,
    block_limit: int = 900,
    key: KeyPair = CLIENT,
) -> VerifiedTx:
    tx = Transaction.build(
        chain_id=GENESIS.chain_id,
        group_id=GENESIS.group_id,
        to=to,
        method=method,
        args=args,
        block_limit=block_limit,
        nonce=nonce,
    )
    return tx.sign(key).verified()


class NodeChain:
    """A chain, its store and a txpool wired as the node wires them."""

    def __init__(self, kv: KVStore, genesis: GenesisConfig = GENESIS) -> None:
        self.kv = kv
        self.store = LedgerStore(kv)
        self.chain = Chain(self.store, genesis)
        self.pool = TxPool(
            chain_id=genesis.chain_id,
            group_id=genesis.group_id,
            in_chain=lambda h: self.store.tx_location(h) is not None,
            sees_every_commit=True,
        )

    @property
    def height(self) -> int:
        return self.chain.head.number + 1

    def run(self, txs: Sequence[VerifiedTx]) -> tuple[Block, ExecutedBlock]:
        """Execute ``txs`` as the next block and commit it (what a quorum would do)."""
        head = self.chain.head
        body = ProposalBody(
            timestamp=self.chain.head_timestamp() + 1,
            proposer=0,
            tx_hashes=tuple(v.hash for v in txs),
        )
        executed = self.chain.execute(head.number + 1, head.block_hash, body, txs)
        block = self.chain.commit(executed, BlockSeal(0, ()))
        self.pool.on_commit(block.number, [v.tx for v in executed.txs])
        return block, executed

    def seal_and_run(self, limit: int = 1000) -> tuple[Block, ExecutedBlock] | None:
        """The runtime's ``_propose`` then ``_run_proposal`` then ``_commit``."""
        height = self.height
        txs = [v for v in self.pool.seal(limit, height) if self.pool.includable(v, height)]
        return self.run(txs) if txs else None


@contextmanager
def node_chain(backend: str, path: Path, genesis: GenesisConfig = GENESIS) -> Iterator[NodeChain]:
    kv = open_store(None if backend == "memory" else str(path), backend, sync=False)
    try:
        yield NodeChain(kv, genesis)
    finally:
        kv.close()
