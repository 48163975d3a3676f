"""A live node's trace (docs/trace-format.md): the replica's steps as JSON lines.

:class:`NodeTracer` wraps ``Replica.step``: it notes (height, view, active) before the
step, steps the replica, and writes the records that the event and the actions stand for
(message received, phases with their votes, timers, view and height changes, evidence,
sends, executions, commits, sync requests, membership). Node ids are genesis member
numbers (``node3`` is 3); the node's own number comes from its name when it is not a
genesis member (``node4`` added later). A key that maps to neither is ``-1``.

A node without ``--trace`` has no tracer, and its event path does one ``is None`` test
per step: nothing else of this module runs (docs/performance.md, "Tracing").
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from consensus import (
    Action,
    BlockExecuted,
    BlockPersisted,
    Broadcast,
    CommitBlock,
    Event,
    ExecuteBlock,
    MessageReceived,
    PersistState,
    ProposalReady,
    RequestSync,
    Send,
    Tick,
    tracefmt,
)
from consensus.codec import DecodeError
from consensus.messages import Message, PreparedCertificate, decode_message
from node.ledger.chain import ProposalBody

if TYPE_CHECKING:
    from consensus import Replica
    from node.ledger.block import Block
    from node.runtime.node import Node

TRACE_ENV = "LEDGERLAB_TRACE"
"""``LEDGERLAB_TRACE=data/trace.jsonl python -m node ...``: the node appends its trace to
that file (relative to its folder). `ledgerlab up --trace` sets it for every node."""

FLUSH_EVERY_US = 200_000
"""Records reach the file at least every 0.2 s (a SIGKILL loses at most that much)."""


def node_number(name: str) -> int | None:
    """3 for ``node3``; None for a name without a trailing number."""
    m = re.fullmatch(r"\D*(\d+)", name)
    return int(m.group(1)) if m else None


def _now_us() -> int:
    return time.time_ns() // 1000


class NodeTracer:
    """Writes one node's trace records to ``stream`` (appending to a file by default)."""

    def __init__(self, node: Node, stream: IO[str]) -> None:
        self.node = node
        self.stream = stream
        self.records = 0
        self._cert: PreparedCertificate | None = None
        """The certificate last saved: a PersistState saving another one is 'prepared'."""
        self._flushed = _now_us()
        genesis = node.genesis
        members = list(genesis.sealers) + list(genesis.observers)
        self._ids = {k.hex(): i for i, k in enumerate(members)}
        own = node.key.public_key.hex()
        number = node_number(node.config.name)
        self.me = self._ids.get(own, number if number is not None else -1)
        self._ids.setdefault(own, self.me)
        byz = node.config.byzantine
        nodes = [
            {
                "id": i,
                "index": i,
                "name": f"node{i}",
                "role": "sealer" if i < len(genesis.sealers) else "observer",
                "behaviour": byz if i == self.me else None,
            }
            for i in range(len(members))
        ]
        if self.me not in range(len(members)):
            nodes.append(
                {
                    "id": self.me,
                    "index": self.me,
                    "name": node.config.name,
                    "role": node.role,
                    "behaviour": byz,
                }
            )
        self._write(
            tracefmt.header(
                source="live",
                clock="wall",
                t=_now_us(),
                nodes=nodes,
                sealers=[self.id_of_key(k.hex()) for k in node.membership.sealers],
                writer=self.me,
                key=own,
            )
        )

    @classmethod
    def open(cls, node: Node, path: Path) -> NodeTracer:
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(node, open(path, "a", encoding="utf-8"))

    async def flush_loop(self) -> None:
        """Flush what is buffered every 0.2 s, also when nothing new is written (an
        idle chain), so `ledgerlab trace` sees a running node's records."""
        while True:
            await asyncio.sleep(FLUSH_EVERY_US / 1e6)
            self.stream.flush()
            self._flushed = _now_us()

    def close(self) -> None:
        self.stream.flush()
        self.stream.close()

    # -- ids ----------------------------------------------------------------------------

    def id_of_key(self, key_hex: str) -> int:
        return self._ids.get(key_hex, -1)

    def _sealer_ids(self) -> tracefmt.NodeIds:
        sealers = self.node.sealer_ids
        ids = self._ids

        def of(i: int) -> int:
            return ids.get(sealers[i], -1) if 0 <= i < len(sealers) else -1

        return of

    # -- writing ------------------------------------------------------------------------

    def _write(self, record: dict[str, Any]) -> None:
        t = record.setdefault("t", _now_us())
        self.stream.write(json.dumps(record, separators=(",", ":")))
        self.stream.write("\n")
        self.records += 1
        if t - self._flushed >= FLUSH_EVERY_US:
            self.stream.flush()
            self._flushed = t

    def _rec(self, ev: str, **fields: Any) -> None:
        self._write({"node": self.me, "ev": ev, **fields})

    # -- the replica's step ---------------------------------------------------------------

    def step(self, replica: Replica, event: Event) -> list[Action]:
        """``replica.step(event)``, with the records it stands for written."""
        before = (replica.height, replica.view, replica.view_active)
        caught = replica.counters.equivocations
        ids = self._sealer_ids()
        self._event(event, ids)
        actions = replica.step(event)
        after = (replica.height, replica.view, replica.view_active)
        if isinstance(event, Tick) and actions:
            self._write(tracefmt.timer(self.me, actions, before[1], after[0], after[1]))
        if replica.counters.equivocations > caught and replica.evidence:
            e = replica.evidence[-1]
            self._rec(
                "evidence",
                against=ids(e.sender),
                type=e.kind,
                view=e.view,
                height=e.height,
                first=tracefmt.describe(e.first, ids),
                second=tracefmt.describe(e.second, ids),
            )
        if after != before:
            self._rec("state", height=after[0], view=after[1], active=after[2])
        for action in actions:
            self._action(replica, action, ids)
        return actions

    def _event(self, event: Event, ids: tracefmt.NodeIds) -> None:
        if isinstance(event, MessageReceived):
            msg = event.message
            if isinstance(msg, bytes):
                try:
                    decoded: Message | None = decode_message(msg)
                except Exception:
                    decoded = None
            else:
                decoded = msg
            summary = (
                tracefmt.describe(decoded, ids)
                if decoded is not None
                else tracefmt.garbage(len(msg) if isinstance(msg, bytes) else 0)
            )
            peer = ids(event.peer) if event.peer is not None else None
            self._rec("recv", **{"from": peer}, **summary)
        elif isinstance(event, ProposalReady):
            self._rec("proposal_ready", size=len(event.payload))
        elif isinstance(event, BlockExecuted):
            self._rec(
                "executed",
                height=event.height,
                proposal=tracefmt.short(event.proposal_digest),
                ok=event.ok,
            )
        elif isinstance(event, BlockPersisted):
            self._rec("persisted", height=event.height, block=tracefmt.short(event.block_hash))
            if event.sealers is not None:
                self._rec(
                    "membership",
                    height=event.height + 1,
                    sealers=[self.id_of_key(k.hex()) for k in event.sealers],
                )

    def _action(self, replica: Replica, action: Action, ids: tracefmt.NodeIds) -> None:
        n = len(replica.sealers)
        if isinstance(action, Broadcast):
            me = self.node.node_id
            peers = sorted(self.id_of_key(p) for p in self.node.members if p != me)
            self._rec("bcast", to=peers, **tracefmt.describe(action.message, ids))
        elif isinstance(action, Send):
            self._rec("send", to=ids(action.to), **tracefmt.describe(action.message, ids))
        elif isinstance(action, ExecuteBlock):
            leader = ids(replica.leader_of(action.view, action.height))
            self._write(tracefmt.pre_prepared(self.me, action, leader))
            try:
                txs = len(ProposalBody.decode(action.proposal.payload).tx_hashes)
            except DecodeError:
                txs = 0  # the node refuses it (an `executed` record with ok false follows)
            self._rec(
                "execute",
                height=action.height,
                view=action.view,
                proposal=tracefmt.short(action.proposal.digest),
                txs=txs,
            )
        elif isinstance(action, PersistState):
            cert = action.state.prepared
            if cert is not None and cert != self._cert and cert.height == replica.height:
                self._write(tracefmt.prepared(self.me, cert, n, ids))
            self._cert = cert
            self._rec(
                "persist_state",
                view=action.state.view,
                prepared=None if cert is None else [cert.view, cert.height],
            )
        elif isinstance(action, CommitBlock):
            self._write(tracefmt.committed(self.me, action, n, ids))
            self._rec(
                "commit",
                height=action.height,
                view=action.seal.view,
                block=tracefmt.short(action.block_hash),
            )
        elif isinstance(action, RequestSync):
            self._rec(
                "request_sync",
                target=action.target_height,
                peers=[ids(i) for i in action.peers],
            )

    # -- the runtime's own events ---------------------------------------------------------

    def byzantine(
        self, behaviour: str, honest: Message, sent: list[tuple[str, bytes]], peers: list[str]
    ) -> None:
        """A Byzantine test node sent ``sent`` (peer id, bytes) for its replica's ``honest``."""
        ids = self._sealer_ids()
        mark = tracefmt.byzantine_mark(
            self.me,
            behaviour,
            honest,
            [(self.id_of_key(p), data) for p, data in sent],
            [self.id_of_key(p) for p in peers],
            ids,
        )
        if mark is not None:
            self._write(mark)

    def started(self, replica: Replica) -> None:
        """The node started (again) from its stored chain and persisted state."""
        self._cert = replica.prepared_certificate
        self._rec("restart", height=replica.height - 1, view=replica.view)

    def synced(self, block: Block, source: str) -> None:
        """Block sync stored ``block`` (its seal verified), fetched from peer ``source``."""
        self._rec(
            "synced",
            height=block.number,
            block=tracefmt.short(block.hash),
            view=block.seal.view,
            votes=len(block.seal.signatures),
            **{"from": self.id_of_key(source)},
        )
