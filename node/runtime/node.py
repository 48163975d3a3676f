"""The node runtime: the composition root that turns a PBFT replica into a running node.

Theory of operation
-------------------
``async with Node(...) as node:`` opens storage, restores the replica from its persisted
view and prepared certificate, starts the transport and the JSON-RPC server, and runs the
node's loops under one :class:`~node.supervisor.Supervisor`: inbound frames, ticks,
sealing, gossip, status and block sync. Leaving the block cancels the loops and closes
everything, storage last.

Every replica event goes through :meth:`Node._feed`, which steps the replica and performs
its actions strictly in order, one event at a time (events raised while performing are
queued, never nested). So PersistState is on disk before the Commit broadcast that follows
it, and CommitBlock is on disk before BlockPersisted goes back in. Executing a proposal
may need transactions this node lacks: it asks the proposer (then other peers) for exactly
those and feeds BlockExecuted when it has them; everything else is synchronous.

Nothing a peer or client sends can stop the node: every inbound frame is decoded into a
typed message or dropped and counted. What still raises is our own bug, and the
supervisor's one policy handles it (node/runtime/supervisor.py): a failed frame is logged,
counted and dropped; a failed loop is restarted with back-off; a loop that keeps
failing, or a decided block that cannot be stored, stops the node with a one-line
reason. Executing a proposal that raises (a bug, never a transaction's fault: execution
is total) makes this node quarantine the transaction responsible, so no transaction can
be proposed forever.

Membership follows the chain. The node's role (sealer with an index, observer, or free:
in neither list), the sealer list that maps replica indices to peers, and the node ids
the transport admits are those of the membership at its head (the Consensus precompile's
lists, genesis until changed), never fixed at start. After every block it persists (by
consensus or by block sync) the node re-reads them; when the sealer list changed, the
BlockPersisted it feeds the replica carries the new list, so the replica switches at the
same height as every other node. A free node starts all the same: it dials its peers,
which admit it once they have committed a block that makes it an observer, and it syncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, assert_never

from consensus import (
    Action,
    BlockExecuted,
    BlockPersisted,
    Broadcast,
    ChainHead,
    CommitBlock,
    Event,
    ExecuteBlock,
    MessageReceived,
    PeerConnected,
    PersistedState,
    PersistState,
    Progress,
    ProposalReady,
    Replica,
    ReplicaConfig,
    RequestSync,
    Send,
    Tick,
    encode_message,
    quorum,
)
from consensus.codec import DecodeError
from consensus.crypto import KeyPair, verify
from node.ledger.block import Block, BlockSeal
from node.ledger.chain import Chain, ChainError, ExecutedBlock, ProposalBody
from node.ledger.genesis import GenesisConfig
from node.ledger.precompiles.consensus import Membership, genesis_membership
from node.ledger.tx import VerifiedTx, tx_hash
from node.rpc.channel import ChannelServer
from node.rpc.http import RpcServer
from node.runtime import wire
from node.runtime.byzantine import Byzantine
from node.runtime.channel import start_channel
from node.runtime.config import NodeConfig
from node.runtime.errors import NodeError
from node.runtime.latency import Latency
from node.runtime.service import start_rpc
from node.runtime.stall import StallWatch
from node.runtime.storage_fault import PROBE_INTERVAL, StorageFault, is_storage_failure, probe
from node.runtime.supervisor import Supervisor
from node.runtime.sync import BlockSync
from node.runtime.tracing import TRACE_ENV, NodeTracer
from node.runtime.txpool import Reason, TxPool, TxRejected
from node.transport import KeyIdentity, MemoryHub, Transport, transport_from_node_config
from node.transport.pki import NodeIdentity, load_node
from storage.backends import open_store
from storage.kv import KVStore
from storage.ledger import LedgerStore

log = logging.getLogger("ledgerlab.node")

PBFT_META = "pbft"
STATUS_INTERVAL = 1.0
TX_FETCH_TIMEOUT = 2.0
# Consensus frames are delivered ahead of everything else (transport deliver_first), so a
# proposal may overtake the gossip carrying its transactions; a node waits this long for
# that gossip, while some is still queued, before it asks a peer for the transactions.
QUEUED_GOSSIP_GRACE = 0.1
# Gossiped transactions admitted between two looks at waiting consensus frames: a vote
# never waits behind more than ~64 admissions (a few ms of CPU), not a whole 500-tx frame.
# (16 measured no better under load: docs/performance.md, "Latency under load".)
ADMIT_SLICE = 64
# A proposal stamped further ahead of our clock (or of its parent's stamp, when our clock
# is behind that) gets no vote: every later block must be at least as late, so one
# accepted far-future stamp would pin the chain's time for good. Only voting depends on
# it; block sync never checks a committed block against a clock. docs/reliability.md,
# Clock skew, says what a node whose clock is off can and cannot do.
MAX_PROPOSAL_AHEAD_MS = 60_000
# A chain may run with consensus_timeout up to an hour; a user must not wait that long to
# hear that nothing commits.
STALL_LIMIT_MAX = 30.0
# A peer is alive ("heard from") while a frame of it arrived within this many seconds.
# Every node sends Status to every peer each STATUS_INTERVAL (1 s; MQTT adds a 1 s
# heartbeat), so a live peer is heard every second: 5 s tolerates four late or lost ones
# (a busy event loop), is MQTT's own peer_timeout, and drops a frozen (SIGSTOPped) peer
# long before TCP's 20 s idle timeout would. The admission quorum check and the stall
# reasons count only these peers (docs/governance.md).
HEARD_WINDOW = 5.0
# Transaction bytes in one block. tx_count_limit alone allows 10,000 txs of 8 KB, but a
# block must fit one BlockResponse item (else no peer can sync it) and Block.decode's limit
# (else we cannot read our own head back); the slack covers header, seal and framing.
MAX_BLOCK_TX_BYTES = wire.MAX_ITEM - 512 * 1024
# Transaction bytes in one TxResponse: whatever a TxRequest asks, the answer is a frame a
# peer accepts (wire.MAX_FRAME, less msgpack's few bytes a tx) and twice what any block
# may hold, so an honest fetch is always answered in full.
MAX_TX_RESPONSE_BYTES = wire.MAX_FRAME - 1024 * 1024


@dataclass(slots=True)
class _Fetch:
    """Transactions a proposal needs that the pool did not have yet."""

    height: int
    wanted: set[bytes]
    done: asyncio.Event
    """Set when nothing is wanted any more, or when ``height`` was committed meanwhile."""


class Node:
    """One node of one group; see the module docstring."""

    def __init__(
        self,
        *,
        config: NodeConfig,
        genesis: GenesisConfig,
        identity: NodeIdentity | None = None,
        keypair: KeyPair | None = None,
        kv: KVStore | None = None,
        hub: MemoryHub | None = None,
        rpc: bool = True,
        clock: Callable[[], float] = time.time,
        trace: Path | None = None,
    ) -> None:
        """``identity`` (certificates) is needed for TCP; ``keypair`` suffices in memory."""
        self.config = config
        self.genesis = genesis
        self.identity = identity
        if keypair is None:
            if identity is None:
                raise NodeError("a node needs its identity (certificates) or at least a key")
            keypair = identity.consensus
        self.key = keypair
        self.node_id = keypair.public_key.hex()
        # names for logs and getPeers: genesis members are node<i> (the launcher's folders)
        self._names = {
            k.hex(): f"node{i}" for i, k in enumerate(genesis.sealers + genesis.observers)
        }
        self.membership: Membership
        self.index: int | None
        self.role: str
        """``"sealer"``, ``"observer"`` or ``"free"``: from the membership at the head."""
        self.sealer_ids: list[str]
        self.members: list[str]
        self._sealer_pos: dict[str, int]
        self._apply_membership(genesis_membership(genesis))  # the head's, once storage opens
        self._kv = kv
        self._hub = hub
        self._rpc_enabled = rpc
        self._clock = clock
        self._trace_path = trace
        self.tracer: NodeTracer | None = None
        """Writes this node's trace (docs/trace-format.md) when started with one."""
        self.store: LedgerStore | None = None
        self.chain: Chain
        self.pool: TxPool
        self.replica: Replica
        self.transport: Transport
        self.sync: BlockSync
        self.rpc_server: RpcServer | None = None
        self.channel_server: ChannelServer | None = None
        self._events: deque[Event] = deque()
        self._stepping = False
        self._executed: dict[bytes, ExecutedBlock] = {}
        self._fetches: list[_Fetch] = []
        # A big frame's txs not admitted yet, and whether it was a TxResponse (fetched).
        self._gossip_rest: deque[tuple[tuple[bytes, ...], bool]] = deque()
        self._gossip: list[bytes] = []
        self._gossip_wake = asyncio.Event()
        self._seal_wake = asyncio.Event()
        self._left_by_commit = False  # txs pending when the last block committed (_seal_loop)
        self._regossipped_at = 0.0
        self._oldest_pending: tuple[bytes | None, float] = (None, 0.0)  # hash, since when
        self.supervisor = Supervisor(config.name)
        self.storage_fault: StorageFault | None = None
        """Set while this node cannot write its data directory (node/runtime/storage_fault.py)."""
        self.stall: StallWatch  # from the head's age, once storage is open
        self.refusal: tuple[int, str] | None = None
        """(height, why this node did not vote for the proposal there), for stall reports."""
        self._stack: contextlib.AsyncExitStack | None = None
        self.frames_in: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.commit_times: deque[tuple[float, int]] = deque(maxlen=64)
        self.latency = Latency()  # histograms for /metrics (node/runtime/latency.py)
        self.byzantine = Byzantine.of(config, self)
        """FOR TESTING ONLY: what this node sends is Byzantine (node/runtime/byzantine.py)."""

    # -- construction from a node folder ---------------------------------------------

    @classmethod
    def from_config(cls, path: str | Path, *, byzantine: str | None = None) -> Node:
        """The node of a folder's config.toml; ``byzantine`` (a behaviour, or ``"none"``
        for an honest node) overrides its ``[testing] byzantine``."""
        config = NodeConfig.load(path)
        if byzantine is not None:
            config = dataclasses.replace(
                config, byzantine=None if byzantine == "none" else byzantine
            )
        genesis = GenesisConfig.load(config.path(config.genesis))
        identity = load_node(config.path(config.conf_dir))
        trace = os.environ.get(TRACE_ENV)
        return cls(
            config=config,
            genesis=genesis,
            identity=identity,
            trace=config.path(Path(trace)) if trace else None,
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Node:
        stack = contextlib.AsyncExitStack()
        try:
            await self._start(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        stack.callback(self.supervisor.catch_loop_errors())
        cfg = self.config
        kv = self._kv
        if kv is None:
            data_dir = cfg.path(cfg.data_dir)
            data_dir.mkdir(parents=True, exist_ok=True)
            try:
                kv = open_store(str(data_dir), cfg.storage_backend)
            except Exception as exc:
                raise NodeError(f"cannot open storage at {data_dir}: {exc}") from None
            stack.callback(self._close_store, kv)
        self.store = LedgerStore(kv)
        try:
            self.chain = Chain(self.store, self.genesis)
        except ChainError as exc:
            raise NodeError(str(exc)) from None
        self._apply_membership(self.chain.membership())
        self.pool = TxPool(
            chain_id=self.genesis.chain_id,
            group_id=self.genesis.group_id,
            in_chain=lambda h: self.store is not None and self.store.tx_location(h) is not None,
            capacity=cfg.txpool_capacity,
            sees_every_commit=True,  # _after_commit and _remember_recent_nonces
        )
        self._remember_recent_nonces()
        self.replica = self._new_replica()
        # "seconds since the last commit" survives a restart: count from the head's stamp
        head_age = self._clock() - self.chain.head_timestamp() / 1000
        known_age = head_age if self.chain.head.number > 0 and head_age > 0 else 0.0
        self.stall = StallWatch(time.monotonic() - known_age)
        self.transport = self._new_transport()
        self.transport.deliver_first(wire.is_consensus)
        try:
            await stack.enter_async_context(self.transport)
        except OSError as exc:
            raise NodeError(
                f"cannot start the {cfg.transport} transport ({cfg.p2p_listen}): "
                f"{exc.strerror or exc}"
            ) from None
        self.sync = BlockSync(self)
        if self._rpc_enabled:
            self.rpc_server = await start_rpc(self, stack)
        if cfg.channel_listen is not None:
            self.channel_server = await start_channel(self, stack)
        stack.push_async_callback(self.supervisor.aclose)
        if self._trace_path is not None:
            self.tracer = NodeTracer.open(self, self._trace_path)
            stack.callback(self.tracer.close)
            self.tracer.started(self.replica)
            self.supervisor.spawn("trace", self.tracer.flush_loop)
        for name, loop in (
            ("inbound", self._inbound_loop),
            ("tick", self._tick_loop),
            ("seal", self._seal_loop),
            ("gossip", self._gossip_loop),
            ("status", self._status_loop),
            ("peers", self._peers_loop),
            ("sync", self.sync.run),
            *(self.byzantine.loops() if self.byzantine is not None else ()),
        ):
            self.supervisor.spawn(name, loop)
        if self.byzantine is not None:
            log.warning(
                "*** this node is Byzantine: %s (a test mode: never on a real chain) ***",
                self.byzantine.behaviour,
            )
        for action in self.replica.start():  # peers hear of the view it restarted in
            self._perform(action)
        log.info(
            "%s started as %s%s at height %d (view %d)",
            cfg.name,
            self.role,
            "" if self.index is None else f" {self.index}",
            self.chain.head.number,
            self.replica.view,
        )

    def _close_store(self, kv: KVStore) -> None:
        """Close the store; after a storage fault RocksDB refuses to close cleanly
        ("Writer has previous error") but lets go of its files all the same."""
        try:
            kv.close()
        except Exception as exc:
            if self.storage_fault is None or not is_storage_failure(exc):
                raise
            log.warning("closing the store after a storage fault: %s", exc)

    @property
    def failure(self) -> str | None:
        """Why this node stopped itself (supervision policy), or None while it runs."""
        return self.supervisor.failure

    def _remember_recent_nonces(self) -> None:
        """Rebuild the txpool's nonce memory from the last blocks (replay protection)."""
        head = self.chain.head.number
        for number in range(max(1, head - self.pool._nonce_memory + 1), head + 1):
            block = self.chain.block(number)
            if block is not None:
                self.pool.on_commit(number, block.decode_transactions())

    # -- membership --------------------------------------------------------------------

    def _apply_membership(self, membership: Membership) -> None:
        """Take ``membership`` as this node's: role, index, sealer ids, members."""
        self.membership = membership
        me = self.key.public_key
        self.role = membership.role_of(me)
        self.index = membership.sealers.index(me) if self.role == "sealer" else None
        self.sealer_ids = [k.hex() for k in membership.sealers]
        self._sealer_pos = {peer: i for i, peer in enumerate(self.sealer_ids)}
        self.members = self.sealer_ids + [k.hex() for k in membership.observers]

    def _follow_membership(self) -> tuple[bytes, ...] | None:
        """Re-read the membership at the head after a block was persisted; the new
        sealer list when it changed (for the replica), else None.

        The transport then admits exactly the new members: a removed node (now a free
        node) is disconnected, an added one may connect.
        """
        new = self.chain.membership()
        old = self.membership
        if new == old:
            return None
        role, index = self.role, self.index
        self._apply_membership(new)
        self.transport.set_members(self.members, self.config.blacklist)
        log.info(
            "membership at height %d: %d sealers, %d observers",
            self.chain.head.number,
            len(new.sealers),
            len(new.observers),
        )
        if (self.role, self.index) != (role, index):
            log.warning(
                "%s is now %s%s (was %s%s)",
                self.config.name,
                self.role,
                "" if self.index is None else f" {self.index}",
                role,
                "" if index is None else f" {index}",
            )
        return new.sealers if new.sealers != old.sealers else None

    def name_of(self, node_id: str) -> str:
        """A peer's name: ``node<i>`` for a genesis member, else its id's first 8 digits."""
        return self._names.get(node_id) or node_id[:8]

    def _sealer_name(self, index: int) -> str:
        if 0 <= index < len(self.sealer_ids):
            return self.name_of(self.sealer_ids[index])
        return str(index)

    def _new_replica(self) -> Replica:
        assert self.store is not None
        restored = None
        raw = self.store.get_meta(PBFT_META)
        if raw is not None:
            try:
                restored = PersistedState.decode(raw)
            except DecodeError as exc:
                raise NodeError(f"corrupt persisted consensus state: {exc}") from None
        timeout_ticks, leader_period = self._consensus_config()
        head = self.chain.head
        return Replica(
            ReplicaConfig(
                index=self.index,
                sealers=self.membership.sealers,  # in force for the height after the head
                signer=self.key.sign,  # observers too: a promotion makes them sign
                node_key=self.key.public_key,
                verifier=verify,
                genesis_hash=self.chain.genesis_hash,
                timeout_ticks=timeout_ticks,
                leader_period=leader_period,
            ),
            restored=restored,
            head=ChainHead(head.number, head.block_hash),
        )

    def _consensus_config(self) -> tuple[int, int]:
        """``(timeout_ticks, leader_period)`` from the system config at the head."""
        values = self.chain.executor.system_config(self.chain.store.state)
        ticks = max(1, round(values.consensus_timeout * 1000 / self.config.tick_ms))
        return ticks, values.leader_period

    def _persisted(self, height: int, block_hash: bytes) -> BlockPersisted:
        """BlockPersisted carrying the consensus config in force from the next height,
        and the sealer list when the block changed it (the node follows it first, so the
        actions the replica answers with map indices to the new list)."""
        timeout_ticks, leader_period = self._consensus_config()
        sealers = self._follow_membership()
        return BlockPersisted(height, block_hash, timeout_ticks, leader_period, sealers=sealers)

    def _new_transport(self) -> Transport:
        identity = self.identity or KeyIdentity.of(self.key)
        try:
            return transport_from_node_config(
                self.config,
                identity=identity,
                genesis_hash=self.chain.genesis_hash,
                members=self.members,
                chain_id=self.genesis.chain_id,
                group_id=self.genesis.group_id,
                hub=self._hub,
            )
        except (ValueError, OSError) as exc:
            raise NodeError(f"cannot set up the {self.config.transport} transport: {exc}") from None

    # -- the replica's event path ------------------------------------------------------

    def _feed(self, event: Event) -> None:
        """Step the replica with ``event`` and perform its actions, in order.

        Under a storage fault the replica is stepped no more: nothing it would send can
        be backed by what is on disk (node/runtime/storage_fault.py)."""
        if self.storage_fault is not None:
            self._events.clear()
            return
        self._events.append(event)
        if self._stepping:
            return
        self._stepping = True
        try:
            while self._events and self.supervisor.failure is None:
                event = self._events.popleft()
                tracer = self.tracer
                if tracer is None:
                    actions = self.replica.step(event)
                else:
                    actions = tracer.step(self.replica, event)
                for action in actions:
                    self._perform(action)
                    if self.supervisor.failure is not None or self.storage_fault is not None:
                        self._events.clear()
                        break  # stopping, or nothing stored: perform nothing more
            self.latency.view_active(self.replica.view_active)  # times view changes
        finally:
            self._stepping = False
        self._seal_wake.set()

    def _perform(self, action: Action) -> None:
        match action:
            case Broadcast() | Send() if self.byzantine is not None:
                self.byzantine.send(action)  # a test mode (node/runtime/byzantine.py)
            case Broadcast():
                frame = wire.encode(wire.Consensus(encode_message(action.message)))
                self.transport.broadcast(frame)
            case Send():
                if 0 <= action.to < len(self.sealer_ids):
                    frame = wire.encode(wire.Consensus(encode_message(action.message)))
                    self.transport.send(self.sealer_ids[action.to], frame)
            case PersistState():
                assert self.store is not None
                try:
                    self.store.put_meta(PBFT_META, action.state.encode())  # durable first
                except Exception as exc:
                    if not is_storage_failure(exc):
                        raise
                    self.storage_failed(f"cannot store the PBFT state: {exc}")
            case ExecuteBlock():
                self._execute(action)
            case CommitBlock():
                self._commit(action)
            case RequestSync():
                peers = [self.sealer_ids[i] for i in action.peers if 0 <= i < len(self.sealer_ids)]
                self.sync.want(action.target_height, peers)
            case _:
                assert_never(action)

    def _execute(self, action: ExecuteBlock) -> None:
        try:
            body = ProposalBody.decode(action.proposal.payload)
        except DecodeError as exc:
            self._feed(self._not_executed(action, f"undecodable proposal ({exc})"))
            return
        if body.proposer >= len(self.sealer_ids):
            # A Byzantine leader's choice; the fetch below indexes sealer_ids with it.
            self._feed(self._not_executed(action, f"proposer {body.proposer} is not a sealer"))
            return
        missing = self.pool.missing(body.tx_hashes)
        if not missing:
            self._feed(self._run_proposal(action, body))
            return
        self.supervisor.spawn(
            "fetch", lambda: self._fetch_then_execute(action, body, missing), restart=False
        )

    async def _fetch_then_execute(
        self, action: ExecuteBlock, body: ProposalBody, missing: list[bytes]
    ) -> None:
        # A wanted tx may have come in before this task ran (gossip racing the proposal).
        pool = self.pool
        fetch = _Fetch(action.height, {h for h in missing if h not in pool}, asyncio.Event())
        if not fetch.wanted:
            fetch.done.set()
        self._fetches.append(fetch)
        if self._gossip_rest or self.transport.queued():
            # The proposal may have overtaken the gossip of its txs (consensus first).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(QUEUED_GOSSIP_GRACE):
                    await fetch.done.wait()
        leader = self.replica.leader_of(action.view, action.height)
        request = wire.encode(wire.TxRequest(action.height, tuple(fetch.wanted)))
        ids = self.sealer_ids
        targets = [ids[i] for i in (body.proposer, leader) if 0 <= i < len(ids)]
        targets += [p for p in self.transport.peers() if p not in targets]
        chain = self.chain
        try:
            for target in dict.fromkeys(targets):
                if not fetch.wanted or chain.head.number >= action.height:
                    break  # got them, or block sync committed the height meanwhile
                if target == self.node_id:
                    continue
                self.transport.send(target, request)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(TX_FETCH_TIMEOUT):
                        await fetch.done.wait()
                if not fetch.wanted:
                    break
        finally:
            self._fetches.remove(fetch)
        if self.replica.height != action.height:
            return  # the chain moved on (sync) while we waited
        if fetch.wanted:
            log.warning("block %d: %d transactions unavailable", action.height, len(fetch.wanted))
            why = f"{len(fetch.wanted)} of the proposal's txs unavailable ({_hashes(fetch.wanted)})"
            self._feed(self._not_executed(action, why))
        else:
            self._feed(self._run_proposal(action, body))

    def _run_proposal(self, action: ExecuteBlock, body: ProposalBody) -> BlockExecuted:
        proposal = action.proposal
        found = [self.pool.get(h) for h in body.tx_hashes]
        parent_time = self.chain.head_timestamp()
        # Ahead of this node's clock, or of the parent's stamp (which a quorum accepted):
        # a node whose clock is minutes behind still votes for honest blocks, and still
        # no timestamp gets past every correct clock by more than the margin.
        latest = max(int(self._clock() * 1000), parent_time) + MAX_PROPOSAL_AHEAD_MS
        if not parent_time <= body.timestamp <= latest:
            return self._not_executed(action, f"timestamp {body.timestamp} outside the window")
        txs = [v for v in found if v is not None]
        if len(txs) != len(found):
            gone = [h for h, v in zip(body.tx_hashes, found, strict=True) if v is None]
            return self._not_executed(action, f"txs left the pool meanwhile ({_hashes(gone)})")
        stale = [v.hash for v in txs if not self.pool.includable(v, action.height)]
        if stale:
            return self._not_executed(
                action, f"txs expired or nonce already committed ({_hashes(stale)})"
            )
        if sum(len(v.tx.encoded) for v in txs) > MAX_BLOCK_TX_BYTES:
            return self._not_executed(action, f"more than {MAX_BLOCK_TX_BYTES} tx bytes")
        try:
            executed = self.chain.execute(action.height, proposal.parent_hash, body, txs)
        except ChainError as exc:
            log.info("block %d not executed: %s", action.height, exc)
            return self._not_executed(action, str(exc))
        except MemoryError:
            raise  # this node's trouble, not the transactions': quarantine nothing
        except Exception as exc:  # a bug of ours: never the transactions' fault
            self.supervisor.report("execute", exc)
            culprit = self._quarantine_culprit(action.height, proposal.parent_hash, body, txs)
            return self._not_executed(action, f"executing it raised; quarantined {culprit}")
        self._executed[executed.block_hash] = executed
        return BlockExecuted(
            action.height, proposal.digest, executed.block_hash, executed.block.header.state_root
        )

    def _quarantine_culprit(
        self, height: int, parent_hash: bytes, body: ProposalBody, txs: list[VerifiedTx]
    ) -> str:
        """Find the first transaction whose execution raises and drop it for good.

        Execution is sequential, so "the first k transactions raise" is monotone in k: a
        binary search finds the shortest failing prefix in log2(n) executions, and its
        last transaction is the culprit. Every honest node runs the same code on the same
        block, so each one quarantines the same transaction, and the next leader proposes
        without it.
        """

        def raises(k: int) -> bool:
            sub = dataclasses.replace(body, tx_hashes=body.tx_hashes[:k])
            try:
                self.chain.execute(height, parent_hash, sub, txs[:k])
            except ChainError:
                return False
            except Exception:
                return True
            return False

        lo, hi = 1, len(txs)  # the whole list raises; find the shortest prefix that does
        while lo < hi:
            mid = (lo + hi) // 2
            if raises(mid):
                hi = mid
            else:
                lo = mid + 1
        culprit = txs[lo - 1].hash if txs else None
        if culprit is None:
            return "nothing (an empty block raised)"
        self.pool.quarantine(culprit)
        log.error("block %d: quarantined tx %s (executing it raised)", height, culprit.hex())
        return f"tx 0x{culprit.hex()[:16]}"

    def _not_executed(self, action: ExecuteBlock, why: str) -> BlockExecuted:
        """This node will not vote for ``action``'s proposal; ``why`` feeds stall reports."""
        self.refusal = (action.height, why)
        return BlockExecuted(action.height, action.proposal.digest, bytes(32), bytes(32), ok=False)

    def _commit(self, action: CommitBlock) -> None:
        head = self.chain.head
        if action.height <= head.number:  # block sync got there first
            self._feed(self._persisted(head.number, head.block_hash))
            return
        executed = self._executed.get(action.block_hash)
        if executed is None or action.height != head.number + 1:
            self.sync.want(action.height, [])
            return
        try:
            block = self.chain.commit(executed, BlockSeal(action.seal.view, action.seal.signatures))
        except Exception as exc:
            if is_storage_failure(exc):  # the disk: stop voting, restart once it is back
                self.storage_failed(f"cannot store decided block {action.height}: {exc}")
                return
            # The block is decided: this node cannot skip it, and must not vote on as if
            # it had stored it. Stop; a restart catches up by block sync.
            reason = f"cannot store decided block {action.height}: {exc}"
            self.supervisor.fatal(reason, "commit", exc)
            return
        self._after_commit(block, executed)
        self._feed(self._persisted(action.height, action.block_hash))

    def _after_commit(self, block: Block, executed: ExecutedBlock) -> None:
        """Bookkeeping common to consensus commits and synced blocks."""
        self._executed.clear()
        for fetch in self._fetches:  # a fetch for this height is moot: stop asking peers
            if fetch.height <= block.number:
                fetch.done.set()
        dropped = self.pool.on_commit(block.number, [v.tx for v in executed.txs])
        self._left_by_commit = len(self.pool) > 0  # they waited this block's round
        self.commit_times.append((self._clock(), len(executed.txs)))
        self.latency.committed(v.hash for v in executed.txs)
        if self.channel_server is not None:  # receipt pushes, block-number notifies
            self.channel_server.on_commit(
                block.number,
                [v.hash for v in executed.txs],
                [(h, reason.value) for h, reason in dropped],
            )
        self.stall.committed(time.monotonic())
        self.refusal = None
        self.transport.broadcast(wire.encode(self._status()))

    def on_synced(self, block: Block, executed: ExecutedBlock, source: str = "") -> None:
        """Block sync committed ``block`` (from peer ``source``): tell the replica and
        the pool."""
        if self.tracer is not None:
            self.tracer.synced(block, source)
        self._after_commit(block, executed)
        self._feed(self._persisted(block.number, block.hash))

    # -- inbound frames ----------------------------------------------------------------

    async def _inbound_loop(self) -> None:
        """Frames in arrival order, consensus frames first (the transport delivers them
        ahead); a big gossip frame or TxResponse is admitted a slice at a time, with the
        consensus frames that came meanwhile handled between slices."""
        transport = self.transport
        while True:
            peer, frame = await transport.recv()
            self._handle_frame(peer, frame)
            while self._gossip_rest:
                await asyncio.sleep(0)  # the readers, timers and RPC run
                for urgent in transport.recv_urgent_nowait():
                    self._handle_frame(*urgent)
                if self._gossip_rest:
                    raws, fetched = self._gossip_rest.popleft()
                    try:
                        self._admit_gossip(raws, fetched=fetched)
                    except Exception as exc:  # our own bug: drop this slice, as a frame
                        self.dropped["handler_error"] += 1
                        self.supervisor.report("inbound", exc)

    def _handle_frame(self, peer: str, frame: bytes) -> None:
        try:
            self._on_frame(peer, frame)
        except Exception as exc:  # our own bug: drop this frame, keep the loop
            self.dropped["handler_error"] += 1
            self.supervisor.report("inbound", exc)

    def _admit_gossip(self, raws: tuple[bytes, ...], *, fetched: bool = False) -> None:
        """Admit the first :data:`ADMIT_SLICE` of ``raws`` (a Txs frame, or a TxResponse:
        ``fetched``); the inbound loop admits the rest after looking at waiting consensus
        frames. A TxResponse is sliced too: else a peer's unasked-for 20,000-tx answer
        would hold every vote behind it (~0.7 s of admission)."""
        if len(raws) > ADMIT_SLICE:
            self._gossip_rest.appendleft((raws[ADMIT_SLICE:], fetched))
            raws = raws[:ADMIT_SLICE]
        self._admit_from_peer(raws, fetched=fetched)

    def _on_frame(self, peer: str, frame: bytes) -> None:
        try:
            msg = wire.decode(frame)
        except DecodeError as exc:
            self.dropped["malformed"] += 1
            log.debug("malformed frame from %s: %s", peer[:16], exc)
            return
        self.frames_in[type(msg).__name__] += 1
        if isinstance(msg, wire.Consensus):
            self._feed(MessageReceived(msg.data, self._sealer_index(peer)))
        elif isinstance(msg, wire.Txs):
            self._admit_gossip(msg.raw)
        elif isinstance(msg, wire.TxRequest):
            self._answer_tx_request(peer, msg)
        elif isinstance(msg, wire.TxResponse):
            self._admit_gossip(msg.raw, fetched=True)
        elif isinstance(msg, wire.Status):
            self.sync.on_status(peer, msg)
        elif isinstance(msg, wire.BlockRequest):
            self.sync.serve(peer, msg)
        elif isinstance(msg, wire.BlockResponse):
            self.sync.on_blocks(peer, msg)

    def _answer_tx_request(self, peer: str, msg: wire.TxRequest) -> None:
        """The pooled txs ``msg`` asks for, each once, up to :data:`MAX_TX_RESPONSE_BYTES`:
        a 640 KB request naming one 8 KB tx 20,000 times must not make this node build a
        160 MB frame (that no transport would carry anyway)."""
        found: list[bytes] = []
        size = 0
        get = self.pool.get
        for h in dict.fromkeys(msg.hashes):
            vtx = get(h)
            if vtx is not None:
                raw = vtx.tx.encoded
                size += len(raw) + 5  # msgpack's bin header
                if size > MAX_TX_RESPONSE_BYTES:
                    break
                found.append(raw)
        self.transport.send(peer, wire.encode(wire.TxResponse(msg.number, tuple(found))))

    def _sealer_index(self, peer: str) -> int | None:
        return self._sealer_pos.get(peer)

    def _admit_from_peer(self, raws: tuple[bytes, ...], *, fetched: bool = False) -> None:
        """Gossiped txs go through normal admission. Txs a pending fetch asked for are
        judged against the chain, not the pool: the proposal decides between two txs of
        one nonce (TxPool.admit_for_proposal)."""
        head = self.chain.head.number
        fetches, pool = self._fetches, self.pool
        if not (fetched and any(f.wanted for f in fetches)):
            # gossip, the hot path: one batch admission, no hashing here
            results = pool.admit_many(raws, head)
        else:  # a slice of a TxResponse: no union of the wanted sets per slice
            results = []
            for raw in raws:
                h = tx_hash(raw)
                wanted = any(h in f.wanted for f in fetches)
                results += pool.admit_many((raw,), head, for_proposal=wanted)
        if fetches:
            self._fetched([r.hash for r in results if type(r) is VerifiedTx])
        self._seal_wake.set()  # a leader may now have a block's worth

    def _fetched(self, added: list[bytes]) -> None:
        """The pool just took ``added``: fetches waiting for them are done when nothing
        else is wanted. By what this admission added, not by the whole wanted set per
        slice (a 1,000-tx fetch re-checked every 64 admissions cost ~16,000 lookups a
        block); what the pool held before a fetch registered is taken off when it does."""
        for fetch in self._fetches:
            fetch.wanted.difference_update(added)
            if not fetch.wanted:
                fetch.done.set()

    # -- client transactions -----------------------------------------------------------

    def submit(self, raws: list[bytes], *, force: bool = False) -> list[bytes | TxRejected]:
        """Admit client transactions; accepted ones are gossiped in batches.

        A membership change that would leave the new sealer set without a quorum this
        node can see connected is refused (:meth:`_vet_membership`) unless ``force``.
        A free node refuses every one (NotAGroupMember), forced or not: the members do
        not talk to it, so nothing it admitted could reach a block.
        """
        head = self.chain.head.number
        if self.storage_fault is not None:
            refused = TxRejected(
                Reason.STORAGE_UNAVAILABLE,
                f"this node cannot write its data directory ({self.storage_fault.reason}); "
                "send the transaction to another node",
            )
            self.storage_fault.refused += len(raws)
            self.pool.rejected[Reason.STORAGE_UNAVAILABLE] += len(raws)
            return [refused] * len(raws)
        if self.role == "free":
            refused = TxRejected(
                Reason.NOT_A_GROUP_MEMBER,
                f"this node is not a sealer or observer of the group at its head (block "
                f"{head}): the members do not talk to it, so its transactions cannot "
                "commit; send them to a sealer or observer",
            )
            self.pool.rejected[Reason.NOT_A_GROUP_MEMBER] += len(raws)
            return [refused] * len(raws)
        vet = None if force else self._vet_membership
        out: list[bytes | TxRejected] = []
        gossip = self._gossip
        for result in self.pool.admit_many(raws, head, vet=vet):
            if isinstance(result, TxRejected):
                out.append(result)
                continue
            stx = result.tx
            out.append(stx.hash)
            gossip.append(stx.encoded)
        if self._fetches:  # a client sent a tx a proposal waits for
            self._fetched([h for h in out if type(h) is bytes])
        if gossip:
            self._gossip_wake.set()
        self._seal_wake.set()
        self.latency.submitted(out)
        return out

    def _vet_membership(self, vtx: VerifiedTx) -> None:
        """Refuse a client's Consensus-precompile call whose new sealer set would have
        fewer members "known alive" from here (this node, and peers heard from within
        HEARD_WINDOW: a frame in the last 5 s) than its quorum: committing it would
        stall the chain.

        This is not deterministic (it depends on what this node hears right now), so it
        is an admission rule of the node the client talks to, never an execution rule;
        gossiped transactions skip it. The change is judged on the head state after the
        membership changes already pending in this node's pool, in pool (sealing) order:
        two changes that pass alone but break the quorum together are not both admitted
        here (two nodes taking one each within the gossip delay still can: docs/
        governance.md). A call that would fail anyway is let through, for its receipt
        to say why. A sealer being added counts only if it is heard from itself.
        """
        chain = self.chain
        if not chain.is_membership_change(vtx) or vtx.sender not in self.genesis.governors:
            return  # not a change, or one that fails with NoPermission whatever is pending
        pending = self.pool.matching(chain.is_membership_change)
        new = chain.membership_after(vtx, pending=pending)
        if new is None:
            return
        base = chain.membership_pending(pending) if pending else self.membership
        if new.sealers == base.sealers:
            return
        me, heard = self.key.public_key, self.heard_peers()
        live = sum(1 for k in new.sealers if k == me or k.hex() in heard)
        need = quorum(len(new.sealers))
        if live < need:
            after = (
                f" (after the {len(pending)} membership change(s) pending in this node's pool)"
                if pending
                else ""
            )
            silent = [
                (i, k.hex()) for i, k in enumerate(new.sealers) if k != me and k.hex() not in heard
            ]
            raise TxRejected(
                Reason.MEMBERSHIP_BREAKS_QUORUM,
                f"{vtx.tx.tx.method} would leave {len(new.sealers)} sealers{after}, quorum "
                f"{need}, but only {live} of them are connected to this node (itself "
                f"included; a peer counts when heard from within {HEARD_WINDOW:g} s); "
                f"not heard from: {self._names_of(silent)}; "
                'send it with {"force": true} to submit it anyway',
            )

    def heard_peers(self) -> frozenset[str]:
        """Peers alive now: a frame of theirs arrived within :data:`HEARD_WINDOW`."""
        return self.transport.heard_within(HEARD_WINDOW)

    def _names_of(self, sealers: list[tuple[int, str]]) -> str:
        """``node3 (sealer 2), 5e0a91c2 (sealer 4)``: (index, node id) pairs, named."""
        return ", ".join(f"{self.name_of(node_id)} (sealer {i})" for i, node_id in sealers)

    async def _gossip_loop(self) -> None:
        """Client txs leave in frames of up to ``gossip_max_batch``: a full one at once,
        the rest at the next multiple of ``gossip_max_delay_ms`` on the monotonic clock
        (so a tx waits up to that long, half of it on average, and a burst leaves in few
        frames). The loop sleeps until a client admission wakes it: a poll every 10 ms
        cost an idle node ~20 ms of CPU a second."""
        delay = self.config.gossip_max_delay_ms / 1000
        wake = self._gossip_wake
        while True:
            await wake.wait()
            wake.clear()
            batch_size = self.config.gossip_max_batch
            deadline = (time.monotonic() // delay + 1) * delay if delay > 0 else 0.0
            while 0 < len(self._gossip) < batch_size and (left := deadline - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await wake.wait()
                wake.clear()
            while self._gossip:
                batch, self._gossip = self._gossip[:batch_size], self._gossip[batch_size:]
                self.transport.broadcast(wire.encode(wire.Txs(tuple(batch))))

    async def _peers_loop(self) -> None:
        """Tell the replica of every sealer whose link comes up (PeerConnected): what this
        node broadcast while the link was down never reached it. A chain restarted all at
        once sends its restored ViewChanges before any link is up; without this a sealer
        that missed them waited half a timeout for the re-send (a minute at 120 s)."""
        known: frozenset[str] = frozenset()
        while True:
            peers = self.transport.peers()
            for peer in peers - known:
                index = self._sealer_pos.get(peer)
                if index is not None:
                    self._feed(PeerConnected(index))
            known = peers
            await self.transport.peers_change()

    # -- timers and sealing ------------------------------------------------------------

    async def _tick_loop(self) -> None:
        interval = self.config.tick_ms / 1000
        while True:
            await asyncio.sleep(interval)
            self._feed(Tick(txs_pending=len(self.pool) > 0))

    async def _seal_loop(self) -> None:
        """Propose when a block's worth is pending, when transactions waited through the
        last block's round (left in the pool by its commit), or ``seal_max_wait_ms`` after
        the first transaction reached an idle leader. So the wait gathers company for txs
        of a quiet chain, and a busy chain proposes at once (its txs already waited a
        round): blocks grow with the load instead of waiting out a timer.

        The loop sleeps until something that can change its answer happens: every step
        of the replica and every admission set ``_seal_wake``, and only a pending wait
        has a deadline (a poll every 5 ms cost each node ~0.2 ms of CPU per height of a
        quiet chain)."""
        max_wait = self.config.seal_max_wait_ms / 1000
        ready_since: float | None = None
        while True:
            if ready_since is None:
                await self._seal_wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(ready_since + max_wait - time.monotonic()):
                        await self._seal_wake.wait()
            self._seal_wake.clear()
            if self.storage_fault is not None:
                ready_since = None  # no deadline to wake for: nothing may be proposed
                continue
            if not (len(self.pool) and self.replica.wants_proposal()):
                ready_since = None
                continue
            now = time.monotonic()
            ready_since = ready_since if ready_since is not None else now
            limit = self.chain.executor.system_config(self.chain.store.state).tx_count_limit
            waited = self._left_by_commit or now - ready_since >= max_wait
            if len(self.pool) < limit and not waited:
                continue
            ready_since = None
            self._left_by_commit = False
            self._propose(limit)

    def _propose(self, limit: int) -> None:
        height = self.replica.height
        txs = [v for v in self.pool.seal(limit, height) if self.pool.includable(v, height)]
        size = 0
        for i, v in enumerate(txs):
            size += len(v.tx.encoded)
            if size > MAX_BLOCK_TX_BYTES:
                del txs[i:]
                break
        if not txs or self.index is None:
            return
        timestamp = max(int(self._clock() * 1000), self.chain.head_timestamp())
        body = ProposalBody(timestamp, self.index, tuple(v.hash for v in txs))
        self._feed(ProposalReady(body.encode()))

    # -- status ------------------------------------------------------------------------

    def _status(self) -> wire.Status:
        head = self.chain.head
        return wire.Status(head.number, head.block_hash, self.chain.genesis_hash)

    # -- storage faults (node/runtime/storage_fault.py) ---------------------------------

    def storage_failed(self, reason: str) -> None:
        """A write to the data directory failed: mute consensus, refuse txs, probe."""
        if self.storage_fault is not None:
            return
        self.storage_fault = StorageFault(reason, time.monotonic())
        self._events.clear()
        log.critical(
            "%s cannot write its data directory: %s. Consensus is muted and client "
            "transactions are refused (StorageUnavailable) until a write works again; "
            "then the node restarts from disk and catches up by block sync",
            self.config.name,
            reason,
        )
        self.supervisor.spawn("storage_probe", self._probe_storage_loop, restart=False)

    async def _probe_storage_loop(self) -> None:
        fault = self.storage_fault
        assert fault is not None
        data_dir = self.config.path(self.config.data_dir)
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            fault.probes += 1
            why = await asyncio.to_thread(probe, data_dir)
            if why is None:
                self.supervisor.restart(
                    f"the data directory is writable again after "
                    f"{time.monotonic() - fault.since:.1f} s ({fault.refused} txs refused)"
                )
                return
            if fault.remind_due(time.monotonic()):
                log.critical(
                    "%s still cannot write its data directory (%s; %.0f s so far)",
                    self.config.name,
                    why,
                    time.monotonic() - fault.since,
                )

    async def _status_loop(self) -> None:
        while True:
            self.transport.broadcast(wire.encode(self._status()))
            self._watch_stall()
            self._regossip_if_stalled()
            await asyncio.sleep(STATUS_INTERVAL)

    def current_timeout(self) -> float:
        """The replica's view-change timeout now (seconds, back-off included)."""
        return self.replica.timeout_ticks_now * self.config.tick_ms / 1000

    def consensus_timeout(self) -> float:
        """The configured view-change timeout (seconds, no back-off)."""
        return self.replica.config.timeout_ticks * self.config.tick_ms / 1000

    def stall_limit(self) -> float:
        """Seconds of waiting work without a commit after which the node is stalled."""
        return min(self.consensus_timeout(), STALL_LIMIT_MAX)

    def _watch_stall(self) -> None:
        was = self.stall.stalled
        # Work is waiting: txs in our pool, or a proposal or view change under way (a node
        # that refused a proposal may hold none of its txs, and is stuck all the same).
        busy = len(self.pool) > 0 or self.replica.progress().phase != "waiting_proposal"
        self.stall.observe(time.monotonic(), pending=busy, timeout=self.stall_limit())
        if self.stall.stalled and not was:
            log.warning("stalled at height %d: %s", self.replica.height, self.stall_reason())
        elif was and not self.stall.stalled:
            log.info("no longer stalled (height %d)", self.replica.height)

    def stall_reason(self) -> str:
        """Why the current height is not committing, as far as this node knows.

        When the sealers this node hears from (itself, and peers heard within
        HEARD_WINDOW) are fewer than the quorum, the reason ends with the ones it has
        not heard from, by name and sealer index.
        """
        if self.storage_fault is not None:  # muted: nothing else matters until it clears
            why = self.storage_fault.reason
            return f"storage fault: {why} (consensus muted until a write works)"
        if self.role == "free":
            return (
                f"free node: in neither the sealer nor the observer list at its head (block "
                f"{self.chain.head.number}); the members do not talk to it, so nothing "
                "commits here until a governor's addObserver admits it"
            )
        p = self.replica.progress()
        heard = self.heard_peers()
        silent = [
            (i, s) for i, s in enumerate(self.sealer_ids) if s != self.node_id and s not in heard
        ]
        reason = self._progress_reason(p, leader_silent=any(i == p.leader for i, _ in silent))
        live = len(self.sealer_ids) - len(silent)
        if silent and live < p.quorum:
            reason += (
                f"; {live} of {len(self.sealer_ids)} sealers heard from, quorum {p.quorum}; "
                f"not heard from: {self._names_of(silent)}"
            )
        return reason

    def _progress_reason(self, p: Progress, *, leader_silent: bool) -> str:
        leader = self._sealer_name(p.leader)
        awaited = leader + " (not heard from)" if leader_silent else leader
        if p.phase == "view_change":
            if p.leader == self.index:
                return (
                    f"view change to view {p.view}: this node leads the new view and needs "
                    f"{p.quorum} ViewChanges, has {p.view_changes}"
                )
            return (
                f"view change to view {p.view}: {p.view_changes} of {p.quorum} ViewChanges, "
                f"waiting for the NewView from {awaited}"
            )
        if p.phase == "waiting_proposal":
            if p.leader != self.index:
                return f"waiting for a proposal from the leader {awaited} (view {p.view})"
            if p.abstaining:
                return (
                    f"this node leads view {p.view} but restarted in it after signing there: "
                    "it must not propose again, waiting for a view change"
                )
            return f"this node leads view {p.view}; {len(self.pool)} txs pending to propose"
        if p.phase == "executing":
            wanted = sum(len(f.wanted) for f in self._fetches)
            return f"fetching {wanted} missing txs of {leader}'s proposal"
        if p.phase == "refused":
            why = self.refusal[1] if self.refusal and self.refusal[0] == p.height else "invalid"
            return f"this node refused {leader}'s proposal: {why}"
        if p.phase == "preparing":
            return f"{p.prepares} of {p.quorum} matching Prepares (view {p.view})"
        if p.phase == "committing":
            return f"prepared; {p.commits} of {p.quorum} matching Commits (view {p.view})"
        return p.phase

    def _regossip_if_stalled(self) -> None:
        """Gossip the oldest pending txs again once they waited a consensus timeout: after
        a timeout without a commit, or when the oldest pending tx is still the same one a
        timeout later.

        Gossip is best-effort: it is lost while a link or the MQTT broker is down (or
        reconnecting: a queue flushed before the peers resubscribed reaches nobody). A tx
        that only a follower holds would then wait for that follower's turn as leader, and
        an idle chain never gives it one: the other sealers see nothing to wait for. An
        observer never has a turn: while the chain kept committing other txs, what it had
        accepted with its links down waited until the chain went idle (found by
        ``ledgerlab chaos``, docs/reliability.md), hence the second rule.
        """
        now = time.monotonic()
        timeout = self.consensus_timeout()
        if not len(self.pool):
            return
        stuck = now - self._oldest_pending_since(now) >= timeout
        if now - self._regossipped_at < timeout:
            return
        if self.stall.waiting(now) < timeout and not stuck:
            return
        self._regossipped_at = now
        config = self.chain.executor.system_config(self.chain.store.state)
        raws = [v.tx.encoded for v in self.pool.seal(config.tx_count_limit, self.replica.height)]
        size = self.config.gossip_max_batch
        for i in range(0, len(raws), size):
            self.transport.broadcast(wire.encode(wire.Txs(tuple(raws[i : i + size]))))

    def _oldest_pending_since(self, now: float) -> float:
        """Since when the oldest pending tx has been the oldest (``now`` if it just became)."""
        picked = self.pool.seal(1, self.replica.height)
        oldest = picked[0].hash if picked else None
        if oldest != self._oldest_pending[0]:
            self._oldest_pending = (oldest, now)
        return self._oldest_pending[1]

    def tps(self, window: float = 10.0) -> float:
        """Committed transactions per second over the last ``window`` seconds."""
        now = self._clock()
        recent = [(t, n) for t, n in self.commit_times if now - t <= window]
        if not recent:
            return 0.0
        span = max(now - recent[0][0], 1.0)
        return sum(n for _, n in recent) / span


def _hashes(hashes: Any, shown: int = 3) -> str:
    """A few tx hashes for a log line or a stall reason: ``0xab12…, 0xcd34… (+5)``."""
    items = sorted(hashes)
    text = ", ".join(f"0x{h.hex()[:12]}…" for h in items[:shown])
    return text + (f" (+{len(items) - shown})" if len(items) > shown else "")
