"""The node as the JSON-RPC layer sees it: :class:`NodeService` implements NodeBackend.

Reads go to committed storage and in-memory status; :meth:`NodeService.submit` goes
through the txpool's admission (one signature recovery per new transaction). Metrics for
``GET /metrics`` are assembled here from the replica, txpool, transport and sync counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from consensus import max_faulty, quorum
from node.ledger.block import Block, Receipt
from node.ledger.tx import SignedTransaction
from node.rpc import metrics as prom
from node.rpc.adapt import block_data, receipt_data, tx_data
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
from node.rpc.http import RpcServer
from node.rpc.jsonrpc import Dispatcher
from node.runtime.config import split_hostport
from node.runtime.errors import NodeError
from node.runtime.txpool import TxRejected

if TYPE_CHECKING:
    from node.runtime.host import ServiceHost

RECENT_BLOCKS = 8
SUBMIT_SLICE = 64
"""Client txs admitted between two turns of the event loop: a consensus frame waits for at
most this many admissions (a few ms of CPU), not for a whole 1,000-call JSON-RPC batch."""


class NodeService:
    """One group of one running :class:`~node.runtime.Node`, for the RPC dispatcher."""

    def __init__(self, node: ServiceHost) -> None:
        self.node = node
        # Committed blocks never change: keep the last few decoded, so clients polling the
        # receipts of one block's txs do not decode the whole block per lookup (~150 us).
        self._recent: OrderedDict[int, Block] = OrderedDict()

    @property
    def _chain(self):  # type: ignore[no-untyped-def]
        return self.node.chain

    def chain_id(self) -> str:
        return self.node.genesis.chain_id

    def block_number(self) -> int:
        return int(self._chain.head.number)

    def _block(self, block: Block | None, full_txs: bool) -> BlockData | None:
        if block is None:
            return None
        senders: list[bytes] | None = None
        if full_txs:  # the receipts hold the senders: no signature recovery needed
            store = self._chain.store
            raws = [store.receipt(h) for h in block.tx_hashes()]
            if all(raw is not None for raw in raws):
                senders = [Receipt.decode(raw).sender for raw in raws if raw is not None]
        return block_data(block, full_txs=full_txs, senders=senders)

    def block_by_number(self, number: int, full_txs: bool) -> BlockData | None:
        return self._block(self._chain.block(number), full_txs)

    def block_by_hash(self, block_hash: bytes, full_txs: bool) -> BlockData | None:
        raw = self._chain.store.block_by_hash(block_hash)
        return self._block(None if raw is None else Block.decode(raw), full_txs)

    def block_hash(self, number: int) -> bytes | None:
        return self._chain.store.hash_by_number(number)  # type: ignore[no-any-return]

    def _committed(self, tx_hash: bytes) -> tuple[Block, int] | None:
        loc = self._chain.store.tx_location(tx_hash)
        if loc is None:
            return None
        block = self._recent.get(loc[0])
        if block is None:
            block = self._chain.block(loc[0])
            if block is None:
                return None
            self._recent[loc[0]] = block
            if len(self._recent) > RECENT_BLOCKS:
                self._recent.popitem(last=False)
        return block, loc[1]

    def transaction(self, tx_hash: bytes) -> TxData | None:
        found = self._committed(tx_hash)
        if found is not None:
            block, index = found
            stx = SignedTransaction.decode(block.transactions[index])
            raw = self._chain.store.receipt(tx_hash)
            sender = Receipt.decode(raw).sender if raw is not None else stx.recover_sender()
            return tx_data(
                stx, sender, block_number=block.number, block_hash=block.hash, index=index
            )
        vtx = self.node.pool.get(tx_hash)
        return None if vtx is None else tx_data(vtx.tx, vtx.sender)

    def receipt(self, tx_hash: bytes) -> ReceiptData | None:
        raw = self._chain.store.receipt(tx_hash)
        found = self._committed(tx_hash)
        if raw is None or found is None:
            return None
        block, index = found
        stx = SignedTransaction.decode(block.transactions[index])
        return receipt_data(Receipt.decode(raw), block_hash=block.hash, tx=stx)

    async def submit(self, raw_txs: Sequence[bytes]) -> Sequence[bytes | TxRejected]:
        return await self._submit(list(raw_txs), force=False)

    async def submit_forced(self, raw_txs: Sequence[bytes]) -> Sequence[bytes | TxRejected]:
        """sendRawTransaction with ``{"force": true}``: no membership quorum check."""
        return await self._submit(list(raw_txs), force=True)

    async def _submit(self, raws: list[bytes], *, force: bool) -> list[bytes | TxRejected]:
        """Admit ``raws`` :data:`SUBMIT_SLICE` at a time, yielding to the loop between."""
        if len(raws) <= SUBMIT_SLICE:
            return self.node.submit(raws, force=force)
        out: list[bytes | TxRejected] = []
        for start in range(0, len(raws), SUBMIT_SLICE):
            if start:
                await asyncio.sleep(0)  # votes that arrived meanwhile go first
            out += self.node.submit(raws[start : start + SUBMIT_SLICE], force=force)
        return out

    def call(
        self, to: bytes, method: str, args: Sequence[str | int], sender: bytes | None
    ) -> CallResult:
        status, output = self._chain.call(to, method, args, sender)
        return {"block_number": self.block_number(), "status": status, "output": output}

    def pbft_view(self) -> int:
        return self.node.replica.view

    def sealers(self) -> Sequence[bytes]:
        """The sealer list at the head (in force for the next block), in index order."""
        return list(self.node.membership.sealers)

    def observers(self) -> Sequence[bytes]:
        return list(self.node.membership.observers)

    def consensus_status(self) -> ConsensusData:
        node, replica = self.node, self.node.replica
        status = replica.status()
        sealers = node.membership.sealers
        n = len(sealers)
        head = self._chain.head
        connected = node.transport.peers()
        now = time.monotonic()
        stalled = node.stall.stalled
        return {
            "node_id": node.key.public_key,
            "node_index": node.index,
            "role": node.role,
            "sealers": list(sealers),
            "view": replica.settled_view,
            "to_view": replica.view,
            "leader_index": status.leader,
            "leader_failed": not replica.view_active,
            "block_number": head.number,
            "block_hash": head.block_hash,
            "max_faulty": max_faulty(n),
            "quorum": quorum(n),
            "view_changes": replica.counters.view_changes,
            "connected": sum(1 for s in node.sealer_ids if s in connected),
            "timeout_ms": int(node.current_timeout() * 1000),
            "seconds_since_last_commit": node.stall.seconds_since_commit(now),
            "stalled": stalled,
            "stall_reason": node.stall_reason() if stalled else None,
            "internal_errors": sum(node.supervisor.errors.values()),
            "storage_fault": node.storage_fault.reason if node.storage_fault else None,
            "byzantine": node.byzantine.behaviour if node.byzantine is not None else None,
        }

    def sync_status(self) -> SyncData:
        node = self.node
        head = self._chain.head
        highest, highest_hash = node.sync.known_highest()
        return {
            "node_id": node.key.public_key,
            "block_number": head.number,
            "latest_hash": head.block_hash,
            "genesis_hash": self._chain.genesis_hash,
            "is_syncing": node.sync.syncing,
            "known_highest_number": highest,
            "known_latest_hash": highest_hash,
            "tx_pool_size": len(node.pool),
            "peers": [
                {
                    "node_id": bytes.fromhex(peer),
                    "block_number": s.height,
                    "latest_hash": s.head_hash,
                    "genesis_hash": s.genesis_hash,
                }
                for peer, s in sorted(node.sync.peers.items())
            ],
        }

    def peers(self) -> Sequence[PeerData]:
        out: list[PeerData] = []
        for peer in sorted(self.node.transport.peers()):
            item: PeerData = {"node_id": bytes.fromhex(peer), "address": ""}
            item["node"] = self.node.name_of(peer)
            out.append(item)
        return out

    def pending_tx_size(self) -> int:
        return len(self.node.pool)

    def total_transaction_count(self) -> TotalTxData:
        store = self._chain.store
        return {
            "tx_sum": store.total_tx_count(),
            "failed_tx_sum": store.total_failed_tx_count(),
            "block_number": self.block_number(),
        }

    def system_config(self, key: str) -> str | None:
        values = self._chain.executor.system_config(self._chain.store.state)
        value = getattr(values, key, None)
        return None if value is None else str(value)

    # -- /metrics ----------------------------------------------------------------------

    def metrics(self) -> Iterable[prom.Metric]:
        node = self.node
        yield prom.gauge("ledgerlab_block_height", "Committed head.", node.chain.head.number)
        yield prom.gauge("ledgerlab_pbft_view", "Current PBFT view.", node.replica.view)
        view_changes = node.replica.counters.view_changes
        yield prom.counter("ledgerlab_view_changes_total", "View changes started.", view_changes)
        yield prom.gauge("ledgerlab_txpool_size", "Pending transactions.", len(node.pool))
        yield prom.counter(
            "ledgerlab_committed_txs_total",
            "Committed transactions.",
            node.chain.store.total_tx_count(),
        )
        yield prom.gauge("ledgerlab_peers", "Connected peers.", len(node.transport.peers()))
        members = node.membership
        yield prom.labelled(
            "ledgerlab_consensus_nodes",
            "gauge",
            "Sealers and observers at the head (the membership in force for the next block).",
            "type",
            {"sealer": len(members.sealers), "observer": len(members.observers)},
        )
        yield from node.latency.metrics()
        yield prom.gauge(
            "ledgerlab_seconds_since_last_commit",
            "Seconds since this node last committed a block (or started).",
            round(node.stall.seconds_since_commit(time.monotonic()), 3),
        )
        yield prom.gauge(
            "ledgerlab_stalled",
            "1 while txs are pending and nothing committed for longer than the timeout.",
            int(node.stall.stalled),
        )
        yield prom.gauge(
            "ledgerlab_storage_fault",
            "1 while the node cannot write its data directory (docs/node.md, Storage faults).",
            int(node.storage_fault is not None),
        )
        yield prom.counter(
            "ledgerlab_txs_quarantined_total",
            "Transactions dropped because executing them raised (a bug of ours).",
            node.pool.quarantined,
        )
        yield prom.counter(
            "ledgerlab_event_loop_errors_total",
            "Errors that reached the event loop's handler: a callback or an unretrieved "
            "future, mostly a library's (docs/node.md, Supervision).",
            node.supervisor.loop_errors,
        )
        yield from _process_metrics()
        t = node.transport.stats
        yield prom.counter("ledgerlab_p2p_frames_out_total", "Transport frames sent.", t.frames_out)
        yield prom.counter(
            "ledgerlab_p2p_connects_total",
            "Links established: peer connections (TCP), broker sessions (MQTT).",
            t.connects,
        )
        for name, help_text, label, counts in _LABELLED:
            yield prom.labelled(name, "counter", help_text, label, counts(node))
        if node.byzantine is not None:  # a test mode (docs/node.md)
            yield prom.gauge(
                "ledgerlab_byzantine",
                "1: this node runs a Byzantine test mode (the label names it).",
                1,
                {"behaviour": node.byzantine.behaviour},
            )
            yield prom.labelled(
                "ledgerlab_byzantine_frames_total",
                "counter",
                "What the Byzantine test mode did: frames sent, tampered, suppressed, spam.",
                "kind",
                {k: node.byzantine.stats[k] for k in ("frames", "tampered", "suppressed", "spam")},
            )
        channel = getattr(node, "channel_server", None)
        if channel is not None:  # the FISCO channel (docs/channel.md)
            yield from channel.metrics()


def _process_metrics() -> Iterable[prom.Metric]:
    """CPU time and resident memory of this process (the Prometheus client's names)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    yield prom.counter(
        "process_cpu_seconds_total",
        "User and system CPU time of this node's process, in seconds.",
        round(usage.ru_utime + usage.ru_stime, 3),
    )
    try:
        with open("/proc/self/statm", "rb") as fh:
            resident_pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):  # not Linux: no live figure, say nothing
        return
    yield prom.gauge(
        "process_resident_memory_bytes",
        "Resident memory of this node's process, in bytes.",
        resident_pages * resource.getpagesize(),
    )


