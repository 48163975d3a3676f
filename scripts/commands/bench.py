"""``ledgerlab bench``: start a fresh local cluster, drive DagTransfer load through JSON-RPC,
report committed TPS, latency and the consistency checks (see :mod:`scripts.benchmark`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scripts.benchmark import BenchFailed, Benchmark, BenchPlan, BenchState
from scripts.launcher.layout import DEFAULT_BROKER
from scripts.launcher.load import new_root
from scripts.launcher.options import add_parser, console, fresh_dir


def _plan(args: argparse.Namespace) -> BenchPlan:
    plan = BenchPlan(
        nodes=args.nodes,
        txs=args.txs,
        users=args.users,
        transport=args.transport,
        broker=args.broker,
        block_txs=args.block_txs,
        rate=args.rate,
        window=args.window,
        batch=args.batch,
        conns=args.conns,
        sample=args.sample,
        timeout=args.timeout,
        seed=args.seed,
        profile=Path(args.profile).expanduser() if args.profile else None,
    )
    plan.check()
    return plan


class _Display:
    """A progress bar pair (submitted, committed) kept current from the benchmark state."""

    def __init__(self, out: Console, total: int) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}"),
            TimeElapsedColumn(),
            console=out,
        )
        self.sub = self.progress.add_task("submitted", total=total, extra="", start=False)
        self.com = self.progress.add_task("committed", total=total, extra="", start=False)
        self.started: float | None = None
        self._last = 0.0

    def update(self, st: BenchState) -> None:
        now = time.monotonic()
        if now - self._last < 0.1 and st.committed < st.total:
            return
        self._last = now
        if st.submitted and self.started is None:
            self.started = now
            self.progress.start_task(self.sub)
            self.progress.start_task(self.com)
        rate = ""
        if self.started is not None and now > self.started:
            rate = f"{st.committed / (now - self.started):,.0f} tx/s, block {st.head}"
        self.progress.update(
            self.sub,
            completed=st.submitted,
            extra=f"{st.in_flight:,} in flight"
            + (f", {sum(st.rejected.values())} refused" if st.rejected else ""),
        )
        self.progress.update(self.com, completed=st.committed, extra=rate)


def _ms(value: float) -> str:
    return f"{value:,.0f} ms"


def render(out: Console, r: dict[str, Any]) -> None:
    plan, lat, seen = r["plan"], r["latency_ms"], r["commit_seen_ms"]
    m = r["machine"]
    t = Table(title="ledgerlab bench", title_justify="left", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    how = (
        f"open loop at {plan['rate']:,.0f} tx/s"
        if plan["rate"] > 0
        else f"closed loop, ≤ {plan['window'] or 4 * plan['block_txs']:,} in flight"
    )
    t.add_row(
        "cluster",
        f"{plan['nodes']} node processes over {plan['transport']}, "
        f"tx_count_limit {plan['block_txs']:,}, {plan['users']:,} users",
    )
    t.add_row(
        "load",
        f"{r['submitted']:,} userTransfer in JSON-RPC batches of {plan['batch']} over "
        f"{plan['conns']} keep-alive connection(s) per node, {how}",
    )
    t.add_row(
        "machine",
        f"{m['cpus']} CPUs ({m['cpu_model']}) shared by the {plan['nodes']} nodes, the load "
        f"generator{' and Mosquitto' if plan['transport'] == 'mqtt' else ''}; "
        f"load avg before {m['loadavg_before'][0]}",
    )
    ok_commit = r["committed"] == r["submitted"]
    t.add_row(
        "committed",
        f"{'[green]✓[/]' if ok_commit else '[red]✗[/]'} {r['committed']:,} of "
        f"{r['submitted']:,} submitted" + (f" (refused: {r['rejected']})" if r["rejected"] else ""),
    )
    chain = f" · block timestamps {r['chain_tps']:,.0f} tx/s" if r["chain_tps"] else ""
    t.add_row(
        "throughput",
        f"[bold]{r['tps']:,.0f} tx/s[/] committed (first submit → last commit, "
        f"{r['seconds']:.2f} s){chain}",
    )
    if r["offered_tps"]:
        t.add_row("submission", f"{r['offered_tps']:,.0f} tx/s accepted by RPC")
    t.add_row(
        "latency",
        f"submit → receipt: p50 {_ms(lat['p50'])} · p90 {_ms(lat['p90'])} · "
        f"p99 {_ms(lat['p99'])} ({lat['samples']} sampled receipts)",
    )
    t.add_row(
        "",
        f"submit → block seen at node0: p50 {_ms(seen['p50'])} · p90 {_ms(seen['p90'])} · "
        f"p99 {_ms(seen['p99'])} (all {seen['samples']:,})",
    )
    t.add_row(
        "blocks",
        f"{r['blocks']} blocks, {r['txs_per_block']:,.0f} txs/block · view changes "
        f"{r['view_changes']} (views advanced {r['views_advanced']})",
    )
    if r.get("p2p_events"):
        t.add_row(
            "P2P events",
            "; ".join(
                f"{node}: " + ", ".join(f"{k} {v}" for k, v in sorted(ev.items()))
                for node, ev in sorted(r["p2p_events"].items())
            )
            + " (during the load; a lost link can cost a view change)",
        )
    heads = "[green]✓[/]" if r["heads_identical"] else "[red]✗[/]"
    t.add_row(
        "heads",
        f"{heads} all nodes at block {r['common_height']}, hash {r['head_hash'][:18]}…"
        if r["heads_identical"]
        else f"{heads} heights {r['heights']}, hashes differ at {r['common_height']}",
    )
    supply = "[green]✓[/]" if r["supply_ok"] else "[red]✗[/]"
    t.add_row(
        "total supply",
        f"{supply} {r['expected_supply']:,} on every node"
        if r["supply_ok"]
        else f"{supply} expected {r['expected_supply']:,}, got {r['supply']}",
    )
    cpu = r["cpu_seconds"]
    wall = r["cpu_wall_seconds"]
    t.add_row(
        "CPU",
        ", ".join(f"{k} {v:.1f} s" for k, v in cpu.items())
        + f" over {wall:.1f} s wall = {sum(cpu.values()) / wall:.2f} cores busy",
    )
    if r["node_cpu_us_per_tx"]:
        t.add_row("CPU per tx", f"{r['node_cpu_us_per_tx']:.0f} µs per committed tx per node")
    out.print(t)


def cmd_bench(args: argparse.Namespace) -> int:
    plan = _plan(args)
    root, parent = new_root(fresh_dir(args.dir, "the benchmark"), "ledgerlab-bench-")
    out = console
    display = _Display(out, plan.txs)
    bench = Benchmark(plan, root, on_change=display.update, say=out.print)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term)
    result: dict[str, Any] | None = None
    try:
        result = asyncio.run(_run(bench, display, out))
    finally:
        signal.signal(signal.SIGTERM, old_term)
        if result is None and not out.is_terminal:
            out.line()  # after a progress line cut short
        ok = result is not None and result["ok"]
        if bench.pids and not (args.keep and ok):
            with out.status("stopping the node processes…"):
                bench.stop_nodes()
        if not args.keep and ok and parent is not None:
            shutil.rmtree(parent, ignore_errors=True)
        elif not (args.keep and ok) and bench.chain is not None:
            out.print(f"node logs kept in {root}")
    assert result is not None
    render(out, result)
    if args.json:
        Path(args.json).expanduser().write_text(json.dumps(result, indent=2, sort_keys=True))
        out.print(f"results written to {args.json}")
    if args.keep:
        out.print(
            f"the chain keeps running in {root}: [bold]ledgerlab status --dir {root}[/], "
            f"[bold]ledgerlab down --dir {root}[/] when done"
        )
    if not result["ok"]:
        raise BenchFailed("a check failed (see the table above)")
    return 0


async def _run(bench: Benchmark, display: _Display, out: Console) -> dict[str, Any]:
    try:
        await bench.start_chain()
        await bench.create_users()
        batches = bench.presign()
        with Live(display.progress, console=out, auto_refresh=True, refresh_per_second=8):
            timing = await bench.load(batches)
            display.update(bench.state)
        if not out.is_terminal:
            out.line()
        checks = await bench.check()
        return bench.summarise(timing, checks)
    finally:
        with contextlib.suppress(Exception):
            await bench.aclose()


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_parser(
        sub,
        "bench",
        "benchmark a fresh local cluster: committed TPS, latency, consistency checks",
        """
        ledgerlab bench                                  # 4 nodes, TCP, 20,000 transfers
        ledgerlab bench --transport mqtt --broker mqtt://127.0.0.1:1883
        ledgerlab bench --txs 50000 --block-txs 2000 --json result.json
        ledgerlab bench --rate 2000                      # open loop: offer 2,000 tx/s
        ledgerlab bench --nodes 4 --txs 200 --users 20   # a quick smoke test
        """,
        description="Start a fresh chain of N node processes on loopback (TCP or MQTT), create "
        "DagTransfer users, pre-sign K userTransfer transactions (not timed), submit them as "
        "JSON-RPC batches over keep-alive connections to every node, and report committed TPS, "
        "submit-to-receipt latency percentiles, blocks and view changes. Checks that every "
        "transaction committed, that all nodes end with the same head, and that the total "
        "supply is unchanged. Every process it starts is stopped at the end (also on Ctrl-C).",
    )
    p.add_argument("--nodes", type=int, default=4, help="sealer nodes (default 4)")
    p.add_argument("--txs", type=int, default=20_000, help="transfers to submit (default 20000)")
    p.add_argument("--users", type=int, default=1_000, help="DagTransfer users (default 1000)")
    p.add_argument("--transport", choices=("tcp", "mqtt"), default="tcp", help="default tcp")
    p.add_argument(
        "--broker", default=DEFAULT_BROKER, help=f"MQTT broker (default {DEFAULT_BROKER})"
    )
    p.add_argument(
        "--block-txs", type=int, default=1_000, help="tx_count_limit in genesis (default 1000)"
    )
    p.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="offered tx/s, open loop; 0 (default) = closed loop bounded by --window",
    )
    p.add_argument(
        "--window",
        type=int,
        default=0,
        help="closed loop: max transactions in flight (default 4 x --block-txs)",
    )
    p.add_argument("--batch", type=int, default=200, help="transactions per JSON-RPC batch")
    p.add_argument("--conns", type=int, default=2, help="keep-alive connections per node")
    p.add_argument("--sample", type=int, default=400, help="receipts sampled for latency")
    p.add_argument(
        "--timeout", type=float, default=60.0, help="fail when nothing commits for this long"
    )
    p.add_argument("--seed", type=int, default=1, help="seed for the generated transfers")
    p.add_argument("--json", default=None, metavar="FILE", help="write all results as JSON")
    p.add_argument("--keep", action="store_true", help="leave the chain running afterwards")
    p.add_argument("--dir", default=None, help="use this (new, empty) folder for the chain")
    p.add_argument(
        "--profile",
        default=None,
        metavar="DIR",
        help="record each node with py-spy during the load (raw stacks in DIR/nodeI.txt)",
    )
    p.set_defaults(func=cmd_bench)
