"""What the JSON-RPC layer needs from a node, in plain data.

The node runtime implements :class:`NodeBackend` once per group it serves; the RPC layer
validates requests, calls it, and renders FISCO BCOS result shapes (hex numbers, 0x
hashes). Everything crossing this line is ints, bytes, str, bools, lists and the
TypedDicts below -- no ledger-core objects -- so the RPC layer and the runtime can change
independently. Hashes are 32 raw bytes, addresses 20 raw bytes, node ids the 64-byte
consensus public key.

Reads are synchronous (they read committed state and in-memory status, which is fast);
only :meth:`NodeBackend.submit` is async so the runtime can batch signature recovery or
hand it to a worker. Lookups of absent things return ``None``; a backend may also raise
:class:`node.rpc.errors.RpcError` (for example ``ErrorCode.NotReady``). Any other
exception becomes a -32603 internal error and is logged -- it never reaches the client
as a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, Protocol, TypedDict


class TxData(TypedDict):
    """A transaction, committed or still in the pool (see :func:`node.rpc.adapt.tx_data`)."""

    hash: bytes
    sender: bytes  # 20-byte address recovered from the signature
    to: bytes  # 20-byte address (a precompile such as 0x...5002)
    method: str
    args: list[str | int]
    input: bytes  # the call data: node.rpc.calldata.encode_call(method, args)
    nonce: str
    block_limit: int
    chain_id: str
    group_id: str
    signature: bytes  # 65 bytes r || s || v
    block_number: int | None  # None while pending in the txpool
    block_hash: bytes | None
    index: int | None  # position in its block


class EventData(TypedDict):
    """One event (log entry) emitted while executing a transaction."""

    address: bytes
    topics: list[bytes]
    data: bytes


class ReceiptData(TypedDict):
    """The outcome of a committed transaction (see :func:`node.rpc.adapt.receipt_data`)."""

    tx_hash: bytes
    block_number: int
    block_hash: bytes
    index: int
    status: int  # 0 ok; a FISCO status or precompile code such as -51404 otherwise
    output: bytes
    events: list[EventData]
    sender: bytes
    to: bytes
    input: bytes
    gas_used: NotRequired[int]  # ledgerlab meters no gas; rendered as 0x0 when absent


class BlockData(TypedDict):
    """A committed block. ``transactions`` is present only when full txs were asked for."""

    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int  # milliseconds since the epoch, as FISCO BCOS
    tx_root: bytes
    receipt_root: bytes
    state_root: bytes
    sealer: int  # index of the sealer that proposed it
    sealer_list: list[bytes]  # node ids
    extra_data: bytes
    signatures: list[tuple[int, bytes]]  # (sealer index, 65-byte signature)
    tx_hashes: list[bytes]
    transactions: NotRequired[list[TxData]]


class CallResult(TypedDict):
    """A read-only execution against the head state."""

    block_number: int  # the head the call ran on
    status: int
    output: bytes


class ConsensusData(TypedDict):
    """This node's view of PBFT. ``node_index`` is None when the node is not a sealer."""

    node_id: bytes
    node_index: int | None
    role: NotRequired[str]  # "sealer", "observer" or "free" (default: from node_index)
    sealers: list[bytes]
    view: int
    to_view: int  # the view being changed to (== view when no view change runs)
    leader_index: int
    leader_failed: bool
    block_number: int  # committed head
    block_hash: bytes
    max_faulty: int  # f
    quorum: int  # votes needed
    view_changes: int  # view changes seen since start
    connected: int  # connected sealer peers
    timeout_ms: int  # current view-change timeout, back-off included
    seconds_since_last_commit: float
    stalled: bool  # txs pending and no commit for longer than the consensus timeout
    stall_reason: str | None  # why, as far as this node knows (None unless stalled)
    internal_errors: int  # bugs of ours the supervisor caught since start
    storage_fault: NotRequired[str | None]  # why the node cannot write its data dir, or None
    byzantine: NotRequired[str | None]  # a Byzantine test mode (docs/node.md), None: honest


class SyncPeerData(TypedDict):
    node_id: bytes
    block_number: int
    latest_hash: bytes
    genesis_hash: bytes


class SyncData(TypedDict):
    """Block-sync status of this node and what it knows of its peers."""

    node_id: bytes
    block_number: int
    latest_hash: bytes
    genesis_hash: bytes
    is_syncing: bool
    known_highest_number: int
    known_latest_hash: bytes
    tx_pool_size: int
    peers: list[SyncPeerData]


class PeerData(TypedDict):
    """A connected P2P peer."""

    node_id: bytes
    address: str  # "host:port"
    agency: NotRequired[str]
    node: NotRequired[str]  # the peer's node name, e.g. "node2"


class TotalTxData(TypedDict):
    tx_sum: int  # committed transactions, failed ones included
    failed_tx_sum: int
    block_number: int


class Rejected(Protocol):
    """What :meth:`NodeBackend.submit` returns for a refused transaction.

    ``reason`` is one of :data:`node.rpc.errors.TXPOOL_REASONS` (``"AlreadyKnown"``,
    ``"NonceCheckFail"``, ...), or an Enum whose ``value`` is one of them -- so the
    txpool's own ``node.runtime.txpool.TxRejected`` exception can be returned as it is.
    """

    @property
    def reason(self) -> Any: ...

    @property
    def detail(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Rejection:
    """A plain :class:`Rejected` for backends that do not use ``node.runtime.txpool``."""

    reason: str
    detail: str = ""


class NodeBackend(Protocol):
    """One group of one node, as the JSON-RPC layer sees it."""

    def chain_id(self) -> str: ...

    def block_number(self) -> int: ...

    def block_by_number(self, number: int, full_txs: bool) -> BlockData | None: ...

    def block_by_hash(self, block_hash: bytes, full_txs: bool) -> BlockData | None: ...

    def block_hash(self, number: int) -> bytes | None: ...

    def transaction(self, tx_hash: bytes) -> TxData | None: ...

    def receipt(self, tx_hash: bytes) -> ReceiptData | None: ...

    async def submit(self, raw_txs: Sequence[bytes]) -> Sequence[bytes | Rejected]:
        """Admit raw transactions; one result per input, in order: the 32-byte tx hash
        when accepted, else a :class:`Rejected`.

        A backend may also define ``async submit_forced(raw_txs)`` (same results) for
        sendRawTransaction's ``{"force": true}``: admission without the node's
        non-deterministic checks (``MembershipBreaksQuorum``). Without it, forced
        submissions go to ``submit``."""
        ...

    def call(
        self, to: bytes, method: str, args: Sequence[str | int], sender: bytes | None
    ) -> CallResult:
        """Run ``method(*args)`` of the precompile at ``to`` read-only on the head state."""
        ...

    def pbft_view(self) -> int: ...

    def sealers(self) -> Sequence[bytes]:
        """The sealer list at the head (the Consensus precompile's, in index order)."""
        ...

    def observers(self) -> Sequence[bytes]: ...

    def consensus_status(self) -> ConsensusData: ...

    def sync_status(self) -> SyncData: ...

    def peers(self) -> Sequence[PeerData]: ...

    def pending_tx_size(self) -> int: ...

    def total_transaction_count(self) -> TotalTxData: ...

    def system_config(self, key: str) -> str | None:
        """The current value of a system config key (``"tx_count_limit"``), None if unknown."""
        ...