# Counters by one label: (name, help, label, where the counts are).
_LABELLED: tuple[tuple[str, str, str, Callable[[ServiceHost], Mapping[str, float]]], ...] = (
    (
        "ledgerlab_internal_errors_total",
        "Bugs of ours caught by the supervisor, by loop (docs/node.md, Supervision).",
        "loop",
        lambda n: n.supervisor.errors,
    ),
    (
        "ledgerlab_loop_restarts_total",
        "Loops the supervisor restarted after a failure, by loop.",
        "loop",
        lambda n: n.supervisor.restarts,
    ),
    (
        "ledgerlab_consensus_messages_in_total",
        "Consensus messages received, by type.",
        "type",
        lambda n: n.replica.counters.messages_in,
    ),
    (
        "ledgerlab_consensus_messages_out_total",
        "Consensus messages sent, by type.",
        "type",
        lambda n: n.replica.counters.messages_out,
    ),
    (
        "ledgerlab_consensus_dropped_total",
        "Consensus messages dropped, by reason.",
        "reason",
        lambda n: n.replica.counters.drops,
    ),
    ("ledgerlab_frames_in_total", "Node frames received, by kind.", "kind", lambda n: n.frames_in),
    (
        "ledgerlab_frames_dropped_total",
        "Node frames dropped, by reason.",
        "reason",
        lambda n: n.dropped,
    ),
    (
        "ledgerlab_txpool_rejected_total",
        "Transactions refused, by reason.",
        "reason",
        lambda n: {r.value: v for r, v in n.pool.rejected.items()},
    ),
    (
        "ledgerlab_p2p_disconnects_total",
        "Peers disconnected, by reason.",
        "reason",
        lambda n: n.transport.stats.disconnects,
    ),
    (
        "ledgerlab_p2p_dropped_total",
        "Transport frames (MQTT: messages) dropped, by reason (docs/p2p.md, Counters).",
        "reason",
        lambda n: n.transport.stats.dropped,
    ),
    ("ledgerlab_sync_total", "Block sync events.", "event", lambda n: n.sync.stats),
)


async def start_rpc(node: ServiceHost, stack: contextlib.AsyncExitStack) -> RpcServer:
    """Serve JSON-RPC for ``node`` on its configured address until ``stack`` closes."""
    service = NodeService(node)
    host, port = split_hostport(node.config.rpc_listen, "rpc.listen")
    server = RpcServer(
        Dispatcher({node.genesis.group_id: service}, on_internal_error=node.supervisor.report),
        host=host,
        port=port,
        metrics=service.metrics,
    )
    try:
        await stack.enter_async_context(server)
    except OSError as exc:

        raise NodeError(f"cannot serve JSON-RPC on {host}:{port}: {exc.strerror or exc}") from None
    return server


__all__ = ["NodeService", "start_rpc"]
