"""``ledgerlab bench sweep``: the same benchmark over cluster sizes, transports and block
sizes, each on a fresh chain, repeated and reduced to medians.

Repetitions are interleaved (every configuration once, then every one again) so that a
burst of other work on a shared machine lands on different configurations instead of
on all runs of one. The ratio to the ceiling measured in each run is the figure to
compare; tx/s are reported beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scripts.benchmark import Benchmark, BenchPlan
from scripts.errors import CommandError

DEFAULT_NODES = (4, 7, 10, 13, 16)


@dataclass(frozen=True, slots=True)
class SweepPlan:
    base: BenchPlan
    nodes: tuple[int, ...] = DEFAULT_NODES
    transports: tuple[str, ...] = ("tcp",)
    block_sizes: tuple[int, ...] = (1_000,)
    repeat: int = 3

    def configs(self) -> list[BenchPlan]:
        return [
            replace(self.base, nodes=n, transport=t, block_txs=b)
            for t in self.transports
            for b in self.block_sizes
            for n in self.nodes
        ]

    def check(self) -> None:
        if not 1 <= self.repeat <= 20:
            raise CommandError(f"--repeat must be 1..20, got {self.repeat}")
        if self.base.attach is not None:
            raise CommandError("a sweep starts its own chains: leave out --dir")
        for plan in self.configs():
            plan.check()


def parse_list(text: str, what: str, cast: Callable[[str], Any] = int) -> tuple[Any, ...]:
    """``"4,7,10"`` -> ``(4, 7, 10)``; a one-line error for anything else."""
    try:
        values = tuple(cast(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values:
        raise CommandError(f"{what} must be a comma-separated list, got {text!r}")
    return values


async def one_run(plan: BenchPlan, say: Callable[[str], None]) -> dict[str, Any]:
    """One benchmark on a fresh chain in a temporary folder, removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="ledgerlab-sweep-"))
    bench = Benchmark(plan, parent / "chain", say=lambda _: None)
    try:
        return await bench.run()
    finally:
        with contextlib.suppress(Exception):
            await bench.aclose()
        await asyncio.to_thread(bench.stop_nodes)
        shutil.rmtree(parent, ignore_errors=True)


def _key(plan: BenchPlan) -> tuple[str, int, int]:
    return (plan.transport, plan.block_txs, plan.nodes)


async def sweep(plan: SweepPlan, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every configuration ``repeat`` times (interleaved); one row of medians each."""
    results: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    failed: dict[tuple[str, int, int], list[str]] = {}
    configs = plan.configs()
    total = len(configs) * plan.repeat
    done = 0
    for rep in range(plan.repeat):
        for config in configs:
            done += 1
            label = f"n={config.nodes} {config.transport} {config.block_txs}-tx blocks"
            say(f"[{done}/{total}] {label}, run {rep + 1} of {plan.repeat}")
            try:
                r = await one_run(replace(config, seed=config.seed + rep), say)
            except CommandError as exc:  # a check, a node that would not start, ...
                say(f"    FAILED: {exc}")
                failed.setdefault(_key(config), []).append(str(exc))
                continue
            say(
                f"    {r['committed_tps']:,.0f} tx/s, ratio {r['ratio']:.2f}, "
                f"p99 {r['latency_ms']['p99']:,.0f} ms, view changes {r['view_changes']}"
                + ("" if r["ok"] else "  [a check FAILED]")
            )
            results.setdefault(_key(config), []).append(r)
    rows = [summarise(key, runs, failed.get(key, [])) for key, runs in results.items()]
    for key, errors in failed.items():
        if key not in results:
            say(f"n={key[2]} {key[0]} {key[1]}-tx blocks: every run failed ({errors[0]})")
    return rows


def summarise(
    key: tuple[str, int, int], runs: Sequence[dict[str, Any]], failures: Sequence[str] = ()
) -> dict[str, Any]:
    """Medians of the runs of one configuration (failed runs listed, not counted)."""
    transport, block_txs, nodes = key

    def med(get: Callable[[dict[str, Any]], float]) -> float:
        return round(statistics.median(get(r) for r in runs), 3)

    rss = [s["rss_mb"] for r in runs for s in r["per_node"].values() if s["rss_mb"] is not None]
    return {
        "transport": transport,
        "block_txs": block_txs,
        "nodes": nodes,
        "cores": runs[0]["cores"],
        "committed_tps": med(lambda r: r["committed_tps"]),
        "ceiling_tps": med(lambda r: r["ceiling_tps"]),
        "ratio": med(lambda r: r["ratio"]),
        "cores_used": med(lambda r: r["cores_used"] or 0.0),
        "cpu_ratio": med(lambda r: r["cpu_ratio"] or 0.0),
        "p50_ms": med(lambda r: r["latency_ms"]["p50"]),
        "p99_ms": med(lambda r: r["latency_ms"]["p99"]),
        "view_changes": sum(r["view_changes"] for r in runs),
        "max_rss_mb": max(rss, default=None),
        "runs": len(runs),
        "ok": all(r["ok"] for r in runs) and not failures,
        "failures": list(failures),
        "each": [
            {
                "committed_tps": r["committed_tps"],
                "ceiling_tps": r["ceiling_tps"],
                "ratio": r["ratio"],
                "cores_used": r["cores_used"],
                "cpu_ratio": r["cpu_ratio"],
                "p99_ms": r["latency_ms"]["p99"],
                "view_changes": r["view_changes"],
                "loadavg_before": r["machine"]["loadavg_before"],
            }
            for r in runs
        ],
    }
