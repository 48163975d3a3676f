"""A small but real ledger behind the RPC layer for tests.

Real signed transactions, the real txpool (admission, nonces, block limits), real blocks
with Merkle roots and sealer signatures, real receipts; a toy DagTransfer executor on a
dict stands in for node.executor. Answers are computed from that state, never canned.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from consensus.codec import pack
from consensus.crypto import KeyPair, hash32
from node.ledger.accounts import parse_address
from node.ledger.block import EMPTY_ROOT, Block, BlockHeader, BlockSeal, Receipt, merkle_root
from node.ledger.tx import Arg, SignedTransaction, Transaction, encode_values
from node.rpc import adapt
from node.rpc.backend import (
    BlockData,
    CallResult,
    ConsensusData,
    PeerData,
    ReceiptData,
    SyncData,
    TotalTxData,
    TxData,
)
from node.runtime.txpool import TxPool, TxRejected

CHAIN = "chain0"
GROUP = "group0"
DAG = parse_address("0x5002")
USER_EXISTS, NO_USER, INSUFFICIENT = -51403, -51402, -51404


class Ledger:
    """A single-node chain: pool -> commit() -> block with receipts."""

    def __init__(self, n_sealers: int = 4, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.sealer_keys = [KeyPair.generate(rng) for _ in range(n_sealers)]
        self.sealers = [k.public_key for k in self.sealer_keys]
        self.observers = [KeyPair.generate(rng).public_key]
        self.node_key = self.sealer_keys[0]
        self.blocks: list[Block] = []
        self.txs: dict[bytes, tuple[SignedTransaction, int, int]] = {}  # hash -> (tx, n, i)
        self.receipts: dict[bytes, Receipt] = {}
        self.balances: dict[str, int] = {}
        self.failed = 0
        self.view = 0
        self.view_changes = 0
        self.config = {"tx_count_limit": 1000, "consensus_timeout": 3, "leader_period": 1}
        self.pool = TxPool(chain_id=CHAIN, group_id=GROUP, in_chain=lambda h: h in self.txs)
        genesis = BlockHeader(
            0, bytes(32), 0, EMPTY_ROOT, EMPTY_ROOT, EMPTY_ROOT, 0, tuple(self.sealers), b"genesis"
        )
        self.blocks.append(Block(genesis))

    @property
    def head(self) -> int:
        return len(self.blocks) - 1

    def tx(self, key: KeyPair, method: str, args: Sequence[Arg], **kw: Any) -> SignedTransaction:
        kw.setdefault("block_limit", self.head + 500)
        return Transaction.build(
            chain_id=CHAIN, group_id=GROUP, to=DAG, method=method, args=args, **kw
        ).sign(key)

    def _execute(self, stx: SignedTransaction) -> tuple[int, bytes]:
        t = stx.tx
        if t.to != DAG:
            return 26, b""
        bal = self.balances
        if t.method == "userAdd":
            user, amount = t.args
            if user in bal:
                return USER_EXISTS, b""
            bal[str(user)] = int(amount)
        elif t.method == "userTransfer":
            src, dst, amount = t.args
            if src not in bal:
                return NO_USER, b""
            if bal[str(src)] < int(amount):
                return INSUFFICIENT, b""
            bal[str(src)] -= int(amount)
            bal[str(dst)] = bal.get(str(dst), 0) + int(amount)
        else:
            return 21, b""
        return 0, encode_values([0])

    def commit(self) -> Block:
        """BlockSeal every pending tx into the next block, signed by a quorum of sealers."""
        number = self.head + 1
        vtxs = self.pool.seal(self.config["tx_count_limit"], number)
        receipts = []
        for i, vtx in enumerate(vtxs):
            status, output = self._execute(vtx.tx)
            self.failed += status != 0
            receipts.append(
                Receipt(vtx.hash, number, i, status, output, (), vtx.sender, vtx.tx.tx.to)
            )
        parent = self.blocks[-1]
        header = BlockHeader(
            number,
            parent.hash,
            1_700_000_000_000 + number,
            merkle_root([v.hash for v in vtxs]),
            merkle_root([r.hash for r in receipts]),
            hash32(pack(sorted(self.balances.items()))),
            number % len(self.sealers),
            tuple(self.sealers),
            b"",
        )
        quorum = len(self.sealers) - (len(self.sealers) - 1) // 3
        seal = BlockSeal(
            self.view, tuple((i, self.sealer_keys[i].sign(header.hash)) for i in range(quorum))
        )
        block = Block.build(header, [v.tx for v in vtxs], seal)
        self.blocks.append(block)
        for i, (vtx, rc) in enumerate(zip(vtxs, receipts, strict=True)):
            self.txs[vtx.hash] = (vtx.tx, number, i)
            self.receipts[vtx.hash] = rc
        self.pool.on_commit(number, [v.tx for v in vtxs])
        return block


class LedgerBackend:
    """:class:`node.rpc.backend.NodeBackend` over a :class:`Ledger`."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.submit_calls: list[int] = []  # batch sizes seen by submit()

    def chain_id(self) -> str:
        return CHAIN

    def block_number(self) -> int:
        return self.ledger.head

    def _block_data(self, block: Block, full_txs: bool) -> BlockData:
        senders = [self.ledger.receipts[h].sender for h in block.tx_hashes()]
        return adapt.block_data(block, full_txs=full_txs, senders=senders)

    def block_by_number(self, number: int, full_txs: bool) -> BlockData | None:
        if number > self.ledger.head:
            return None
        return self._block_data(self.ledger.blocks[number], full_txs)

    def block_by_hash(self, block_hash: bytes, full_txs: bool) -> BlockData | None:
        for block in self.ledger.blocks:
            if block.hash == block_hash:
                return self._block_data(block, full_txs)
        return None

    def block_hash(self, number: int) -> bytes | None:
        return self.ledger.blocks[number].hash if number <= self.ledger.head else None

    def transaction(self, tx_hash: bytes) -> TxData | None:
        found = self.ledger.txs.get(tx_hash)
        if found is not None:
            stx, number, index = found
            return adapt.tx_data(
                stx,
                self.ledger.receipts[tx_hash].sender,
                block_number=number,
                block_hash=self.ledger.blocks[number].hash,
                index=index,
            )
        vtx = self.ledger.pool.get(tx_hash)
        return None if vtx is None else adapt.tx_data(vtx.tx, vtx.sender)

    def receipt(self, tx_hash: bytes) -> ReceiptData | None:
        rc = self.ledger.receipts.get(tx_hash)
        if rc is None:
            return None
        stx = self.ledger.txs[tx_hash][0]
        return adapt.receipt_data(rc, block_hash=self.ledger.blocks[rc.block_number].hash, tx=stx)

    async def submit(self, raw_txs: Sequence[bytes]) -> Sequence[bytes | TxRejected]:
        self.submit_calls.append(len(raw_txs))
        out: list[bytes | TxRejected] = []
        for raw in raw_txs:
            try:
                out.append(self.ledger.pool.admit(raw, self.ledger.head).hash)
            except TxRejected as exc:
                out.append(exc)
        return out

    def call(
        self, to: bytes, method: str, args: Sequence[str | int], sender: bytes | None
    ) -> CallResult:
        head = self.ledger.head
        if to != DAG:
            return {"block_number": head, "status": 26, "output": b""}
        if method == "userBalance" and len(args) == 1 and type(args[0]) is str:
            balance = self.ledger.balances.get(args[0])
            if balance is None:  # as node.precompiles.dag_transfer: a status, no output
                return {"block_number": head, "status": NO_USER, "output": b""}
            return {"block_number": head, "status": 0, "output": encode_values([balance])}
        return {"block_number": head, "status": 21, "output": b""}

    def pbft_view(self) -> int:
        return self.ledger.view

    def sealers(self) -> Sequence[bytes]:
        return self.ledger.sealers

    def observers(self) -> Sequence[bytes]:
        return self.ledger.observers

    def consensus_status(self) -> ConsensusData:
        lg = self.ledger
        n = len(lg.sealers)
        f = (n - 1) // 3
        return {
            "node_id": lg.node_key.public_key,
            "node_index": 0,
            "sealers": lg.sealers,
            "view": lg.view,
            "to_view": lg.view,
            "leader_index": (lg.view + lg.head + 1) % n,
            "leader_failed": False,
            "block_number": lg.head,
            "block_hash": lg.blocks[-1].hash,
            "max_faulty": f,
            "quorum": n - f,
            "view_changes": lg.view_changes,
            "connected": n - 1,
            "timeout_ms": lg.config["consensus_timeout"] * 1000,
            "seconds_since_last_commit": 0.5,
            "stalled": False,
            "stall_reason": None,
            "internal_errors": 0,
        }

    def sync_status(self) -> SyncData:
        lg = self.ledger
        peer = {
            "node_id": lg.sealers[1],
            "block_number": lg.head,
            "latest_hash": lg.blocks[-1].hash,
            "genesis_hash": lg.blocks[0].hash,
        }
        return {
            "node_id": lg.node_key.public_key,
            "block_number": lg.head,
            "latest_hash": lg.blocks[-1].hash,
            "genesis_hash": lg.blocks[0].hash,
            "is_syncing": False,
            "known_highest_number": lg.head,
            "known_latest_hash": lg.blocks[-1].hash,
            "tx_pool_size": len(lg.pool),
            "peers": [peer],  # type: ignore[list-item]
        }

    def peers(self) -> Sequence[PeerData]:
        return [
            {
                "node_id": key,
                "address": f"127.0.0.1:{30300 + i}",
                "agency": "agencyA",
                "node": f"node{i}",
            }
            for i, key in enumerate(self.ledger.sealers[1:], start=1)
        ]

    def pending_tx_size(self) -> int:
        return len(self.ledger.pool)

    def total_transaction_count(self) -> TotalTxData:
        lg = self.ledger
        return {"tx_sum": len(lg.txs), "failed_tx_sum": lg.failed, "block_number": lg.head}

    def system_config(self, key: str) -> str | None:
        value = self.ledger.config.get(key)
        return None if value is None else str(value)
