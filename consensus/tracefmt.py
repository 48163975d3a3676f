"""The trace format (docs/trace-format.md): record builders shared by every writer.

The simulator (consensus/sim/engine.py) and the node runtime (node/runtime/tracing.py)
both write one JSON object per line in this format, so `ledgerlab explain`, `viz` and
`learn` read a simulated and a live run alike. A record is flat JSON with ``t`` (µs),
``ev`` (its kind) and, for everything a node does, ``node`` (a node id from the header).
Node ids are ints: the simulator's endpoint ids, a live chain's genesis member numbers
(``node3`` is 3). Sealer indices inside messages are mapped to node ids by the writer,
because the indices change meaning when the sealer list does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from consensus.events import Action, Broadcast, CommitBlock, ExecuteBlock, RequestSync
from consensus.messages import (
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
    decode_message,
)
from consensus.quorum import max_faulty, quorum

FORMAT = "ledgerlab-trace"
VERSION = 1

RECORD_KINDS: tuple[str, ...] = (
    "header",
    "send",
    "bcast",
    "recv",
    "lost",
    "proposal_ready",
    "execute",
    "executed",
    "phase",
    "persist_state",
    "commit",
    "persisted",
    "state",
    "timer",
    "evidence",
    "byzantine",
    "request_sync",
    "synced",
    "membership",
    "crash",
    "restart",
    "stop",
    "txs_arrive",
)
"""Every kind a writer may emit (a reader skips kinds it does not know: additions to
version 1 only add kinds and fields)."""
LIVE_ONLY_KINDS = ("stop",)
"""Kinds only a live chain writes (the launcher's record of a clean stop)."""

NodeIds = Callable[[int], int]
"""Sealer index (as the sender's replica numbers it) -> node id."""

DIGEST_CHARS = 12
"""Digests and hashes are the first 12 hex characters (48 bits): enough to tell the
blocks of one trace apart, short enough to read."""


def short(b: bytes) -> str:
    return b.hex()[:DIGEST_CHARS]


def _same(i: int) -> int:
    return i


def describe(msg: Message, ids: NodeIds = _same) -> dict[str, Any]:
    """The fields of ``msg`` a reader needs (what it is about, who signed it)."""
    d: dict[str, Any] = {
        "type": msg.NAME,
        "view": msg.view,
        "height": msg.height,
        "sender": ids(msg.sender),
    }
    if isinstance(msg, PrePrepare):
        d["proposal"] = short(msg.proposal.digest)
    elif isinstance(msg, Prepare | Commit):
        d["proposal"] = short(msg.proposal_digest)
        d["block"] = short(msg.block_hash)
    elif isinstance(msg, ViewChange):
        cert = msg.prepared
        d["prepared"] = cert.view if cert is not None else None
        if cert is not None:
            d["prepared_proposal"] = short(cert.proposal.digest)
            d["prepared_block"] = short(cert.block_hash)
    elif isinstance(msg, NewView):
        d["proofs"] = len(msg.view_changes)
        d["proof_from"] = [ids(vc.sender) for vc in msg.view_changes]
        d["proof_prepared"] = [
            vc.prepared.view if vc.prepared is not None else None for vc in msg.view_changes
        ]
        d["proposal"] = short(msg.proposal.digest) if msg.proposal is not None else None
        d["reproposed"] = reproposed_view(msg)
    return d


def garbage(size: int) -> dict[str, Any]:
    """The summary of bytes that do not decode as a consensus message."""
    return {"type": "garbage", "view": -1, "height": -1, "size": size}


def reproposed_view(nv: NewView) -> int | None:
    """The view of the prepared certificate whose proposal ``nv`` carries, or None when
    it carries none (the new leader then proposes afresh)."""
    if nv.proposal is None:
        return None
    views = [
        vc.prepared.view
        for vc in nv.view_changes
        if vc.prepared is not None and vc.prepared.proposal.digest == nv.proposal.digest
    ]
    return max(views, default=None)


def header(
    *,
    source: str,
    nodes: Sequence[dict[str, Any]],
    sealers: Sequence[int],
    clock: str,
    t: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """The first record of a trace: what the rest is about."""
    return {
        "ev": "header",
        "t": t,
        "format": FORMAT,
        "version": VERSION,
        "source": source,
        "time_unit": "us",
        "clock": clock,
        "nodes": list(nodes),
        "sealers": list(sealers),
        "f": max_faulty(len(sealers)),
        **extra,
    }


def pre_prepared(node: int, action: ExecuteBlock, leader: int) -> dict[str, Any]:
    """The node accepted the proposal of (view, height) and executes it."""
    return {
        "node": node,
        "ev": "phase",
        "phase": "pre-prepared",
        "height": action.height,
        "view": action.view,
        "proposal": short(action.proposal.digest),
        "leader": leader,
    }


def _voted(
    node: int,
    phase: str,
    key: tuple[int, int, bytes, bytes],
    signatures: Sequence[tuple[int, bytes]],
    n: int,
    ids: NodeIds,
) -> dict[str, Any]:
    height, view, proposal, block = key
    return {
        "node": node,
        "ev": "phase",
        "phase": phase,
        "height": height,
        "view": view,
        "proposal": short(proposal),
        "block": short(block),
        "votes": len(signatures),
        "voters": [ids(i) for i, _ in signatures],
        "quorum": quorum(n),
        "n": n,
    }


def prepared(node: int, cert: PreparedCertificate, n: int, ids: NodeIds) -> dict[str, Any]:
    """The node holds a quorum of matching Prepares (the certificate it just saved)."""
    key = (cert.height, cert.view, cert.proposal.digest, cert.block_hash)
    return _voted(node, "prepared", key, cert.signatures, n, ids)


def committed(node: int, action: CommitBlock, n: int, ids: NodeIds) -> dict[str, Any]:
    """The node holds a quorum of matching Commits: the block is decided."""
    seal = action.seal
    key = (action.height, seal.view, seal.proposal_digest, action.block_hash)
    return _voted(node, "committed", key, seal.signatures, n, ids)


def timer(
    node: int, actions: Sequence[Action], view_before: int, height: int, view: int
) -> dict[str, Any]:
    """A Tick made the replica act (``actions``): one of its timers fired. ``view-change``
    (moved to ``view``), ``resend`` (said its ViewChange again) or ``sync`` (asked peers
    for blocks)."""
    if any(isinstance(a, Broadcast) and isinstance(a.message, ViewChange) for a in actions):
        fired = "view-change" if view > view_before else "resend"
    elif any(isinstance(a, RequestSync) for a in actions):
        fired = "sync"
    else:
        fired = "other"
    return {"node": node, "ev": "timer", "fired": fired, "height": height, "view": view}


def byzantine_mark(
    node: int,
    behaviour: str,
    honest: Message,
    sent: Sequence[tuple[int, bytes]],
    targets: Sequence[int],
    ids: NodeIds = _same,
) -> dict[str, Any] | None:
    """What a faulty node sent (``(target node id, bytes)`` pairs) instead of ``honest``:
    one entry per distinct version with its receivers, and the targets that got nothing.
    None when it sent exactly what an honest node sends."""
    honest_bytes = honest.encode()
    versions: dict[bytes, dict[str, Any]] = {}
    got: set[int] = set()
    lied = False
    for target, data in sent:
        got.add(target)
        entry = versions.get(data)
        if entry is None:
            try:
                entry = describe(decode_message(data), ids)
            except Exception:
                entry = garbage(len(data))
            entry["honest"] = data == honest_bytes
            entry["to"] = []
            versions[data] = entry
            lied = lied or not entry["honest"]
        if target not in entry["to"]:
            entry["to"].append(target)
    for entry in versions.values():
        entry["to"].sort()
    withheld = sorted(t for t in targets if t not in got)
    if not lied and not withheld:
        return None
    return {
        "node": node,
        "ev": "byzantine",
        "behaviour": behaviour,
        "type": honest.NAME,
        "view": honest.view,
        "height": honest.height,
        "honest_proposal": describe(honest, ids).get("proposal"),
        "versions": list(versions.values()),
        "withheld": withheld,
    }
