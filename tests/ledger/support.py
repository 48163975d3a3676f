"""Shared helpers for the ledger-core tests: deterministic keys and a one-node chain."""

from __future__ import annotations

import random
from collections.abc import Sequence

from consensus.crypto import KeyPair
from node.ledger.accounts import parse_address
from node.ledger.block import Block
from node.ledger.executor import ExecutionResult, Executor
from node.ledger.genesis import GenesisConfig
from node.ledger.precompiles.dag_transfer import user_key
from node.ledger.tx import Arg, Transaction, VerifiedTx, decode_values
from storage.ledger import LedgerStore
from storage.memory import MemoryKV

CHAIN, GROUP = "chain0", "group0"
DAG = parse_address("0x5002")
SYS = parse_address("0x1000")


def keypair(seed: int) -> KeyPair:
    return KeyPair.generate(random.Random(seed))


SEALERS = tuple(keypair(100 + i).public_key for i in range(4))
ADMIN = keypair(1)
ADMIN2 = keypair(2)
ALICE = keypair(3)
BOB = keypair(4)
GOVERNOR = keypair(5)


def make_tx(
    kp: KeyPair,
    method: str,
    *args: Arg,
    to: bytes = DAG,
    block_limit: int = 1000,
    nonce: str | None = None,
    chain_id: str = CHAIN,
    group_id: str = GROUP,
) -> VerifiedTx:
    """A signed transaction with its sender (as the txpool would keep it)."""
    tx = Transaction.build(
        chain_id=chain_id,
        group_id=group_id,
        to=to,
        method=method,
        args=args,
        block_limit=block_limit,
        nonce=nonce,
    )
    return VerifiedTx(tx.sign(kp), kp.address)


class Chain:
    """One node's ledger in memory: execute a block, build its header, commit it."""

    def __init__(self, genesis: GenesisConfig) -> None:
        self.genesis = genesis
        self.executor = Executor(genesis)
        self.store = LedgerStore(MemoryKV())
        self.store.commit_block(genesis.block_commit())
        self.blocks: list[Block] = [genesis.block()]

    @property
    def head(self) -> Block:
        return self.blocks[-1]

    def execute(self, txs: Sequence[VerifiedTx]) -> ExecutionResult:
        return self.executor.execute_block(
            self.store.state,
            number=self.head.number + 1,
            parent_state_root=self.head.header.state_root,
            txs=txs,
        )

    def run(self, *txs: VerifiedTx) -> ExecutionResult:
        """Execute ``txs`` as the next block and commit it."""
        result = self.execute(txs)
        header = result.header(
            parent_hash=self.head.hash,
            timestamp=1_700_000_000_000 + result.number,
            sealer=result.number % len(result.sealers),
        )
        block = Block.build(header, [v.tx for v in txs])
        self.store.commit_block(result.block_commit(block))
        self.blocks.append(block)
        return result

    def statuses(self, *txs: VerifiedTx) -> list[int]:
        return [r.status for r in self.run(*txs).receipts]

    def status(self, tx: VerifiedTx) -> int:
        return self.statuses(tx)[0]

    def call(self, method: str, *args: Arg, to: bytes = DAG) -> tuple[int, tuple[Arg, ...]]:
        status, output = self.executor.call(self.store.state, to, method, list(args))
        return status, decode_values(output) if output else ()

    def balance(self, user: str) -> int | None:
        status, out = self.call("userBalance", user)
        return out[0] if status == 0 else None  # type: ignore[return-value]

    def record(self, user: str) -> bytes | None:
        return self.store.state.get(user_key(user))

    def state_items(self) -> list[tuple[bytes, bytes]]:
        return list(self.store.state.scan())


def open_genesis(**kw: object) -> GenesisConfig:
    return GenesisConfig(sealers=SEALERS, governors=(GOVERNOR.address,), **kw)  # type: ignore[arg-type]


def permissioned_genesis(**kw: object) -> GenesisConfig:
    return GenesisConfig(
        sealers=SEALERS,
        governors=(GOVERNOR.address,),
        asset_admins=(ADMIN.address, ADMIN2.address),
        **kw,  # type: ignore[arg-type]
    )
