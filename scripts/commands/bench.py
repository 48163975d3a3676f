"""``ledgerlab bench``: start a fresh local cluster (or attach to a running chain), drive
DagTransfer load through JSON-RPC, report committed TPS against the same-run ceiling,
latency and the consistency checks (see :mod:`scripts.benchmark`); ``bench sweep`` over
cluster sizes (:mod:`scripts.bench_sweep`); plots and HTML (:mod:`scripts.bench_report`)."""

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

from scripts import bench_phases
from scripts.bench_load import FORMATS
from scripts.bench_report import (
    PLOT_HINT,
    SWEEP_COLUMNS,
    have_matplotlib,
    plain,
    run_figure,
    run_html,
    save_figure,
    sweep_figure,
    sweep_html,
    write_text,
)
from scripts.bench_sweep import SweepPlan, parse_list, sweep
from scripts.benchmark import BenchFailed, Benchmark, BenchPlan, BenchState, machine_info
from scripts.errors import CommandError
from scripts.launcher.layout import CHAIN_FILE, DEFAULT_BROKER, is_chain
from scripts.launcher.load import new_root
from scripts.launcher.options import add_parser, console, fresh_dir

_CHAIN_OPTIONS = ("nodes", "transport", "block_txs", "pool_txs")


def _plan(args: argparse.Namespace, attach: Path | None) -> BenchPlan:
    if attach is not None:
        given = [f"--{o.replace('_', '-')}" for o in _CHAIN_OPTIONS if getattr(args, o) is not None]
        if given:
            raise CommandError(
                f"{', '.join(given)} describe a chain to start; --dir {attach} attaches to a "
                "running one (its chain.toml and genesis decide them)"
            )
    plan = BenchPlan(
        nodes=4 if args.nodes is None else args.nodes,
        txs=args.txs,
        users=args.users,
        transport=args.transport or "tcp",
        broker=args.broker,
        block_txs=1_000 if args.block_txs is None else args.block_txs,
        rate=args.rate,
        window=args.window,
        batch=args.batch,
        conns=args.conns,
        sample=args.sample,
        timeout=args.timeout,
        seed=args.seed,
        profile=Path(args.profile).expanduser() if args.profile else None,
        duration=args.duration,
        warmup=args.warmup,
        saturate=args.max,
        step_seconds=args.step,
        max_p99_ms=args.max_p99,
        phases=args.phases,
        attach=attach,
        cores=args.cores,
        fmt=args.format,
        pool_txs=0 if args.pool_txs is None else args.pool_txs,
    )
    plan.check()
    return plan


