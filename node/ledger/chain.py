"""One group's chain on one node: proposals, execution, commits and verified block import.

This is the deterministic part of a node, with no event loop: the runtime calls it when
the replica asks to execute or commit, and block sync calls :meth:`Chain.import_block`
for blocks fetched from peers. A PBFT proposal's payload is a :class:`ProposalBody`
(timestamp, proposer, tx hashes); the block header takes its timestamp and sealer from
it, so a committed block alone is enough to rebuild the proposal digest its seal signs.

Membership. The sealers in force for block ``h`` are those of the state after block
``h - 1`` (the Consensus precompile's lists, :mod:`node.ledger.precompiles.consensus`): a
change committed in block ``h - 1`` applies from ``h``. :meth:`Chain.sealers_at` answers
for any height this node can judge -- the next one from its head state, a committed one
from its own stored copy of that block (whose ``sealer_list`` its own execution
produced) -- and a block's seal is checked against that list, never against the list the
block itself names. So a node syncing history checks each block against the right set,
across any number of changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from consensus import certs as consensus_certs
from consensus import messages as consensus_messages
from consensus.codec import DecodeError, expect_bytes, expect_int, expect_list, expect_seq, pack
from consensus.codec import unpack as codec_unpack
from consensus.crypto import HASH_SIZE, InvalidSignature, Verifier, verify
from node.ledger.accounts import parse_address
from node.ledger.block import MAX_BLOCK_TXS, Block, BlockSeal, Receipt
from node.ledger.executor import ExecutionError, ExecutionResult, Executor
from node.ledger.genesis import GenesisConfig
from node.ledger.precompiles.consensus import ADDRESS as CONSENSUS_ADDRESS
from node.ledger.precompiles.consensus import WRITERS as MEMBERSHIP_WRITERS
from node.ledger.precompiles.consensus import Membership, read_membership
from node.ledger.tx import VerifiedTx
from storage.ledger import Head, LedgerStore
from storage.overlay import StateReader

log = logging.getLogger(__name__)

_CONSENSUS = parse_address(CONSENSUS_ADDRESS)


class ChainError(Exception):
    """A block this chain refuses (wrong parent, bad seal, different result...)."""


@dataclass(frozen=True, slots=True)
class ProposalBody:
    """What a leader proposes for a height: the PBFT payload, canonical msgpack."""

    timestamp: int
    proposer: int
    tx_hashes: tuple[bytes, ...]

    def encode(self) -> bytes:
        return pack([self.timestamp, self.proposer, list(self.tx_hashes)])

    @classmethod
    def decode(cls, payload: bytes) -> ProposalBody:
        ts, proposer, hashes = expect_list(codec_unpack(payload), 3, "proposal")
        items = expect_seq(hashes, "proposal tx hashes", max_len=MAX_BLOCK_TXS)
        timestamp = expect_int(ts, "proposal timestamp")
        proposer = expect_int(proposer, "proposal proposer", hi=1 << 16)
        if not all(type(h) is bytes and len(h) == HASH_SIZE for h in items):
            for h in items:  # the first bad one raises, with what is wrong with it
                expect_bytes(h, "tx hash", size=HASH_SIZE)
        body = cls(timestamp, proposer, tuple(items))
        if body.encode() != payload:
            raise DecodeError("proposal: not the canonical encoding")
        if len(set(body.tx_hashes)) != len(body.tx_hashes):
            raise DecodeError("proposal: a transaction appears twice")
        return body

    @classmethod
    def of_block(cls, block: Block) -> ProposalBody:
        h = block.header
        return cls(h.timestamp, h.sealer, tuple(block.tx_hashes()))


@dataclass(frozen=True, slots=True)
class ExecutedBlock:
    """An executed, not yet sealed block with everything needed to commit it."""

    block: Block
    result: ExecutionResult
    txs: tuple[VerifiedTx, ...]

    @property
    def block_hash(self) -> bytes:
        return self.block.hash


class Chain:
    """The ledger of one group plus the executor that extends it."""

    def __init__(self, store: LedgerStore, genesis: GenesisConfig) -> None:
        self.store = store
        self.genesis = genesis
        self.executor = Executor(genesis)
        genesis_block = genesis.block()
        if store.head() is None:
            store.commit_block(genesis.block_commit())
        elif store.hash_by_number(0) != genesis_block.hash:
            raise ChainError(
                "the data directory holds another chain (its block 0 differs from this genesis)"
            )
        self.genesis_hash = genesis_block.hash
        self._head_time: tuple[bytes, int] | None = None
        self._membership: tuple[bytes, Membership] | None = None
        if store.needs_failed_tx_backfill:
            self._backfill_failed_tx_count()

    def _backfill_failed_tx_count(self) -> None:
        """A store from before the failed-transaction counter: count the failed receipts
        of blocks 1..head once and record the total (later commits keep it up)."""
        head = self.head
        log.info("counting failed transactions in blocks 1..%d (once)", head.number)
        failed = 0
        for number in range(1, head.number + 1):
            block = self.block(number)
            if block is None:
                raise ChainError(f"block {number} is missing below the head {head.number}")
            for tx_hash in block.tx_hashes():
                raw = self.store.receipt(tx_hash)
                if raw is None:
                    raise ChainError(f"block {number}: a transaction has no receipt")
                failed += Receipt.decode(raw).status != 0
        self.store.backfill_failed_tx_count(head, failed)

    @property
    def head(self) -> Head:
        head = self.store.head()
        assert head is not None  # block 0 is committed in __init__
        return head

    # -- membership ---------------------------------------------------------------------

    def membership(self) -> Membership:
        """Sealers and observers at the head: those in force for the next block."""
        head = self.head
        cached = self._membership
        if cached is None or cached[0] != head.block_hash:
            cached = (head.block_hash, read_membership(self.store.state, self.genesis))
            self._membership = cached
        return cached[1]

    @property
    def sealers(self) -> tuple[bytes, ...]:
        """The sealer list in force for the next block (index order)."""
        return self.membership().sealers

    def sealers_at(self, number: int) -> tuple[bytes, ...] | None:
        """The sealer list in force for block ``number``, or None if this node cannot
        know it yet (more than one block above its head).

        The next block: the head state's list. A committed block: the list in our own
        stored copy of it (our execution produced that header from its parent's state).
        """
        head = self.head.number
        if number == head + 1:
            return self.sealers
        if 0 <= number <= head:
            block = self.block(number)
            return None if block is None else block.header.sealer_list
        return None

    @staticmethod
    def is_membership_change(vtx: VerifiedTx) -> bool:
        """Whether ``vtx`` calls a writer of the Consensus precompile (it may still fail)."""
        tx = vtx.tx.tx
        return tx.to == _CONSENSUS and tx.method in MEMBERSHIP_WRITERS

    def membership_after(
        self, vtx: VerifiedTx, *, pending: Sequence[VerifiedTx] = ()
    ) -> Membership | None:
        """The membership ``vtx`` would leave if it ran on the head state now, after the
        membership changes among ``pending`` (in that order: those that would fail
        change nothing), or None when ``vtx`` is no membership change or would fail
        there (its receipt will say why)."""
        if not self.is_membership_change(vtx):
            return None
        state = self._apply_changes(pending)
        status, state = self._dry_run(state, vtx)
        return read_membership(state, self.genesis) if status == 0 else None

    def membership_pending(self, pending: Sequence[VerifiedTx]) -> Membership:
        """The membership after the membership changes among ``pending`` ran on the head
        state, in order (the head's own when there are none)."""
        if not any(self.is_membership_change(v) for v in pending):
            return self.membership()
        return read_membership(self._apply_changes(pending), self.genesis)

    def _apply_changes(self, txs: Sequence[VerifiedTx]) -> StateReader:
        state: StateReader = self.store.state
        for vtx in txs:
            if self.is_membership_change(vtx):
                _, state = self._dry_run(state, vtx)
        return state

    def _dry_run(self, state: StateReader, vtx: VerifiedTx) -> tuple[int, StateReader]:
        tx = vtx.tx.tx
        status, _, overlay = self.executor.simulate(
            state, tx.to, tx.method, tx.args, sender=vtx.sender, block_number=self.head.number + 1
        )
        return status, overlay

    # -- blocks ---------------------------------------------------------------------------

    def execute(
        self, number: int, parent_hash: bytes, body: ProposalBody, txs: Sequence[VerifiedTx]
    ) -> ExecutedBlock:
        """Execute a proposal on top of the head. Raises :class:`ChainError` if invalid."""
        head = self.head
        if number != head.number + 1 or parent_hash != head.block_hash:
            raise ChainError(f"block {number} does not extend head {head.number}")
        if [v.tx.hash for v in txs] != list(body.tx_hashes):
            raise ChainError("transactions do not match the proposal")
        if body.proposer >= len(self.sealers):  # the list in force for this block
            raise ChainError(f"proposer {body.proposer} is not a sealer index")
        try:
            result = self.executor.execute_block(
                self.store.state, number=number, parent_state_root=head.state_root, txs=txs
            )
        except ExecutionError as exc:
            raise ChainError(str(exc)) from None
        header = result.header(  # sealer_list: the parent state's, read by the executor
            parent_hash=parent_hash, timestamp=body.timestamp, sealer=body.proposer
        )
        return ExecutedBlock(Block.build(header, [v.tx for v in txs]), result, tuple(txs))

    def commit(
        self,
        executed: ExecutedBlock,
        seal: BlockSeal,
        meta: Sequence[tuple[str, bytes | None]] = (),
    ) -> Block:
        """Store ``executed`` with its seal in one atomic batch; returns the sealed block."""
        block = executed.block.with_seal(seal)
        self.store.commit_block(executed.result.block_commit(block, meta))
        # the new head's timestamp, known here: head_timestamp need not decode the block
        self._head_time = (block.hash, block.header.timestamp)
        return block

    def verify_seal(self, block: Block, verifier: Verifier = verify) -> bool:
        """Whether ``block`` carries a quorum of valid signatures of the sealers in force
        at its height (:meth:`sealers_at`; False when this node cannot know them)."""
        h = block.header
        sealers = self.sealers_at(h.number)
        if not sealers:
            return False
        digest = consensus_messages.proposal_digest(
            h.number, h.parent_hash, ProposalBody.of_block(block).encode()
        )
        seal = consensus_messages.Seal(block.seal.view, digest, block.seal.signatures)
        return consensus_certs.verify_seal(
            sealers, verifier, h.number, block.hash, h.state_root, seal
        )

    def import_block(
        self, block: Block, known: Callable[[bytes], VerifiedTx | None], verifier: Verifier = verify
    ) -> ExecutedBlock:
        """Check a sealed block from a peer, re-execute it and commit it.

        ``known(tx_hash)`` returns an already verified transaction (from the pool) so its
        signature is not recovered twice. Raises :class:`ChainError` and commits nothing
        if the block does not extend the head, its seal is not a quorum of sealer
        signatures, or re-executing it gives a different header.
        """
        head = self.head
        h = block.header
        if h.number != head.number + 1 or h.parent_hash != head.block_hash:
            raise ChainError(f"block {h.number} does not extend head {head.number}")
        if not block.tx_root_matches():
            raise ChainError(f"block {h.number}: tx root does not match its transactions")
        if not self.verify_seal(block, verifier):
            raise ChainError(f"block {h.number}: seal is not a quorum of sealer signatures")
        txs = []
        try:
            for stx in block.decode_transactions():
                vtx = known(stx.hash)
                txs.append(vtx if vtx is not None else stx.verified())
        except (DecodeError, InvalidSignature) as exc:
            raise ChainError(f"block {h.number}: bad transaction: {exc}") from None
        executed = self.execute(h.number, h.parent_hash, ProposalBody.of_block(block), txs)
        if executed.block.hash != block.hash:
            raise ChainError(f"block {h.number}: re-execution gives a different block")
        self.commit(executed, block.seal)
        return executed

    def block(self, number: int) -> Block | None:
        raw = self.store.block_by_number(number)
        return None if raw is None else Block.decode(raw)

    def head_timestamp(self) -> int:
        """The head block's timestamp (ms), decoded once per head, not per proposal."""
        head = self.head
        cached = self._head_time
        if cached is None or cached[0] != head.block_hash:
            block = self.block(head.number)
            cached = (head.block_hash, block.header.timestamp if block is not None else 0)
            self._head_time = cached
        return cached[1]

    def call(
        self, to: bytes, method: str, args: Sequence[Any], sender: bytes | None = None
    ) -> tuple[int, bytes]:
        """A read-only call on the head state."""
        kwargs: dict[str, Any] = {"block_number": self.head.number}
        if sender is not None:
            kwargs["sender"] = sender
        return self.executor.call(self.store.state, to, method, args, **kwargs)
