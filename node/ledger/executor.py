"""The executor: runs a block's transactions in order on a state overlay.

Theory of operation. :meth:`Executor.execute_block` reads the system config in force
(the parent block's state), checks the block as a whole (transaction count, duplicate
hashes, duplicate nonces, chain and group ids, expired block limits; a bad block raises
:class:`ExecutionError` and produces nothing), then runs each transaction against a
:class:`StateOverlay`. A transaction that fails -- no precompile at ``to``, unknown
method, wrong arguments, a non-zero status from the precompile, or an exception inside
it -- gets a receipt with a non-zero status and its writes are reverted alone; the
others keep theirs. The result carries the receipts, the sorted write set, and the tx,
receipt and state roots the header needs.

The membership in force (sealers in index order, observers) is read from the parent state
too (:func:`node.ledger.precompiles.consensus.read_membership`): the result carries the
sealer list the header must name, and a Consensus-precompile change made in this block
applies from the next one.

Determinism: the outcome depends only on the parent state, the genesis config, the
block number and the transactions with their senders -- no clock, no randomness, no set
or dict order that is not insertion order. Senders are recovered once at admission
(:class:`node.ledger.tx.VerifiedTx`), never here.

Receipt status codes: 0 success; negative codes come from the precompile (DagTransfer
-51400..-51405, SystemConfig -51300, Consensus -51100..-51106, -50000 no permission,
-50100 unknown method); 21 PrecompiledError (bad arguments or an exception inside a
precompile) and 26 CallAddressError (no precompile at ``to``), as FISCO BCOS 2.x numbers
them. A FISCO-format transaction's receipt has FISCO's shape instead: the precompile's
code ABI-encoded in the output and status 0 (its writes are reverted all the same), see
docs/fisco-format.md.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from node.ledger.accounts import ZERO_ADDRESS, parse_address
from node.ledger.block import (
    MAX_EVENTS,
    MAX_OUTPUT,
    Block,
    BlockHeader,
    Receipt,
    merkle_root,
)
from node.ledger.fisco.tx import FiscoSignedTransaction
from node.ledger.genesis import GenesisConfig
from node.ledger.precompiles import (
    CALL_ADDRESS_ERROR,
    NO_PERMISSION,
    PRECOMPILED_ERROR,
    UNKNOWN_FUNCTION,
    CallContext,
    CallResult,
    Precompile,
    SystemConfigValues,
    registered,
)
from node.ledger.precompiles import consensus as consensus_pc
from node.ledger.precompiles import dag_transfer as dag
from node.ledger.precompiles import system_config as sysconfig
from node.ledger.precompiles.base import FastMethod
from node.ledger.precompiles.consensus import Membership, read_membership
from node.ledger.precompiles.system_config import read_system_config
from node.ledger.tx import VerifiedTx, valid_arg
from storage.ledger import BlockCommit
from storage.overlay import StateOverlay, StateReader
from storage.state_root import next_state_root

log = logging.getLogger(__name__)

_CALL_ADDRESS_ERROR = CallResult(CALL_ADDRESS_ERROR)
_UNKNOWN_FUNCTION = CallResult(UNKNOWN_FUNCTION)
_PRECOMPILED_ERROR = CallResult(PRECOMPILED_ERROR)


class ExecutionError(ValueError):
    """The block as a whole is invalid; nothing was executed."""


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What executing one block produced. ``receipts[i]`` belongs to ``tx_hashes[i]``."""

    number: int
    tx_hashes: tuple[bytes, ...]
    encoded_receipts: tuple[bytes, ...]
    """The receipts as stored and hashed; :attr:`receipts` has them as objects."""
    write_set: tuple[tuple[bytes, bytes | None], ...]
    """Net state changes sorted by key; ``None`` deletes."""
    tx_root: bytes
    receipt_root: bytes
    state_root: bytes
    config: SystemConfigValues
    """The system config this block ran under (the parent's)."""
    sealers: tuple[bytes, ...] = ()
    """The sealer list in force for this block (the parent state's): the header names it
    and the block's seal must be a quorum of it."""
    failed_txs: int = 0
    """How many receipts have a non-zero status (FISCO BCOS's failed transactions)."""
    _receipts: tuple[Receipt, ...] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def receipts(self) -> tuple[Receipt, ...]:
        """The receipts as objects, decoded from :attr:`encoded_receipts` (and checked)
        on first use: the node itself needs only the bytes, and building an object per
        transaction in the block loop cost more than packing it (~0.7 us per receipt)."""
        receipts = self._receipts
        if receipts is None:
            receipts = tuple([Receipt.decode(raw) for raw in self.encoded_receipts])
            object.__setattr__(self, "_receipts", receipts)
        return receipts

    def header(
        self,
        *,
        parent_hash: bytes,
        timestamp: int,
        sealer: int,
        sealer_list: Sequence[bytes] | None = None,
        extra_data: bytes = b"",
    ) -> BlockHeader:
        """The block header for this result (``sealer_list`` defaults to :attr:`sealers`)."""
        return BlockHeader(
            number=self.number,
            parent_hash=parent_hash,
            timestamp=timestamp,
            tx_root=self.tx_root,
            receipt_root=self.receipt_root,
            state_root=self.state_root,
            sealer=sealer,
            sealer_list=self.sealers if sealer_list is None else tuple(sealer_list),
            extra_data=extra_data,
        )

    def block_commit(
        self, block: Block, meta: Sequence[tuple[str, bytes | None]] = ()
    ) -> BlockCommit:
        """What :meth:`storage.ledger.LedgerStore.commit_block` needs for ``block``.

        Raises :class:`ExecutionError` if ``block`` is not the block this result is for.
        """
        h = block.header
        if (h.number, h.tx_root, h.receipt_root, h.state_root) != (
            self.number,
            self.tx_root,
            self.receipt_root,
            self.state_root,
        ):
            raise ExecutionError("the block's header does not match this execution result")
        return BlockCommit(
            number=self.number,
            block_hash=block.hash,
            block=block.encode(),
            tx_hashes=self.tx_hashes,
            receipts=self.encoded_receipts,
            state_writes=self.write_set,
            state_root=self.state_root,
            meta=meta,
            failed_txs=self.failed_txs,
        )


