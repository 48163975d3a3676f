"""What-to-look-at helpers: excerpts of the step-by-step explain output and small tables."""

from __future__ import annotations

from typing import Any

from consensus.sim.trace import explain
from scripts.learn.exercise import SimRun


def explain_excerpt(
    records: list[dict[str, Any]],
    height: int,
    *,
    nodes: set[int] | None = None,
    words: tuple[str, ...] = (),
    limit: int = 40,
) -> list[str]:
    """The ``--explain HEIGHT`` lines about ``nodes`` (all when None) that contain one of
    ``words`` (all when empty), at most ``limit`` of them."""
    out = []
    for line in explain(records, height):
        if nodes is not None and not any(f" node {n} " in f" {line} " for n in nodes):
            continue
        if words and not any(w in line for w in words):
            continue
        out.append(line)
    if len(out) > limit:
        return [*out[:limit], f"   ... {len(out) - limit} more lines"]
    return out


def heights(run: SimRun) -> list[str]:
    """One line per node: its role, height, view and blocks it got by sync."""
    out = []
    for n in run.summary["per_node"]:
        role = n["behaviour"] or ("honest" if n["honest"] else "faulty")
        state = "up" if n["up"] else "down"
        out.append(
            f"  node {n['endpoint']}: {role:<10} {state:<4} height {n['committed_height']:>3}"
            f"  view {n['view'] if n['view'] is not None else '-'}"
            f"  synced blocks {n['synced_blocks']}"
        )
    return out


def invariants(run: SimRun) -> list[str]:
    return [
        f"  {name:<10} {r['status']:<8} {r['detail']}"
        for name, r in run.summary["invariants"].items()
    ]
