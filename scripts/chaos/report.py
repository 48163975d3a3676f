"""The chaos report: figures as JSON (``--json``) and a rich summary for the terminal."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from scripts.chaos.checker import Verdict
from scripts.chaos.stalls import Stall, longest
from scripts.chaos.workload import TxRecord


def throughput(
    samples: Sequence[tuple[float, int]],
    windows: Sequence[tuple[float, float, str]],
    start: float,
    end: float,
) -> dict[str, float | None]:
    """Committed tx/s during faults and outside them, between ``start`` and ``end``."""
    spent = {"faults": 0.0, "fault_free": 0.0}
    done = {"faults": 0, "fault_free": 0}
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        if t1 <= start or t0 >= end or t1 <= t0:
            continue
        mid = (t0 + t1) / 2
        key = "faults" if any(a <= mid <= b for a, b, _ in windows) else "fault_free"
        spent[key] += t1 - t0
        done[key] += max(0, c1 - c0)
    return {
        "during_faults_tps": round(done["faults"] / spent["faults"], 1)
        if spent["faults"]
        else None,
        "fault_free_tps": round(done["fault_free"] / spent["fault_free"], 1)
        if spent["fault_free"]
        else None,
        "seconds_during_faults": round(spent["faults"], 1),
        "seconds_fault_free": round(spent["fault_free"], 1),
    }


def latency(records: Sequence[TxRecord]) -> dict[str, Any]:
    """Seconds from acknowledgement to the first receipt the client saw: percentiles, and
    the slowest transaction with the node that acknowledged it (a transaction that waits
    long although its node is up reached no leader: see docs/reliability.md)."""
    done = sorted(
        ((r.receipt_at - r.acked_at, r) for r in records if r.acked_at and r.receipt_at),
        key=lambda x: x[0],
    )
    if not done:
        return {"p50": None, "p99": None, "max": None, "slowest": None}

    def at(q: float) -> float:
        return round(done[min(len(done) - 1, int(q * len(done)))][0], 2)

    worst, rec = done[-1]
    slowest = {
        "hash": rec.hash,
        "acked_by": f"node{rec.acked_by}",
        "seconds": round(worst, 2),
        "resends": rec.resends,
    }
    return {"p50": at(0.5), "p99": at(0.99), "max": round(worst, 2), "slowest": slowest}


def stall_summary(stalls: Sequence[Stall], offset: float) -> dict[str, Any]:
    """Stalls with times in seconds since the schedule's 0 s (``offset`` in run time)."""
    worst = longest(stalls)

    def shown(s: Stall) -> dict[str, object]:
        return {**s.as_json(), "start": round(s.start - offset, 2), "end": round(s.end - offset, 2)}

    return {
        "longest": shown(worst) if worst else None,
        "beyond_bound": sum(not s.ok for s in stalls),
        "count": len(stalls),
        "all": [shown(s) for s in stalls],
    }


def render(out: Console, report: dict[str, Any], verdict: Verdict) -> None:
    t = Table(title="ledgerlab chaos", title_justify="left", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    c = report["cluster"]
    t.add_row(
        "cluster",
        f"{c['nodes']} nodes over {c['transport']}"
        + (f", Byzantine {c['byzantine']}" if c["byzantine"] else "")
        + f" ({c['dir']})",
    )
    t.add_row(
        "schedule",
        f"{report['schedule']['source']}, {report['duration']:g} s; replay: {report['replay']}",
    )
    applied = report["perturbations"]["applied"]
    t.add_row("perturbations", ", ".join(f"{k} {v}" for k, v in sorted(applied.items())) or "-")
    if report["perturbations"]["skipped"]:
        skipped = report["perturbations"]["skipped"]
        t.add_row("skipped", ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
    x = report["txs"]
    t.add_row(
        "transactions",
        f"{x['submitted']:,} submitted · {x['acknowledged']:,} acknowledged"
        f" · {x['committed']:,} committed · [bold]{x['lost']} lost[/] · {x['resends']:,} "
        f"resends · {x['failed_receipts']:,} failed receipts",
    )
    hostile = report.get("hostile")
    if hostile:
        t.add_row(
            "hostile",
            "\n".join(
                f"{kind} {hostile[kind]['sent']:,}: "
                + ", ".join(f"{a} {n:,}" for a, n in sorted(hostile[kind]["answers"].items()))
                for kind in ("nonce_race", "poison", "replay", "flood")
                if kind in hostile
            ),
        )
    lat = report["latency"]
    if lat["max"] is not None:
        t.add_row(
            "ack -> receipt",
            f"p50 {lat['p50']:.1f} s · p99 {lat['p99']:.1f} s · max "
            f"{lat['max']:.1f} s ({lat['slowest']['acked_by']}, "
            f"{lat['slowest']['resends']} resends)",
        )
    tp = report["throughput"]
    t.add_row(
        "throughput",
        f"fault-free {_tps(tp['fault_free_tps'])} · during faults {_tps(tp['during_faults_tps'])}",
    )
    worst = report["stalls"]["longest"]
    t.add_row(
        "longest stall",
        "none"
        if worst is None
        else f"{worst['seconds']:.1f} s at t={worst['start']:.1f} (bound {worst['bound']:.1f} s)",
    )
    t.add_row(
        "views",
        f"advanced {report['view_changes']['views_advanced']} · per node "
        + ", ".join(f"{k} {v}" for k, v in sorted(report["view_changes"]["per_node"].items())),
    )
    restarts = {k: v for k, v in report["restarts"].items() if v}
    t.add_row("restarts", ", ".join(f"{k} {v}" for k, v in sorted(restarts.items())) or "-")
    for check in verdict.checks:
        mark = "[green]✓[/]" if check.ok else "[red]✗[/]"
        t.add_row(check.name, f"{mark} {check.detail}")
    for note in report["notes"]:
        t.add_row("note", note)
    out.print(t)
    out.print("[green]chaos run passed[/]" if verdict.ok else "[red]chaos run FAILED[/]")


def _tps(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} tx/s"