class Executor:
    """Executes blocks and read-only calls for one group (one genesis config)."""

    def __init__(self, genesis: GenesisConfig, *, fast_paths: bool = True) -> None:
        """``fast_paths=False``: every call through the general dispatch (the tests hold
        the two equal)."""
        self.genesis = genesis
        self.precompiles: dict[bytes, Precompile] = {
            address: cls(genesis) for address, cls in registered().items()
        }
        self.fast_paths: dict[tuple[bytes, str], FastMethod] = {
            (address, name): fast
            for address, precompile in self.precompiles.items()
            for name, fast in precompile.fast_methods().items()
            if fast_paths
        }
        """The precompiles' :data:`~node.ledger.precompiles.base.FastMethod`s by
        ``(address, method)``: :meth:`execute_block` tries one before the dispatch."""

    def system_config(self, state: StateReader) -> SystemConfigValues:
        """The system config in ``state`` (use the parent's state for a new block)."""
        return read_system_config(state, self.genesis)

    def membership(self, state: StateReader) -> Membership:
        """Sealers and observers in ``state`` (the parent's state: those of a new block)."""
        return read_membership(state, self.genesis)

    def execute_block(
        self,
        state: StateReader,
        *,
        number: int,
        parent_state_root: bytes,
        txs: Sequence[VerifiedTx],
    ) -> ExecutionResult:
        """Run block ``number``'s transactions on top of ``state`` (the parent's state).

        ``state`` is only read; the changes are in the result's ``write_set``.
        Raises :class:`ExecutionError` if the block is invalid as a whole.
        """
        config = self.system_config(state)
        sealers = self.membership(state).sealers
        tx_hashes = tuple([v.tx.hash for v in txs])
        self._check_block(number, txs, tx_hashes, config)
        overlay = StateOverlay(state)
        ctx = CallContext(ZERO_ADDRESS, overlay, number, self.genesis, config)
        dispatch = self._dispatch
        fast_method = self.fast_paths.get
        writes, load = overlay.direct()
        mark = overlay.mark
        revert = overlay.revert
        encoded: list[bytes] = []
        add_receipt = encoded.append
        pack_receipt = Receipt.pack_executed
        failed = 0
        for index, vtx in enumerate(txs):
            stx = vtx.tx
            tx = stx.tx
            sender = vtx.sender
            to = tx.to
            fast = fast_method((to, tx.method))
            # a specialised method decides most calls without the dispatch (base.FastMethod)
            status = None if fast is None else fast(writes, load, tx.args)
            if status is None:
                ctx.sender = sender
                savepoint = mark()
                status, output, events = dispatch(ctx, to, tx.method, tx.args)
                if status:
                    revert(savepoint)
                    events = ()
            else:
                output, events = b"", ()
            if type(stx) is FiscoSignedTransaction:  # FISCO's receipt: the code in the output
                status, output = stx.abi_result(status, output)
            if status:
                failed += 1
            add_receipt(pack_receipt(stx.hash, number, index, status, output, events, sender, to))
        write_set = tuple(overlay.write_set())
        sha3 = hashlib.sha3_256
        return ExecutionResult(
            number=number,
            tx_hashes=tx_hashes,
            encoded_receipts=tuple(encoded),
            write_set=write_set,
            tx_root=merkle_root(tx_hashes),
            receipt_root=merkle_root([sha3(raw).digest() for raw in encoded]),
            state_root=next_state_root(parent_state_root, write_set),
            config=config,
            sealers=sealers,
            failed_txs=failed,
        )

    def call(
        self,
        state: StateReader,
        to: bytes | str | int,
        method: str,
        args: Sequence[Any] = (),
        *,
        sender: bytes = ZERO_ADDRESS,
        block_number: int = 0,
    ) -> tuple[int, bytes]:
        """Run one method against ``state`` and return ``(status, output)``.

        Nothing is written: any method may be dry-run this way, and the read-only ones
        (``userBalance``, ``getValueByKey``) are what clients query with it.
        Raises ``ValueError`` if ``to`` is not an address.
        """
        status, output, _ = self.simulate(
            state, to, method, args, sender=sender, block_number=block_number
        )
        return status, output

    def simulate(
        self,
        state: StateReader,
        to: bytes | str | int,
        method: str,
        args: Sequence[Any] = (),
        *,
        sender: bytes = ZERO_ADDRESS,
        block_number: int = 0,
    ) -> tuple[int, bytes, StateOverlay]:
        """:meth:`call`, also returning the overlay with the writes the call would make
        (reverted when the status is not 0): what a transaction would leave behind."""
        address = parse_address(to)
        overlay = StateOverlay(state)
        if type(method) is not str or not all(valid_arg(a) for a in args):
            return PRECOMPILED_ERROR, b"", overlay
        ctx = CallContext(sender, overlay, block_number, self.genesis, self.system_config(state))
        savepoint = overlay.mark()
        status, output, _ = self._dispatch(ctx, address, method, tuple(args))
        if status:
            overlay.revert(savepoint)
        return status, output, overlay

    # ------------------------------------------------------------------ internals

    def _check_block(
        self, number: int, txs: Sequence[VerifiedTx], tx_hashes: tuple[bytes, ...], config: Any
    ) -> None:
        if len(txs) > config.tx_count_limit:
            raise ExecutionError(
                f"block {number} has {len(txs)} transactions; tx_count_limit is "
                f"{config.tx_count_limit}"
            )
        chain_id, group_id = self.genesis.chain_id, self.genesis.group_id
        nonces: set[str] = set()
        add_nonce = nonces.add
        for vtx in txs:
            tx = vtx.tx.tx
            if tx.chain_id != chain_id or tx.group_id != group_id:
                raise ExecutionError(f"block {number} has a transaction of another chain/group")
            if tx.block_limit < number:
                raise ExecutionError(f"block {number} has a transaction past its block limit")
            add_nonce(tx.nonce)
        if len(set(tx_hashes)) != len(txs):
            raise ExecutionError(f"block {number} has a transaction twice")
        if len(nonces) != len(txs):
            # Nonces are global per group (FISCO BCOS): a block decides between two
            # transactions with the same nonce, so it may hold one of them, never both.
            raise ExecutionError(f"block {number} has two transactions with the same nonce")

    def _dispatch(
        self, ctx: CallContext, to: bytes, method: str, args: tuple[Any, ...]
    ) -> CallResult:
        precompile = self.precompiles.get(to)
        if precompile is None:
            return _CALL_ADDRESS_ERROR
        spec = precompile.methods.get(method)
        if spec is None:
            return _UNKNOWN_FUNCTION
        types = spec.arg_types
        count = len(args)
        if not spec.min_args <= count <= len(types):
            return _PRECOMPILED_ERROR
        # each argument's exact type (str or int), in one C-level comparison; ranges and
        # lengths are checked by the tx or by call()
        if tuple(map(type, args)) != (types if count == len(types) else types[:count]):
            return _PRECOMPILED_ERROR
        try:
            result = spec.func(precompile, ctx, *args)
        except MemoryError:  # this node's problem, not the transaction's: do not diverge
            raise
        except Exception:
            # A bug or an argument the method did not expect (e.g. a lone surrogate):
            # deterministic on every node, so a failed receipt rather than a dead node.
            log.warning("precompile %s.%s raised", precompile.name, method, exc_info=True)
            return _PRECOMPILED_ERROR
        if len(result.output) > MAX_OUTPUT or len(result.events) > MAX_EVENTS:
            log.error(
                "precompile %s.%s returned more than a receipt holds", precompile.name, method
            )
            return _PRECOMPILED_ERROR
        return result