def _where(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """(chain to attach to, fresh folder for the chain to start) from --dir / --workdir.

    ``--dir`` naming a chain directory attaches to it; naming a new or empty folder it
    keeps its old meaning (start the chain there), like ``--workdir``.
    """
    if args.dir and args.workdir:
        raise CommandError("--dir attaches to a chain, --workdir starts one: give one of them")
    if args.dir:
        directory = Path(args.dir).expanduser()
        if is_chain(directory):
            return directory, None
        if directory.exists() and any(directory.iterdir()):
            raise CommandError(
                f"{directory} is not empty and holds no {CHAIN_FILE}: --dir attaches to a "
                "chain directory, or starts a fresh chain in a new, empty folder",
                hint="leave out --dir to use a temporary folder",
            )
        return None, directory
    return None, fresh_dir(args.workdir, "the benchmark")


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


def _refused(r: dict[str, Any]) -> str:
    return ", ".join(f"{reason} {n:,}" for reason, n in sorted(r["rejected"].items()))


DRIFT_WARNING = 1.15
"""A ceiling after the load this much slower or faster than before it is called out."""


def _ceiling_after_text(r: dict[str, Any]) -> str:
    after, drift = r.get("ceiling_after"), r.get("ceiling_drift")
    if after is None or drift is None:
        return ""
    text = f"; {after['cost_us']:.1f} µs right after it (ratio {r['ratio_after']:.2f} against that)"
    if not 1 / DRIFT_WARNING <= drift <= DRIFT_WARNING:
        text += (
            f"\n[yellow]the machine's speed moved during the run (minimal work x{drift:.2f}): "
            "the ratio is only as good as that; compare runs interleaved[/]"
        )
    return text


def render(out: Console, r: dict[str, Any]) -> None:
    plan, lat, rec = r["plan"], r["latency_ms"], r["receipt_latency_ms"]
    m, c = r["machine"], r["ceiling"]
    t = Table(title="ledgerlab bench", title_justify="left", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    if plan["saturate"]:
        how = f"open-loop steps of {plan['step_seconds']:g} s (--max)"
    elif plan["rate"] > 0:
        how = f"open loop at {plan['rate']:,.0f} tx/s"
    else:
        how = f"closed loop, ≤ {plan['window'] or 4 * r['block_txs']:,} in flight"
    if plan["duration"]:
        how += f", {plan['duration']:g} s"
    if plan["warmup"]:
        how += f", first {plan['warmup']:g} s not measured"
    where = "attached chain" if r["attached"] else "node processes"
    t.add_row(
        "cluster",
        f"{r['nodes']} {where} over {r['transport']}, tx_count_limit {r['block_txs']:,}, "
        f"{plan['users']:,} users",
    )
    t.add_row(
        "load",
        f"{r['submitted']:,} {plan['fmt']} txs in JSON-RPC batches of {plan['batch']} over "
        f"{plan['conns']} keep-alive connection(s) per node, {how}",
    )
    t.add_row(
        "machine",
        f"{m['cpus']} CPUs ({m['cpu_model']}); the nodes had {r['cores']} core(s); "
        f"load avg before {m['loadavg_before'][0]}",
    )
    ok_commit = r["committed"] == r["accepted"]
    t.add_row(
        "committed",
        f"{'[green]✓[/]' if ok_commit else '[red]✗[/]'} {r['committed']:,} of "
        f"{r['accepted']:,} accepted ({r['submitted']:,} submitted)"
        + (f"; refused: {_refused(r)}" if r["rejected"] else ""),
    )
    chain = f" · block timestamps {r['chain_tps']:,.0f} tx/s" if r["chain_tps"] else ""
    t.add_row(
        "throughput",
        f"[bold]{r['committed_tps']:,.0f} tx/s[/] committed ({r['measured_txs']:,} txs in "
        f"{r['seconds']:.2f} s){chain}",
    )
    t.add_row(
        "ceiling",
        f"{r['ceiling_tps']:,.0f} tx/s = {c['busy_cores']} cores / ({c['nodes']} nodes x "
        f"{c['cost_us']:.1f} µs minimal work per tx), measured just before the load"
        + _ceiling_after_text(r),
    )
    busy = ""
    if r["cores_used"] is not None:
        busy = f"; the node processes got {r['cores_used']:.2f} of {r['cores']} cores"
        if r["cpu_ratio"]:
            busy += (
                f" (per CPU second they used: {r['cpu_ratio']:.2f} of the minimal work, "
                "what a busy machine does not change)"
            )
    t.add_row("ratio", f"[bold]{r['ratio']:.2f}[/] of the ceiling{busy}")
    if r["saturation"]:
        s = r["saturation"]
        if s["saturation_tps"]:
            n = s["at_90_percent"]
            t.add_row(
                "saturation",
                f"[bold]{s['saturation_tps']:,.0f} tx/s[/] ({len(s['steps'])} steps; stop: "
                f"{s['stop']}); at 90 % ({n['rate']:,} tx/s): p99 "
                f"{_ms(n['latency_ms']['p99'])}, {n['committed_tps']:,.0f} tx/s",
            )
        else:
            t.add_row("saturation", f"[red]not found[/]: the first step failed ({s['stop']})")
    t.add_row(
        "latency",
        f"submit → commit: p50 {_ms(lat['p50'])} · p90 {_ms(lat['p90'])} · "
        f"p99 {_ms(lat['p99'])} · max {_ms(lat['max'])} (all {lat['samples']:,})",
    )
    t.add_row(
        "",
        f"submit → receipt: p50 {_ms(rec['p50'])} · p99 {_ms(rec['p99'])} "
        f"({rec['samples']} sampled)",
    )
    if "phases_ms" in r:
        t.add_row("phases", bench_phases.summary(r["phases_ms"]))
    t.add_row(
        "blocks",
        f"{r['blocks']} blocks · view changes {r['view_changes']} "
        f"(views advanced {r['views_advanced']})",
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
    heads = "[green]✓[/]" if r["consistent"] else "[red]✗[/]"
    t.add_row(
        "heads",
        f"{heads} all nodes at block {r['common_height']}, hash {r['head_hash'][:18]}…"
        if r["consistent"]
        else f"{heads} heights {r['heights']}, hashes differ at {r['common_height']}",
    )
    supply = "[green]✓[/]" if r["supply_ok"] else "[red]✗[/]"
    t.add_row(
        "total supply",
        f"{supply} {r['expected_supply']:,} on every node"
        if r["supply_ok"]
        else f"{supply} expected {r['expected_supply']:,}, got {r['supply']}",
    )
    nodes = [
        f"{name} {s['cpu_s']:.1f} s, {s['rss_mb']:.0f} MB"
        for name, s in r["per_node"].items()
        if s["cpu_s"] is not None and s["rss_mb"] is not None
    ]
    if nodes:
        t.add_row("nodes", "CPU, peak RSS: " + " · ".join(nodes))
    if r["node_cpu_us_per_tx"]:
        t.add_row("CPU per tx", f"{r['node_cpu_us_per_tx']:.0f} µs per committed tx per node")
    out.print(t)


def _write_reports(out: Console, args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.json:
        write_text(Path(args.json).expanduser(), json.dumps(result, indent=2), "JSON")
        out.print(f"results written to {args.json}")
    if args.plot:
        save_figure(run_figure(result), Path(args.plot).expanduser())
        out.print(f"plot written to {args.plot}")
    if args.html:
        write_text(Path(args.html).expanduser(), run_html(result), "HTML report")
        out.print(f"report written to {args.html}")


def _check_report_options(args: argparse.Namespace) -> None:
    """Refuse --plot without matplotlib before anything runs (not after the load)."""
    if args.plot and not have_matplotlib():
        raise CommandError("--plot needs matplotlib, which is not installed", hint=PLOT_HINT)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.mode == "sweep":
        return cmd_sweep(args)
    attach, workdir = _where(args)
    plan = _plan(args, attach)
    _check_report_options(args)
    if attach is not None:
        root, parent = attach, None
    else:
        root, parent = new_root(workdir, "ledgerlab-bench-")
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
        elif not (args.keep and ok) and bench.chain is not None and attach is None:
            out.print(f"node logs kept in {root}")
    assert result is not None
    render(out, result)
    _write_reports(out, args, result)
    if args.keep and attach is None:
        out.print(
            f"the chain keeps running in {root}: [bold]ledgerlab status --dir {root}[/], "
            f"[bold]ledgerlab down --dir {root}[/] when done"
        )
    if not result["ok"]:
        raise BenchFailed("a check failed (see the table above)")
    return 0


async def _run(bench: Benchmark, display: _Display, out: Console) -> dict[str, Any]:
    try:
        await bench.prepare()
        with Live(display.progress, console=out, auto_refresh=True, refresh_per_second=8):
            saturation = await bench.measure()
            display.update(bench.state)
        if not out.is_terminal:
            out.line()
        checks = await bench.check()
        return bench.summarise(checks, saturation)
    finally:
        with contextlib.suppress(Exception):
            await bench.aclose()


# ---------------------------------------------------------------------- sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.dir:
        raise CommandError("a sweep starts its own chains: leave out --dir")
    if (args.nodes, args.transport, args.block_txs) != (None, None, None):
        raise CommandError(
            "a sweep takes --sweep-nodes, --sweep-transports and --sweep-block-txs "
            "instead of --nodes, --transport and --block-txs"
        )
    args.nodes, args.transport, args.block_txs = 4, "tcp", 1_000
    base = _plan(args, None)
    plan = SweepPlan(
        base=base,
        nodes=parse_list(args.sweep_nodes, "--sweep-nodes"),
        transports=parse_list(args.sweep_transports, "--sweep-transports", str),
        block_sizes=parse_list(args.sweep_block_txs, "--sweep-block-txs"),
        repeat=args.repeat,
    )
    plan.check()
    _check_report_options(args)
    out = console

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old_term = signal.signal(signal.SIGTERM, on_term)
    try:
        rows = asyncio.run(sweep(plan, out.print))
    finally:
        signal.signal(signal.SIGTERM, old_term)
    t = Table(title="ledgerlab bench sweep (medians)", title_justify="left")
    for _, header in SWEEP_COLUMNS:
        t.add_column(header, justify="right")
    for row in rows:
        t.add_row(*(plain(row[k]) for k, _ in SWEEP_COLUMNS))
    out.print(t)
    machine = machine_info()
    if args.json:
        doc = {"machine": machine, "plan": {"repeat": plan.repeat}, "rows": rows}
        write_text(Path(args.json).expanduser(), json.dumps(doc, indent=2), "JSON")
        out.print(f"results written to {args.json}")
    if args.plot and rows:
        save_figure(sweep_figure(rows), Path(args.plot).expanduser())
        out.print(f"plot written to {args.plot}")
    if args.html:
        write_text(Path(args.html).expanduser(), sweep_html(rows, machine), "HTML report")
        out.print(f"report written to {args.html}")
    if not rows or not all(row["ok"] for row in rows):
        raise BenchFailed("a run failed or a check failed (see above)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_parser(
        sub,
        "bench",
        "benchmark a chain: committed TPS against the same-run ceiling, latency, checks",
        """
        ledgerlab bench                                  # 4 nodes, TCP, 20,000 transfers
        ledgerlab bench --transport mqtt --broker mqtt://127.0.0.1:1883
        ledgerlab bench --duration 30 --warmup 5 --json r.json --plot r.png --html r.html
        ledgerlab bench --rate 2000                      # open loop: offer 2,000 tx/s
        ledgerlab bench --max                            # search the saturation rate
        ledgerlab bench --dir ./chain --txs 50000        # load a chain that is running
        ledgerlab bench sweep --sweep-transports tcp,mqtt --plot sweep.png
        ledgerlab bench --nodes 4 --txs 200 --users 20   # a quick smoke test
        """,
        description="Start a fresh chain of N node processes on loopback (TCP or MQTT), or "
        "attach to a running chain with --dir, create DagTransfer users, time this machine's "
        "minimal per-transaction work (the ceiling), pre-sign the load (not timed), submit "
        "it as JSON-RPC batches over keep-alive connections to every node, and report "
        "committed TPS, its ratio to the ceiling, submit-to-commit latency percentiles, "
        "blocks, view changes, per-node CPU and peak memory. Checks that every accepted "
        "transaction committed, that all nodes end with the same head and state root, and "
        "that the total supply is unchanged. `bench sweep` repeats it over cluster sizes. "
        "Every process it starts is stopped at the end (also on Ctrl-C); an attached chain "
        "is left running.",
    )
    p.add_argument(
        "mode", nargs="?", choices=("sweep",), default=None, help="sweep: n = 4..16 and more"
    )
    where = p.add_argument_group("which chain")
    where.add_argument(
        "--dir",
        default=None,
        metavar="DIR",
        help="a chain directory (chain.toml) of a running chain to attach to; a new or "
        "empty folder: start the chain there (as --workdir)",
    )
    where.add_argument(
        "--workdir", default=None, metavar="DIR", help="new, empty folder for the chain it starts"
    )
    where.add_argument("--nodes", type=int, default=None, help="sealer nodes to start (4)")
    where.add_argument("--transport", choices=("tcp", "mqtt"), default=None, help="default tcp")
    where.add_argument(
        "--broker", default=DEFAULT_BROKER, help=f"MQTT broker (default {DEFAULT_BROKER})"
    )
    where.add_argument(
        "--block-txs", type=int, default=None, help="tx_count_limit in genesis (default 1000)"
    )
    where.add_argument(
        "--pool-txs",
        type=int,
        default=None,
        metavar="N",
        help="txpool capacity of the nodes it starts (default: the node's, 150000)",
    )
    where.add_argument("--keep", action="store_true", help="leave the chain running afterwards")
    load = p.add_argument_group("the load")
    load.add_argument("--txs", type=int, default=20_000, help="transfers to submit (20000)")
    load.add_argument(
        "--duration", type=float, default=0.0, metavar="S", help="submit for S seconds instead"
    )
    load.add_argument(
        "--warmup", type=float, default=0.0, metavar="S", help="leave the first S s out"
    )
    load.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="offered tx/s, open loop; 0 (default) = closed loop bounded by --window",
    )
    load.add_argument(
        "--max", action="store_true", help="search the saturation rate (open-loop steps)"
    )
    load.add_argument("--step", type=float, default=5.0, metavar="S", help="--max: s per step")
    load.add_argument(
        "--max-p99",
        type=float,
        default=1_000.0,
        metavar="MS",
        help="--max: a step with a higher p99 is past saturation (1000)",
    )
    load.add_argument(
        "--window",
        type=int,
        default=0,
        help="closed loop: max transactions in flight (default 4 x --block-txs)",
    )
    load.add_argument("--users", type=int, default=1_000, help="DagTransfer users (default 1000)")
    load.add_argument(
        "--format", choices=sorted(FORMATS), default="dag", help="load format (default dag)"
    )
    load.add_argument("--batch", type=int, default=200, help="transactions per JSON-RPC batch")
    load.add_argument("--conns", type=int, default=2, help="keep-alive connections per node")
    load.add_argument("--sample", type=int, default=400, help="receipts sampled for latency")
    load.add_argument(
        "--timeout", type=float, default=60.0, help="fail when nothing commits for this long"
    )
    load.add_argument("--seed", type=int, default=1, help="seed for the generated transfers")
    load.add_argument(
        "--cores",
        type=int,
        default=0,
        help="cores the nodes have, for the ceiling (default: their CPU affinity here)",
    )
    report = p.add_argument_group("reports")
    report.add_argument("--json", default=None, metavar="FILE", help="write all results as JSON")
    report.add_argument(
        "--plot", default=None, metavar="FILE.png", help="throughput and latency plot (matplotlib)"
    )
    report.add_argument("--html", default=None, metavar="FILE", help="one self-contained page")
    report.add_argument(
        "--phases",
        action="store_true",
        help="the nodes trace (docs/trace-format.md); report where a block's time goes: "
        "each consensus hop, execution, commit, time per height (phases_ms in the JSON)",
    )
    report.add_argument(
        "--profile",
        default=None,
        metavar="DIR",
        help="record each node with py-spy during the load (raw stacks in DIR/nodeI.txt)",
    )
    sw = p.add_argument_group("bench sweep")
    sw.add_argument("--sweep-nodes", default="4,7,10,13,16", metavar="LIST", help="cluster sizes")
    sw.add_argument("--sweep-transports", default="tcp", metavar="LIST", help="e.g. tcp,mqtt")
    sw.add_argument("--sweep-block-txs", default="1000", metavar="LIST", help="block sizes")
    sw.add_argument("--repeat", type=int, default=3, help="runs per configuration (medians)")
    p.set_defaults(func=cmd_bench)
