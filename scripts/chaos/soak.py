"""Many chaos runs, one per seed: ``ledgerlab chaos --seeds N``.

Seeds go through ``consensus.sim.parallel.run_seeds`` (docs/reliability.md, Soak at
scale): one after the other in this process by default (a run is five processes busy on
their own; two at once on one small machine would measure each other), on a local pool
with ``--workers K``, or on a Dask cluster with ``--scheduler`` (each worker machine then
runs whole clusters of its own, on loopback, with free ports and temporary folders).
Every run is summed into one total; a failing seed keeps its folder and is printed with
the command that replays it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from consensus.sim.parallel import run_seeds
from scripts.chaos.runner import RunPlan, run


def trial(plan: RunPlan, seed: int) -> dict[str, Any]:
    """One seeded run, summed up small enough to travel back from a worker."""
    plan = dataclasses.replace(plan, seed=seed, work_dir=None)
    try:
        outcome = asyncio.run(run(plan, lambda _line: None))
    except Exception as exc:  # a run that cannot even start is a failed seed
        return {"seed": seed, "ok": False, "failed": [f"crashed: {exc!r}"],
                "trace": traceback.format_exc(limit=5)}  # fmt: skip
    r = outcome.report
    return {
        "seed": seed,
        "ok": outcome.verdict.ok,
        "failed": [f"{c.name}: {c.detail}" for c in outcome.verdict.checks if not c.ok],
        "replay": r["replay"],
        "dir": None if outcome.verdict.ok else str(outcome.run_dir),
        "applied": r["perturbations"]["applied"],
        "txs": r["txs"],
        "longest_stall": (r["stalls"]["longest"] or {}).get("seconds", 0.0),
        "views_advanced": r["view_changes"]["views_advanced"],
        "restarts": sum(r["restarts"].values()),
        "duration": r["duration"],
        "throughput": r["throughput"],
        "hostile": {k: v["answers"] for k, v in r.get("hostile", {}).items() if "answers" in v},
        "storage_faults": sum(len(v) for v in r.get("storage_faults", {}).values()),
        "notes": r["notes"],
    }


def soak(
    plan: RunPlan,
    seeds: Iterable[int],
    *,
    workers: int | None,
    scheduler: str | None,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Run every seed; the totals (and each seed's summary under ``runs``)."""
    totals: dict[str, Any] = {"runs": [], "perturbations": Counter(), "txs": Counter()}
    fn = functools.partial(trial, plan)
    if scheduler is None and workers is None:
        workers = 1
    for _seed, result in run_seeds(fn, seeds, workers=workers, scheduler=scheduler, log=say):
        totals["runs"].append(result)
        say(_line(result))
        if result["ok"] or "txs" in result:
            totals["perturbations"].update(result.get("applied", {}))
            totals["txs"].update(result.get("txs", {}))
    runs = totals["runs"]
    return {
        "seeds": [r["seed"] for r in runs],
        "passed": sum(r["ok"] for r in runs),
        "failed": [r["seed"] for r in runs if not r["ok"]],
        "perturbations": dict(totals["perturbations"]),
        "txs": dict(totals["txs"]),
        "longest_stall": max((r.get("longest_stall", 0.0) for r in runs), default=0.0),
        "seconds_of_chaos": sum(r.get("duration", 0.0) for r in runs),
        "views_advanced": sum(r.get("views_advanced", 0) for r in runs),
        "throughput": _throughput(runs),
        "hostile": _hostile(runs),
        "runs": runs,
    }


def _throughput(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Median over runs of each run's committed tx/s during faults and fault-free."""
    out: dict[str, float | None] = {}
    for key in ("during_faults_tps", "fault_free_tps"):
        values = sorted(
            v for r in runs if (v := (r.get("throughput") or {}).get(key)) is not None
        )
        out[key] = values[len(values) // 2] if values else None
    return out


def _hostile(runs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Hostile answers by kind and reason, summed over runs."""
    total: dict[str, Counter[str]] = {}
    for r in runs:
        for kind, answers in (r.get("hostile") or {}).items():
            total.setdefault(kind, Counter()).update(answers)
    return {kind: dict(c) for kind, c in total.items()}


def _line(result: dict[str, Any]) -> str:
    seed = result["seed"]
    if not result["ok"]:
        tail = f"\n  replay: {result['replay']}" if result.get("replay") else ""
        where = f"\n  data: {result['dir']}" if result.get("dir") else ""
        return f"seed {seed} FAILED: " + "; ".join(result["failed"]) + tail + where
    txs = result["txs"]
    applied = sum(result["applied"].values())
    return (
        f"seed {seed} ok: {applied} perturbations, {txs['acknowledged']:,} acknowledged, "
        f"{txs['lost']} lost, longest stall {result['longest_stall']:.1f} s"
    )