STATUS_NAMES: dict[int, str] = {
    0: "Success",
    PRECOMPILED_ERROR: "PrecompiledError",
    CALL_ADDRESS_ERROR: "CallAddressError",
    NO_PERMISSION: "NoPermission",
    UNKNOWN_FUNCTION: "UnknownFunction",
    dag.INVALID_USER_NAME: "InvalidUserName",
    dag.INVALID_AMOUNT: "InvalidAmount",
    dag.USER_NOT_EXIST: "UserNotExist",
    dag.USER_ALREADY_EXIST: "UserAlreadyExist",
    dag.INSUFFICIENT_BALANCE: "InsufficientBalance",
    dag.BALANCE_OVERFLOW: "BalanceOverflow",
    sysconfig.INVALID_CONFIGURATION_VALUES: "InvalidConfigurationValues",
    consensus_pc.INVALID_NODE_ID: "InvalidNodeId",
    consensus_pc.LAST_SEALER: "LastSealer",
    consensus_pc.NODE_NOT_EXIST: "NodeNotExist",
    consensus_pc.MUST_BE_OBSERVER: "AddSealerShouldInObserver",
    consensus_pc.ALREADY_IN_LIST: "NodeAlreadyInList",
    consensus_pc.TOO_MANY_NODES: "TooManyNodes",
}


def status_name(status: int) -> str:
    """A receipt status as the name FISCO BCOS gives it (or the number if unknown)."""
    return STATUS_NAMES.get(status, str(status))


def receipt_root_of(encoded_receipts: Sequence[bytes]) -> bytes:
    """The receipt root: Merkle root over ``hash32`` of each encoded receipt."""
    sha3 = hashlib.sha3_256
    return merkle_root([sha3(r).digest() for r in encoded_receipts])
