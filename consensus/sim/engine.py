"""The discrete-event simulator: the real Replica code on a virtual clock and network.

One heap of ``(virtual time in microseconds, sequence number, event)`` and one seeded
``random.Random`` drive everything, so a seed fixes the whole run: keys, latencies, drops,
Byzantine choices. Each simulated node plays the node runtime: it performs the replica's
actions in order (PersistState is "durable" at once; CommitBlock appends to the node's
durable chain before BlockPersisted is fed back), executes proposals with the fake
executor, answers RequestSync from a peer's chain (every block checked with verify_seal
and re-executed), and keeps only its chain and last PersistState across a crash.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from consensus import byzantine, tracefmt
from consensus.certs import verify_seal
from consensus.config import ReplicaConfig
from consensus.events import (
    Action,
    BlockExecuted,
    BlockPersisted,
    Broadcast,
    ChainHead,
    CommitBlock,
    Event,
    ExecuteBlock,
    MessageReceived,
    PersistedState,
    PersistState,
    ProposalReady,
    RequestSync,
    Send,
    Tick,
)
from consensus.messages import (
    Message,
    PreparedCertificate,
    Proposal,
    Seal,
    decode_message,
)
from consensus.quorum import max_faulty
from consensus.replica import Replica
from consensus.sim.executor import (
    GENESIS_HASH,
    GENESIS_STATE_ROOT,
    execute,
    make_payload,
    next_sealers,
    payload_txs,
)
from consensus.sim.keys import SimKeys, fake_keys, real_keys
from consensus.sim.scenario import MembershipChange, Scenario

# event kinds (ints keep heap tuples cheap and comparable)
(
    _DELIVER,
    _FANOUT,
    _TICK,
    _EXEC,
    _PERSISTED,
    _PROPOSE,
    _SYNC,
    _CRASH,
    _RESTART,
    _SPAM,
    _ARRIVE,
    _STATUS,
) = range(12)
_MS = 1000  # microseconds per millisecond
Delivery = tuple[int, int, int, bytes, int]
"""(virtual time, sequence number, endpoint id, frame, sender's run index)"""


@dataclass(frozen=True, slots=True)
class Block:
    """A block in a node's durable chain."""

    height: int
    proposal: Proposal
    block_hash: bytes
    state_root: bytes
    seal: Seal
    time_us: int
    sealers: tuple[int, ...]
    """The sealer list (run indices) in force from the next height."""
    synced: bool = False


class SimNode:
    """One endpoint: a replica plus the runtime around it (two endpoints for Twins)."""

    def __init__(
        self, eid: int, index: int, behaviour: str | None, twin: int, sealers: tuple[int, ...]
    ) -> None:
        self.eid = eid
        self.index = index
        """This node's index in the run (its key); its sealer index, if any, varies."""
        self.genesis_sealers = sealers
        self.behaviour = behaviour
        self.twin = twin
        self.replica: Replica | None = None
        self.chain: list[Block] = []
        self.persisted: bytes | None = None
        self.up = True
        self.incarnation = 0
        self.committed_txs: set[int] = set()
        self.next_tx = 0
        self.propose_scheduled = False
        self.sync_inflight = False
        self.progress_times: list[int] = []
        self.view_change_times: list[int] = []
        self.crashes = 0

    @property
    def head_hash(self) -> bytes:
        return self.chain[-1].block_hash if self.chain else GENESIS_HASH

    @property
    def head_state_root(self) -> bytes:
        return self.chain[-1].state_root if self.chain else GENESIS_STATE_ROOT

    @property
    def height(self) -> int:
        return len(self.chain)

    @property
    def sealers(self) -> tuple[int, ...]:
        """The sealer list in force at the height after this node's head."""
        return self.chain[-1].sealers if self.chain else self.genesis_sealers


ReplicaFactory = Callable[..., Replica]
TraceSink = Callable[[dict[str, Any]], None]


_short = tracefmt.short
describe = tracefmt.describe


_DECODED_FRAMES = 4096
"""Frames kept decoded for their other recipients (a few blocks' votes at n = 100)."""


def _decoded(data: bytes) -> Message | None:
    try:
        return decode_message(data)
    except Exception:
        return None


class Simulation:
    """Run one :class:`Scenario`; :meth:`run` returns the nodes for the checker."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        trace: TraceSink | None = None,
        replica_factory: ReplicaFactory | None = None,
    ) -> None:
        scenario.validate()
        self.scenario = s = scenario
        self.rng = rng = random.Random(s.seed)
        self.n = s.nodes
        self.keys: SimKeys = (real_keys if s.signatures == "real" else fake_keys)(s.nodes, rng)
        self._trace = trace
        self._decoded_frames: dict[bytes, Message] = {}
        if replica_factory is None:
            from consensus.sim.broken import factory_for

            replica_factory = factory_for(s.break_rule)
        self._factory = replica_factory
        self.total_txs = s.blocks * s.txs_per_block
        self.now = 0
        self._seq = 0
        self._heap: list[tuple[int, int, int, Any, Any, Any]] = []
        self._fan: list[Delivery] | None = None
        """While one message goes out: its deliveries, gathered for :meth:`_push_fan`."""
        self.nodes: list[SimNode] = []
        self._endpoints: list[list[SimNode]] = [[] for _ in range(s.nodes)]
        self._run_index = {key: i for i, key in enumerate(self.keys.public_keys)}
        self._changes: dict[int, list[MembershipChange]] = {}
        for change in s.membership:
            self._changes.setdefault(change.height, []).append(change)
        for i in range(s.nodes):
            behaviour = s.byzantine.get(i)
            copies = 2 if behaviour == "twins" else 1
            for t in range(copies):
                node = SimNode(len(self.nodes), i, behaviour, t, s.initial_sealers())
                self.nodes.append(node)
                self._endpoints[i].append(node)
        # which twin each endpoint talks to (Twins split the cluster between them)
        self._twin_of = [rng.randrange(2) if s.twins_split else -1 for _ in self.nodes]
        self._any_twins = any(n.behaviour == "twins" for n in self.nodes)
        net = s.network
        self._base = [
            [int(net.latency_ms * _MS * (0.5 + rng.random())) for _ in self.nodes]
            for _ in self.nodes
        ]
        self._jitter = int(net.jitter_ms * _MS)
        self._tick_us = int(s.tick_ms * _MS)
        self._timeout_ticks = max(1, round(s.timeout_ms / s.tick_ms))
        self._exec_us = int(s.exec_ms * _MS)
        self._partitions = [
            (
                {n: gi for gi, g in enumerate(p.groups) for n in g},
                int(p.start_ms * _MS),
                int(p.heal_ms * _MS) if p.heal_ms is not None else None,
            )
            for p in s.partitions
        ]
        self._drop_rules = s.drop_rules
        gst = s.gst_ms()
        self.gst_us: int | None = int(gst * _MS) if gst is not None else None
        if s.max_time_ms is not None:
            self.max_time_us = int(s.max_time_ms * _MS)
        else:
            per_block = 8 * net.latency_ms + net.jitter_ms * 4 + s.exec_ms * 2 + 50
            budget = s.blocks * per_block * 4 + 60 * s.timeout_ms * (1.5 ** min(s.backoff_cap, 4))
            start = max(gst or 0.0, s.blocks * s.tx_interval_ms)
            self.max_time_us = int((start + budget) * _MS)
        self.available_txs = self.total_txs if s.tx_interval_ms == 0 else s.txs_per_block
        # statistics
        self.proposed: dict[bytes, tuple[int, int, int, int]] = {}
        """proposal digest -> (proposer index, view, height, first time)"""
        self.net_messages: Counter[str] = Counter()
        self.net_drops = 0
        self.sync_failures = 0
        self.events = 0
        self.done = False

    # -- scheduling --------------------------------------------------------------------

    def _push(self, t: int, kind: int, a: Any = None, b: Any = None, c: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, a, b, c))

    def _push_fan(self, fan: list[Delivery]) -> None:
        """Put the deliveries of one outgoing message on the heap as one entry.

        A broadcast at n = 100 is 99 deliveries; as 99 heap entries they made the heap
        ~6,600 entries deep, and popping it a fifth of the run. The fan is sorted once and
        sits on the heap under its earliest delivery's key; :meth:`run` takes one delivery
        at a time and puts the fan back under the next one. Every delivery keeps the
        ``(time, sequence number)`` it was given, so events come off in exactly the order
        they did as separate entries: a seed runs as before.
        """
        if not fan:
            return
        if len(fan) == 1:
            t, seq, eid, data, src_index = fan[0]
            heapq.heappush(self._heap, (t, seq, _DELIVER, eid, data, src_index))
            return
        fan.sort(reverse=True)  # keys are unique (seq): the tuples never compare further
        t, seq = fan[-1][0], fan[-1][1]
        heapq.heappush(self._heap, (t, seq, _FANOUT, fan, None, None))

    def _log(self, record: dict[str, Any]) -> None:
        if self._trace is not None:
            record["t"] = self.now
            self._trace(record)

    # -- setup and main loop -----------------------------------------------------------

    def _make_replica(self, node: SimNode) -> Replica:
        s = self.scenario
        restored = PersistedState.decode(node.persisted) if node.persisted is not None else None
        head = ChainHead(node.height, node.head_hash) if node.chain else None
        sealers = node.sealers
        config = ReplicaConfig(
            index=sealers.index(node.index) if node.index in sealers else None,
            sealers=self.sealer_keys(sealers),
            node_key=self.keys.public_keys[node.index],
            signer=self.keys.signers[node.index],
            verifier=self.keys.verifier,
            genesis_hash=GENESIS_HASH,
            timeout_ticks=self._timeout_ticks,
            backoff_cap=s.backoff_cap,
            leader_period=s.leader_period,
        )
        return self._factory(config, restored=restored, head=head)

    def run(
        self, progress: Callable[[Simulation], None] | None = None, every: int = 2000
    ) -> Simulation:
        """Run to the end; ``progress(self)`` is called every ``every`` events."""
        s = self.scenario
        if self._trace is not None:
            self._trace(self._header())
        for node in self.nodes:
            node.replica = self._make_replica(node)
            if node.behaviour == "crash":
                self._push(int(self.rng.uniform(300, 3000) * _MS), _CRASH, node.eid)
            if node.behaviour == "spam":
                self._push(int(self.rng.uniform(10, 200) * _MS), _SPAM, node.eid)
        for c in s.crashes:
            for node in self._endpoints[c.node]:
                self._push(int(c.at_ms * _MS), _CRASH, node.eid, True)
                if c.restart_ms is not None:
                    self._push(int(c.restart_ms * _MS), _RESTART, node.eid, True)
        self._push(self._tick_us, _TICK)
        self._status_us = int(s.status_ms * _MS)
        if self._status_us > 0:
            self._push(self._status_us, _STATUS)
        if self.available_txs < self.total_txs:
            self._push(int(s.tx_interval_ms * _MS), _ARRIVE)
        for node in self.nodes:
            self._after_step(node)
        heap = self._heap
        heappop, heapreplace = heapq.heappop, heapq.heapreplace
        max_time_us = self.max_time_us
        while heap and not self.done:
            t, _, kind, a, b, c = heap[0]
            if t > max_time_us:
                break
            self.now = t
            self.events += 1
            if progress is not None and self.events % every == 0:
                progress(self)
            if kind == _FANOUT:
                _, _, eid, data, src_index = a.pop()
                if a:
                    head = a[-1]
                    heapreplace(heap, (head[0], head[1], _FANOUT, a, None, None))
                else:
                    heappop(heap)
                self._deliver(eid, data, src_index)
                continue
            heappop(heap)
            if kind == _DELIVER:
                self._deliver(a, b, c)
            elif kind == _TICK:
                self._tick()
            elif kind in (_EXEC, _PERSISTED):
                node = self.nodes[a]
                if node.up and node.incarnation == b:
                    self._step(node, c)
            elif kind == _PROPOSE:
                self._propose(self.nodes[a], b)
            elif kind == _SYNC:
                self._sync_done(self.nodes[a], b, c)
            elif kind == _CRASH:
                self._crash(self.nodes[a], bool(b))
            elif kind == _RESTART:
                self._restart(self.nodes[a], bool(b))
            elif kind == _SPAM:
                self._spam(self.nodes[a])
            elif kind == _ARRIVE:
                self._arrive()
            elif kind == _STATUS:
                self._status()
        return self

    def _header(self) -> dict[str, Any]:
        s = self.scenario
        sealers = s.initial_sealers()
        nodes = [
            {
                "id": n.eid,
                "index": n.index,
                "name": f"node{n.index}" + ("b" if n.twin else ""),
                "role": "sealer" if n.index in sealers else "observer",
                "behaviour": n.behaviour,
            }
            for n in self.nodes
        ]
        return tracefmt.header(
            source="sim",
            clock="virtual",
            nodes=nodes,
            sealers=sealers,
            seed=s.seed,
            blocks=s.blocks,
            timeout_ms=s.timeout_ms,
        )

    def _ids(self, node: SimNode) -> tracefmt.NodeIds:
        """Sealer index as ``node``'s replica numbers it -> run index (a node id)."""
        keys = node.replica.sealers if node.replica is not None else ()
        run = self._run_index

        def ids(i: int) -> int:
            return run[keys[i]] if 0 <= i < len(keys) else -1

        return ids

    def sealer_keys(self, sealers: tuple[int, ...]) -> tuple[bytes, ...]:
        return tuple(self.keys.public_keys[i] for i in sealers)

    def next_sealers(self, sealers: tuple[int, ...], proposal: Proposal) -> tuple[int, ...]:
        """The list after ``proposal``'s block: the chain state every node derives alike."""
        changes = self._changes.get(proposal.height)
        return next_sealers(sealers, changes, proposal.payload) if changes else sealers

    def liveness_expected(self) -> bool:
        """The scenario's promise, judged on the sealer lists the run really produced
        (a removal of "the leader" removed someone known only now)."""
        s = self.scenario
        if s.gst_ms() is None:
            return False
        faulty = set(s.faulty_nodes())
        chains = [n.chain for n in self.honest_nodes()]
        longest = max(chains, key=len, default=[])
        lists = [s.initial_sealers(), *(b.sealers for b in longest)]
        return all(len(faulty & set(m)) <= max_faulty(len(m)) for m in lists)

    def honest_nodes(self) -> list[SimNode]:
        """Endpoints whose node follows the protocol (crashes included, Twins not)."""
        faulty = set(self.scenario.byzantine)
        return [n for n in self.nodes if n.index not in faulty]

    def _check_done(self) -> None:
        target = self.scenario.blocks
        live = [n for n in self.honest_nodes() if not self._down_for_good(n)]
        if live and all(n.height >= target for n in live):
            self.done = True

    def _down_for_good(self, node: SimNode) -> bool:
        if node.up:
            return False
        return any(c.node == node.index and c.restart_ms is None for c in self.scenario.crashes)

    # -- stepping a node ---------------------------------------------------------------

    def _step(self, node: SimNode, event: Event) -> None:
        replica = node.replica
        assert replica is not None
        before = replica.position
        caught = replica.counters.equivocations
        actions = replica.step(event)
        after = replica.position
        if self._trace is not None:
            self._trace_event(node, event)
            if isinstance(event, Tick) and actions:
                self._log(tracefmt.timer(node.eid, actions, before[1], after[0], after[1]))
            if replica.counters.equivocations > caught and replica.evidence:
                self._trace_evidence(node)
            if after != before:
                self._log(
                    {
                        "node": node.eid,
                        "ev": "state",
                        "height": after[0],
                        "view": after[1],
                        "active": after[2],
                    }
                )
        if after[1] != before[1]:
            node.view_change_times.append(self.now)
        for action in actions:
            self._perform(node, action)
            if node.replica is not replica:
                return  # crashed while performing (not modelled today; defensive)
        if after[0] != before[0]:
            node.progress_times.append(self.now)
        self._after_step(node)

    def _trace_event(self, node: SimNode, event: Event) -> None:
        rec: dict[str, Any] = {"node": node.eid}
        if isinstance(event, MessageReceived):
            return  # logged at delivery, with the decoded summary
        if isinstance(event, Tick):
            return
        if isinstance(event, ProposalReady):
            rec.update(ev="proposal_ready", size=len(event.payload))
        elif isinstance(event, BlockExecuted):
            rec.update(
                ev="executed",
                height=event.height,
                proposal=_short(event.proposal_digest),
                ok=event.ok,
            )
        elif isinstance(event, BlockPersisted):
            rec.update(ev="persisted", height=event.height, block=_short(event.block_hash))
        self._log(rec)

    def _trace_evidence(self, node: SimNode) -> None:
        assert node.replica is not None
        e = node.replica.evidence[-1]
        ids = self._ids(node)
        self._log(
            {
                "node": node.eid,
                "ev": "evidence",
                "against": ids(e.sender),
                "type": e.kind,
                "view": e.view,
                "height": e.height,
                "first": describe(e.first, ids),
                "second": describe(e.second, ids),
            }
        )

    def _after_step(self, node: SimNode) -> None:
        r = node.replica
        if (
            r is not None
            and not node.propose_scheduled
            and r.wants_proposal()
            and self._pool_nonempty(node)
        ):
            node.propose_scheduled = True
            self._push(self.now + 1 * _MS, _PROPOSE, node.eid, node.incarnation)

    def _run_indices(self, node: SimNode, sealer_indices: tuple[int, ...]) -> tuple[int, ...]:
        """Sealer indices as the node's replica numbers them, as run indices."""
        assert node.replica is not None
        keys = node.replica.sealers
        return tuple(self._run_index[keys[i]] for i in sealer_indices if 0 <= i < len(keys))

    def _perform(self, node: SimNode, action: Action) -> None:
        if isinstance(action, Send):
            to = self._run_indices(node, (action.to,))
            if to:
                self._outgoing(node, action, to[0])
        elif isinstance(action, Broadcast):
            self._outgoing(node, action)
        elif isinstance(action, ExecuteBlock):
            ok, block_hash, state_root = self._execute(node, action.proposal)
            ev = BlockExecuted(action.height, action.proposal.digest, block_hash, state_root, ok)
            if self._trace is not None:
                r = node.replica
                assert r is not None
                leader = self._ids(node)(r.leader_of(action.view, action.height))
                self._log(tracefmt.pre_prepared(node.eid, action, leader))
                self._log(
                    {
                        "node": node.eid,
                        "ev": "execute",
                        "height": action.height,
                        "view": action.view,
                        "proposal": _short(action.proposal.digest),
                        "txs": len(payload_txs(action.proposal.payload) or []),
                    }
                )
            self._push(self.now + self._exec_us, _EXEC, node.eid, node.incarnation, ev)
        elif isinstance(action, PersistState):
            if self._trace is not None:
                self._trace_prepared(node, action)
            node.persisted = action.state.encode()
            cert = action.state.prepared
            self._log(
                {
                    "node": node.eid,
                    "ev": "persist_state",
                    "view": action.state.view,
                    "prepared": None if cert is None else [cert.view, cert.height],
                }
            )
        elif isinstance(action, CommitBlock):
            if self._trace is not None and node.replica is not None:
                n = len(node.replica.sealers)
                self._log(tracefmt.committed(node.eid, action, n, self._ids(node)))
            self._commit(node, action)
        elif isinstance(action, RequestSync):
            peers = self._run_indices(node, action.peers)
            self._request_sync(node, replace(action, peers=peers))

    def _trace_prepared(self, node: SimNode, action: PersistState) -> None:
        """A PersistState saving a new certificate for the current height: prepared."""
        cert = action.state.prepared
        r = node.replica
        if cert is None or r is None or cert.height != r.height:
            return
        old = PersistedState.decode(node.persisted) if node.persisted is not None else None
        if old is None or old.prepared != cert:
            self._log(tracefmt.prepared(node.eid, cert, len(r.sealers), self._ids(node)))

    def _execute(self, node: SimNode, proposal: Proposal) -> tuple[bool, bytes, bytes]:
        if proposal.parent_hash != node.head_hash or proposal.height != node.height + 1:
            return False, bytes(32), bytes(32)
        new = self.next_sealers(node.sealers, proposal)
        changed = new if new != node.sealers else None
        return execute(proposal, node.head_state_root, node.committed_txs, self.total_txs, changed)

    def _persisted(self, node: SimNode, block: Block, before: tuple[int, ...]) -> BlockPersisted:
        """BlockPersisted for ``block``, with the new sealer list when it changed one."""
        changed = block.sealers != before
        if changed:
            self._log(
                {
                    "node": node.eid,
                    "ev": "membership",
                    "height": block.height + 1,
                    "sealers": list(block.sealers),
                }
            )
        sealers = self.sealer_keys(block.sealers) if changed else None
        return BlockPersisted(block.height, block.block_hash, sealers=sealers)

    def _commit(self, node: SimNode, action: CommitBlock) -> None:
        before = node.sealers
        block = Block(
            action.height,
            action.proposal,
            action.block_hash,
            action.state_root,
            action.seal,
            self.now,
            self.next_sealers(before, action.proposal),
        )
        if action.height != node.height + 1:
            raise AssertionError(
                f"node {node.eid} committed height {action.height} on top of {node.height}"
            )
        self._append(node, block)
        self._log(
            {
                "node": node.eid,
                "ev": "commit",
                "height": action.height,
                "view": action.seal.view,
                "block": _short(action.block_hash),
            }
        )
        ev = self._persisted(node, block, before)
        self._push(self.now + 200, _PERSISTED, node.eid, node.incarnation, ev)

    def _append(self, node: SimNode, block: Block) -> None:
        node.chain.append(block)
        txs = payload_txs(block.proposal.payload) or []
        node.committed_txs.update(txs)
        while node.next_tx in node.committed_txs:
            node.next_tx += 1
        if node.height >= self.scenario.blocks:
            self._check_done()

    # -- workload ----------------------------------------------------------------------

    def _arrive(self) -> None:
        s = self.scenario
        self.available_txs = min(self.total_txs, self.available_txs + s.txs_per_block)
        self._log({"ev": "txs_arrive", "available": self.available_txs})
        if self.available_txs < self.total_txs:
            self._push(self.now + int(s.tx_interval_ms * _MS), _ARRIVE)
        for node in self.nodes:
            self._after_step(node)

    def _pool_nonempty(self, node: SimNode) -> bool:
        return node.next_tx < self.available_txs

    def _pool_take(self, node: SimNode) -> list[int]:
        out: list[int] = []
        t = node.next_tx
        while t < self.available_txs and len(out) < self.scenario.txs_per_block:
            if t not in node.committed_txs:
                out.append(t)
            t += 1
        return out

    def _propose(self, node: SimNode, incarnation: int) -> None:
        if not node.up or node.incarnation != incarnation:
            return
        node.propose_scheduled = False
        r = node.replica
        if r is None or not r.wants_proposal():
            return
        txs = self._pool_take(node)
        if not txs:
            return
        if node.twin == 1:
            txs.reverse()  # the second twin proposes a different block
        payload = make_payload(node.index, txs, node.twin)
        digest = Proposal(r.height, r.head.block_hash, payload).digest
        self.proposed.setdefault(digest, (node.index, r.view, r.height, self.now))
        self._step(node, ProposalReady(payload))

    def _tick(self) -> None:
        for node in self.nodes:
            if node.up and node.replica is not None:
                self._step(node, Tick(txs_pending=self._pool_nonempty(node)))
        self._push(self.now + self._tick_us, _TICK)

    # -- network -----------------------------------------------------------------------

    def _connected(self, a: int, b: int, t: int) -> bool:
        for groups, start, heal in self._partitions:
            if start <= t and (heal is None or t < heal) and groups.get(a, -1) != groups.get(b, -1):
                return False
        return True

    def _twin_link(self, src: SimNode, dst: SimNode) -> bool:
        if src.behaviour == "twins" and self._twin_of[dst.eid] >= 0:
            return self._twin_of[dst.eid] == src.twin
        if dst.behaviour == "twins" and self._twin_of[src.eid] >= 0:
            return self._twin_of[src.eid] == dst.twin
        return True

    def _rule_drops(self, src: SimNode, dst: SimNode, kind: str) -> bool:
        t = self.now
        for r in self._drop_rules:
            if r.kinds and kind not in r.kinds:
                continue
            if r.src and src.index not in r.src:
                continue
            if r.dst and dst.index not in r.dst:
                continue
            if t < r.start_ms * _MS or (r.end_ms is not None and t >= r.end_ms * _MS):
                continue
            return True
        return False

    def _transmit(
        self, src: SimNode, dst_indices: Sequence[int], data: bytes, kind: str
    ) -> None:
        """Put ``data`` on the links from ``src`` to each of ``dst_indices``: each delivery
        at its link's latency (+ jitter, reordering), or lost (partition, drop rule, loss).

        The deliveries go into the open fan (see :meth:`_push_fan`), or into one of their
        own. The hot loop of a run at n = 100: what does not change per link is read once.
        """
        net = self.scenario.network
        rng = self.rng
        # what randrange(k) returns for k > 0, without its checks: the same draws
        randbelow = rng._randbelow  # type: ignore[attr-defined]
        now = self.now
        base = self._base[src.eid]
        jitter = self._jitter
        partitioned = bool(self._partitions)
        twins = self._any_twins
        src_index = src.index
        own_fan = self._fan is None
        fan = [] if own_fan else self._fan
        assert fan is not None
        seq = self._seq
        sent = 0
        for dst_index in dst_indices:
            for dst in self._endpoints[dst_index]:
                if dst is src or (twins and not self._twin_link(src, dst)):
                    continue
                sent += 1
                why = None
                if partitioned and not self._connected(src_index, dst.index, now):
                    why = "partition"
                elif self._drop_rules and self._rule_drops(src, dst, kind):
                    why = "rule"
                elif net.drop and rng.random() < net.drop:
                    why = "loss"
                if why is not None:
                    self.net_drops += 1
                    if self._trace is not None:
                        self._trace_lost(src, dst.eid, data, why)
                    continue
                delay = base[dst.eid]
                if jitter:
                    delay += randbelow(jitter + 1)
                if net.reorder and rng.random() < net.reorder:
                    delay += rng.randrange(int(net.latency_ms * _MS * 5) + 1)
                seq += 1
                fan.append((now + delay, seq, dst.eid, data, src_index))
                if net.duplicate and rng.random() < net.duplicate:
                    extra = rng.randrange(jitter + int(net.latency_ms * _MS) + 1)
                    seq += 1
                    fan.append((now + delay + extra, seq, dst.eid, data, src_index))
        self._seq = seq
        if sent:
            self.net_messages[kind] += sent
        if own_fan:
            self._push_fan(fan)

    def _trace_lost(self, src: SimNode | None, dst: int, data: bytes, why: str) -> None:
        msg = _decoded(data)
        ids = self._ids(src) if src is not None else self._ids(self.nodes[dst])
        summary = describe(msg, ids) if msg is not None else tracefmt.garbage(len(data))
        node = src.eid if src is not None else summary.get("sender", -1)
        self._log({"node": node, "ev": "lost", "to": dst, "why": why, **summary})

    def _deliver(self, eid: int, data: bytes, src_index: int) -> None:
        node = self.nodes[eid]
        if not node.up or node.replica is None:
            if self._trace is not None:
                self._trace_lost(self._endpoints[src_index][0], eid, data, "down")
            return
        if self._partitions and not self._connected(src_index, node.index, self.now):
            self.net_drops += 1
            if self._trace is not None:
                self._trace_lost(self._endpoints[src_index][0], eid, data, "partition")
            return
        msg = self._decode_once(data)
        if self._trace is not None:
            summary: dict[str, Any] = (
                describe(msg, self._ids(node))
                if msg is not None
                else tracefmt.garbage(len(data))
            )
            self._log({"node": eid, "ev": "recv", "from": src_index, **summary})
        self._step(node, MessageReceived(data if msg is None else msg, src_index))

    def _decode_once(self, data: bytes) -> Message | None:
        """``data`` decoded once for all the replicas it is delivered to (None: the
        replica gets the bytes and refuses them itself, as from a real network).

        Decoding is a pure function of the bytes and messages are immutable, so each
        replica gets exactly the message it would have decoded; its signature is still
        checked by every replica that uses it. A broadcast reaches n - 1 replicas, so at
        n = 100 this decodes each vote once instead of 99 times.
        """
        if type(data) is not bytes:
            return None
        cache = self._decoded_frames
        msg = cache.get(data)
        if msg is None:
            msg = _decoded(data)
            if msg is None:
                return None
            if len(cache) >= _DECODED_FRAMES:
                cache.clear()
            cache[data] = msg
        return msg

    def _outgoing(self, node: SimNode, action: Send | Broadcast, to: int = -1) -> None:
        """Send what the replica asked for, as transformed by the node's behaviour.

        A Broadcast reaches every node of the run, observers too (they follow the votes);
        a Send goes to run index ``to``."""
        msg = action.message
        targets = (
            [to]
            if isinstance(action, Send)
            else [i for i in range(self.n) if i != node.index or node.behaviour == "twins"]
        )
        tracing = self._trace is not None
        if tracing:
            self._log(
                {
                    "node": node.eid,
                    "ev": "send" if isinstance(action, Send) else "bcast",
                    "to": targets[0] if isinstance(action, Send) else targets,
                    **describe(msg, self._ids(node)),
                }
            )
        behaviour = node.behaviour
        if behaviour is None:  # what byzantine.outgoing yields for an honest node, at once
            self._transmit(node, targets, msg.encode(), msg.NAME)
            return
        sent: list[tuple[int, bytes]] = []
        forge_as = [i for i in range(self.n) if i != node.index] if self.n > 1 else []
        fan: list[Delivery] = []
        self._fan = fan  # one entry on the heap for all the targets (see _push_fan)
        try:
            for target, data, kind in byzantine.outgoing(
                behaviour,
                msg,
                targets,
                signer=self.keys.signers[node.index],
                rng=self.rng,
                forge_as=forge_as,
                alternative=self._alternative_for(node, msg.view)
                if behaviour == "equivocate"
                else None,
            ):
                if tracing:
                    sent.append((target, data))
                self._transmit(node, (target,), data, kind)
        finally:
            self._fan = None  # an exception must not leave later messages in this fan
        self._push_fan(fan)
        if tracing:
            mark = tracefmt.byzantine_mark(
                node.eid, behaviour, msg, sent, targets, self._ids(node)
            )
            if mark is not None:
                self._log(mark)

    # -- Byzantine behaviours (consensus/byzantine.py; here only what is the model's) ------

    def _alternative_for(self, node: SimNode, view: int) -> byzantine.Alternative:
        """An equivocating node's other proposal: its txs reversed (a single tx repeated,
        which makes the proposal invalid), payload variant 7."""

        def alternative(proposal: Proposal) -> Proposal:
            txs = payload_txs(proposal.payload) or []
            alt_txs = list(reversed(txs)) if len(txs) > 1 else [*txs, txs[0]] if txs else [0]
            alt = Proposal(
                proposal.height, proposal.parent_hash, make_payload(node.index, alt_txs, 7)
            )
            self.proposed.setdefault(alt.digest, (node.index, view, alt.height, self.now))
            return alt

        return alternative

    def _spam(self, node: SimNode) -> None:
        """Stale-view, far-future and garbage messages, validly signed where it matters."""
        me = node.replica.index if node.up and node.replica is not None else None
        if node.replica is not None and me is not None:
            r = node.replica
            junk = byzantine.spam_burst(
                r.height, r.view, me, self.keys.signers[node.index], self.rng
            )
            for data, kind in junk:
                self._transmit(node, [i for i in range(self.n) if i != node.index], data, kind)
        self._push(self.now + int(byzantine.spam_interval_ms(self.rng) * _MS), _SPAM, node.eid)

    # -- crash and restart -----------------------------------------------------------------

    def _crash(self, node: SimNode, scheduled: bool) -> None:
        if not node.up:
            return
        node.up = False
        node.replica = None
        node.incarnation += 1
        node.crashes += 1
        node.propose_scheduled = False
        node.sync_inflight = False
        self._log({"node": node.eid, "ev": "crash"})
        if not scheduled:  # crash-recover behaviour schedules its own restart
            self._push(self.now + int(self.rng.uniform(500, 5000) * _MS), _RESTART, node.eid)

    def _restart(self, node: SimNode, scheduled: bool) -> None:
        if node.up:
            return
        node.up = True
        node.replica = self._make_replica(node)
        self._log({"node": node.eid, "ev": "restart", "height": node.height})
        for action in node.replica.start():
            self._perform(node, action)
        if not scheduled and node.behaviour == "crash":
            self._push(self.now + int(self.rng.uniform(1000, 8000) * _MS), _CRASH, node.eid)
        self._after_step(node)

    # -- block sync --------------------------------------------------------------------

    def _status(self) -> None:
        """Peers exchange (height, head) now and then; a node behind starts block sync.

        This is the runtime's job, not the replica's: an idle chain sends no consensus
        messages, so a replica that missed the last block cannot learn of it otherwise.
        """
        for node in self.nodes:
            if not node.up or node.replica is None or node.sync_inflight:
                continue
            ahead = [
                e.index
                for e in self.nodes
                if e.up
                and e.height > node.height
                and e.index != node.index
                and self._connected(node.index, e.index, self.now)
            ]
            if ahead:
                target = max(e.height for e in self.nodes if e.index in ahead)
                self._request_sync(node, RequestSync(target, tuple(sorted(set(ahead)))))
        self._push(self.now + self._status_us, _STATUS)

    def _request_sync(self, node: SimNode, action: RequestSync) -> None:
        self._log(
            {
                "node": node.eid,
                "ev": "request_sync",
                "target": action.target_height,
                "peers": list(action.peers),
            }
        )
        if node.sync_inflight:
            return
        hinted = [e for i in action.peers for e in self._endpoints[i]]
        sources = [
            e
            for e in (hinted or self.nodes)
            if e is not node
            and e.up
            and e.height > node.height
            and self._connected(node.index, e.index, self.now)
        ]
        if not sources:
            return
        best = max(sources, key=lambda e: (e.height, -e.eid))
        node.sync_inflight = True
        delay = 2 * self._base[node.eid][best.eid] + 1 * _MS
        self._push(self.now + delay, _SYNC, node.eid, best.eid, node.incarnation)

    def _sync_done(self, node: SimNode, source_eid: int, incarnation: int) -> None:
        if not node.up or node.incarnation != incarnation:
            return
        node.sync_inflight = False
        source = self.nodes[source_eid]
        if not self._connected(node.index, source.index, self.now):
            return
        for block in list(source.chain[node.height :]):
            before = node.sealers
            ok_seal = verify_seal(
                self.sealer_keys(before),
                self.keys.verifier,
                block.height,
                block.block_hash,
                block.state_root,
                block.seal,
            )
            ok, bh, sr = self._execute(node, block.proposal)
            if not (
                ok_seal
                and ok
                and bh == block.block_hash
                and sr == block.state_root
                and block.seal.proposal_digest == block.proposal.digest
            ):
                self.sync_failures += 1
                return
            # the list after the block is this node's own derivation, not the source's word
            after = self.next_sealers(before, block.proposal)
            self._append(node, replace(block, time_us=self.now, synced=True, sealers=after))
            self._log(
                {
                    "node": node.eid,
                    "ev": "synced",
                    "height": block.height,
                    "block": _short(block.block_hash),
                    "from": source.eid,
                    "view": block.seal.view,
                    "votes": len(block.seal.signatures),
                }
            )
            if node.replica is None:
                return
            self._step(node, self._persisted(node, node.chain[-1], before))


def run_scenario(
    scenario: Scenario,
    *,
    trace: TraceSink | None = None,
    replica_factory: ReplicaFactory | None = None,
) -> Simulation:
    """Build and run a simulation (the checker then reads ``sim.nodes``)."""
    return Simulation(scenario, trace=trace, replica_factory=replica_factory).run()


__all__ = ["Block", "PreparedCertificate", "SimNode", "Simulation", "describe", "run_scenario"]
