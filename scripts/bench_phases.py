"""Where a block's time goes, from the nodes' traces (``ledgerlab bench --phases``).

Each node of the benchmark's chain writes its trace (docs/trace-format.md); after a round
this reads the records inside the round's wall-clock window and times, in milliseconds:

- a *hop* per consensus message type: from the sender's ``bcast`` record to each
  receiver's ``recv`` record, i.e. the network plus the time the message waited at the
  receiver before the replica handled it (busy event loop, CPU shared with other nodes);
- ``execute``: a node's ``execute`` to its ``executed`` record for one proposal;
- ``commit``: a node's ``commit`` to its ``persisted`` record (the synced block write and
  the pool's bookkeeping);
- ``height``: from the leader's PrePrepare to the quorum-th node that persisted the block,
  the chain's time per block.

The trace's clock is each node's wall clock; on one machine they agree, across hosts a hop
includes the clocks' offset (so ``--dir`` chains on several hosts are read with care).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from consensus.quorum import quorum
from scripts.bench_figures import ms_percentiles

HOPS = ("PrePrepare", "Prepare", "Commit")
PHASES = ("preprepare_hop", "prepare_hop", "commit_hop", "execute", "commit", "height")


def read_records(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The node records (those with a ``node`` field) of the trace files that exist."""
    out: list[dict[str, Any]] = []
    for path in paths:
        if not path.is_file():
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                if isinstance(record, dict) and "node" in record and "t" in record:
                    out.append(record)
    return out


def phases(records: Sequence[dict[str, Any]], start_us: int, end_us: int, n: int) -> dict[str, Any]:
    """Percentiles (ms) of each of :data:`PHASES` for the heights proposed in
    ``[start_us, end_us]`` of a chain of ``n`` sealers; a phase with no sample is absent."""
    window = sorted((r for r in records if start_us <= r["t"] <= end_us), key=lambda r: r["t"])
    sent: dict[tuple[Any, ...], int] = {}
    started: dict[tuple[Any, ...], int] = {}
    proposed: dict[int, int] = {}
    persisted: dict[int, list[int]] = {}
    seconds: dict[str, list[float]] = {name: [] for name in PHASES}
    for r in window:
        ev, t = r.get("ev"), r["t"]
        if ev == "bcast" and r.get("type") in HOPS:
            key = (r["type"], r.get("height"), r.get("view"), r.get("sender"))
            sent.setdefault(key, t)
            if r["type"] == "PrePrepare":
                proposed.setdefault(r["height"], t)
        elif ev == "recv" and r.get("type") in HOPS:
            t0 = sent.get((r["type"], r.get("height"), r.get("view"), r.get("sender")))
            if t0 is not None:
                seconds[f"{r['type'].lower()}_hop"].append((t - t0) / 1e6)
        elif ev in ("execute", "commit"):
            started[(ev, r["node"], r.get("height"))] = t
        elif ev in ("executed", "persisted"):
            phase = "execute" if ev == "executed" else "commit"
            t0 = started.pop((phase, r["node"], r.get("height")), None)
            if t0 is not None:
                seconds[phase].append((t - t0) / 1e6)
            if ev == "persisted":
                persisted.setdefault(r["height"], []).append(t)
    need = quorum(n)
    for height, t0 in proposed.items():
        times = sorted(persisted.get(height, ()))
        if len(times) >= need:
            seconds["height"].append((times[need - 1] - t0) / 1e6)
    return {name: ms_percentiles(v) for name, v in seconds.items() if v}


def summary(result: dict[str, Any]) -> str:
    """One line of p50s for the report table."""
    names = {
        "preprepare_hop": "PrePrepare hop",
        "prepare_hop": "Prepare hop",
        "commit_hop": "Commit hop",
        "execute": "execute",
        "commit": "commit",
        "height": "per height",
    }
    parts = [f"{label} {result[k]['p50']:,.0f}" for k, label in names.items() if k in result]
    if not parts:
        return "no trace records in the measured window"
    return " · ".join(parts) + " ms (p50; p90 in the JSON)"
