"""The run summary shared by ``ledgerlab sim`` (table and --json) and the soak run."""

from __future__ import annotations

from collections import Counter
from typing import Any

from consensus.codec import pack
from consensus.crypto import hash32
from consensus.sim.checker import InvariantResult
from consensus.sim.engine import Simulation


def chain_hash(sim: Simulation) -> str:
    """One hash over every endpoint's chain of block hashes (in endpoint order)."""
    return hash32(pack([[b.block_hash for b in node.chain] for node in sim.nodes])).hex()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def commit_latencies_ms(sim: Simulation) -> list[float]:
    """Per honest node and block it committed itself: commit time - first proposal time."""
    out: list[float] = []
    for node in sim.honest_nodes():
        for b in node.chain:
            origin = sim.proposed.get(b.proposal.digest)
            if origin is not None and not b.synced:
                out.append((b.time_us - origin[3]) / 1000)
    return out


def sealer_lists(sim: Simulation) -> list[dict[str, Any]]:
    """Each sealer list along the longest honest chain, with the height it starts at."""
    chain = max((n.chain for n in sim.honest_nodes()), key=len, default=[])
    current = sim.scenario.initial_sealers()
    out: list[dict[str, Any]] = [{"from_height": 1, "sealers": list(current)}]
    for b in chain:
        if b.sealers != current:
            current = b.sealers
            out.append({"from_height": b.height + 1, "sealers": list(current)})
    return out


def summarize(sim: Simulation, results: list[InvariantResult]) -> dict[str, Any]:
    s = sim.scenario
    honest = {n.eid for n in sim.honest_nodes()}
    per_node = []
    view_changes = 0
    received: Counter[str] = Counter()
    drops: Counter[str] = Counter()
    for node in sim.nodes:
        r = node.replica
        counters = r.counters.snapshot() if r is not None else None
        if node.eid in honest and r is not None:
            view_changes = max(view_changes, r.counters.view_changes)
            received.update(r.counters.messages_in)
            drops.update(r.counters.drops)
        per_node.append(
            {
                "endpoint": node.eid,
                "index": node.index,
                "honest": node.eid in honest,
                "behaviour": node.behaviour,
                "up": node.up,
                "committed_height": node.height,
                "head_hash": node.head_hash.hex(),
                "view": r.view if r is not None else None,
                "synced_blocks": sum(1 for b in node.chain if b.synced),
                "crashes": node.crashes,
                "counters": counters,
            }
        )
    committed = max((node.height for node in sim.honest_nodes()), default=0)
    lat = commit_latencies_ms(sim)
    per_block = {k: round(v / committed, 2) for k, v in sorted(sim.net_messages.items())}
    return {
        "nodes": s.nodes,
        "f": s.f,
        "seed": s.seed,
        "signatures": s.signatures,
        "faulty": s.faulty_nodes(),
        "byzantine": {str(k): v for k, v in sorted(s.byzantine.items())},
        "sealer_lists": sealer_lists(sim),
        "blocks_target": s.blocks,
        "blocks_committed": committed,
        "simulated_ms": round(sim.now / 1000, 3),
        "events": sim.events,
        "view_changes": view_changes,
        "messages": dict(sorted(sim.net_messages.items())),
        "messages_per_block": per_block if committed else {},
        "network_drops": sim.net_drops,
        "replica_drops": dict(sorted(drops.items())),
        "commit_latency_ms": {"p50": percentile(lat, 50), "p99": percentile(lat, 99)},
        "chain_hash": chain_hash(sim),
        "idle_at_end": all(node.next_tx >= sim.total_txs for node in sim.honest_nodes()),
        "per_node": per_node,
        "invariants": {
            r.name: {"ok": r.ok, "status": r.status, "detail": r.detail} for r in results
        },
        "ok": all(r.ok for r in results),
    }
