"""What-to-look-at helpers: one node's steps at a height, node and invariant tables."""

from __future__ import annotations

from typing import Any

from scripts.learn import facts
from scripts.learn.exercise import SimRun


def node_steps(records: list[dict[str, Any]], node: int, height: int) -> list[str]:
    """What ``node`` did and received at ``height``, one line per step, from the trace:
    messages in and out, execution, and the phases (with the votes behind them)."""
    out = []
    for rec in records:
        if rec.get("node") != node or rec.get("height") != height:
            continue
        t, ev, kind = facts.ms(rec["t"]), rec["ev"], rec.get("type")
        if ev == "recv" and kind in ("PrePrepare", "Prepare", "Commit"):
            what = (
                f"proposal {rec['proposal']}" if kind == "PrePrepare" else f"block {rec['block']}"
            )
            out.append(
                f"  {t:>10}  receives {kind} (view {rec['view']}) from node {rec['from']}: {what}"
            )
        elif ev == "bcast" and kind in ("PrePrepare", "Prepare", "Commit"):
            out.append(f"  {t:>10}  broadcasts its {kind} (view {rec['view']})")
        elif ev == "executed":
            out.append(f"  {t:>10}  executed the proposal: {'valid' if rec['ok'] else 'INVALID'}")
        elif ev == "phase":
            kept_in = {"prepared": "certificate", "committed": "seal"}.get(rec["phase"])
            kept = f" ({kept_in}: {rec['votes']} signatures, {rec['voters']})" if kept_in else ""
            out.append(f"  {t:>10}  {rec['phase'].upper()} in view {rec['view']}{kept}")
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
