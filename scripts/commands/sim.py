"""``ledgerlab sim``: run a PBFT scenario on the deterministic simulator and check it.

Everything runs in this process on a virtual clock: the real replica code, a modelled
network (latency, jitter, loss, duplication, reordering, partitions), crashes and
Byzantine roles. The same seed gives the same run, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from consensus.sim import (
    BEHAVIOURS,
    BREAK_RULES,
    NetworkSpec,
    Scenario,
    ScenarioError,
    Simulation,
    check_all,
    load_toml,
    random_scenario,
)
from consensus.sim.scenario import parse_crash, parse_membership, parse_partition
from consensus.sim.summary import summarize
from consensus.sim.trace import JsonlTrace, Recorder, Tee
from scripts.errors import CommandError

console = Console()

EXAMPLES = """\
examples:
  ledgerlab sim                                   4 nodes, 20 blocks, real signatures
  ledgerlab sim --nodes 7 --faulty 2 --fault equivocate --seed 3
  ledgerlab sim --nodes 4 --partition "0,1@1000-6000" --blocks 40 --tx-interval-ms 100
  ledgerlab sim --scenario lesson.toml --trace run.jsonl --explain 3
  ledgerlab sim --break skip-reproposal --drop-commits-to 1,2,3   (watch the checker fail)
  ledgerlab sim --random-seed 1234 --json out.json
  ledgerlab sim --nodes 5 --sealers 4 --membership add:4@3 --membership remove:leader@6

A TOML scenario file holds the same settings (see docs/consensus.md):
  nodes = 4
  blocks = 30
  [network]
  latency_ms = 20
  drop = 0.01
  [[partition]]
  groups = [[0, 1]]
  start_ms = 1000
  heal_ms = 5000
  [[byzantine]]
  node = 3
  behaviour = "double-vote"
  [[membership]]            # needs sealers < nodes to have someone to add
  height = 3
  op = "add"                # or "remove"; node = "leader" removes block 3's proposer
  node = 4
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sim",
        help="simulate PBFT with faults and Byzantine nodes, and check its invariants",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scenario", metavar="FILE", help="TOML scenario; flags override it")
    p.add_argument(
        "--random-seed",
        type=int,
        metavar="S",
        help="run the CI sweep's random scenario for this seed",
    )
    p.add_argument("--nodes", type=int, metavar="N", help="nodes in the run (default 4)")
    p.add_argument(
        "--sealers",
        type=int,
        metavar="K",
        help="nodes 0..K-1 seal at genesis, the others observe (default: all)",
    )
    p.add_argument(
        "--membership",
        action="append",
        default=[],
        metavar="SPEC",
        help="OP:NODE@BLOCK: block BLOCK adds or removes a sealer from the next height, "
        "e.g. 'add:4@3', 'remove:leader@6' (repeatable)",
    )
    p.add_argument(
        "--faulty",
        type=int,
        metavar="K",
        default=0,
        help="make the last K sealers faulty (default 0)",
    )
    p.add_argument(
        "--fault",
        choices=BEHAVIOURS,
        default="silent",
        help="what the faulty sealers do (default silent)",
    )
    p.add_argument("--blocks", type=int, metavar="B", help="blocks to commit (default 20)")
    p.add_argument("--seed", type=int, metavar="S", help="seed of the run (default 1)")
    p.add_argument("--latency-ms", type=float, metavar="MS", help="mean link latency (20)")
    p.add_argument("--jitter-ms", type=float, metavar="MS", help="uniform jitter (5)")
    p.add_argument("--drop", type=float, metavar="P", help="message loss probability")
    p.add_argument("--duplicate", type=float, metavar="P", help="duplication probability")
    p.add_argument("--reorder", type=float, metavar="P", help="chance of a long extra delay")
    p.add_argument(
        "--partition",
        action="append",
        default=[],
        metavar="SPEC",
        help="GROUPS@START-END in ms, e.g. '0,1|2,3@1000-6000' (repeatable)",
    )
    p.add_argument(
        "--crash",
        action="append",
        default=[],
        metavar="SPEC",
        help="NODE@AT-RESTART in ms, e.g. '2@1000-5000' (repeatable)",
    )
    p.add_argument("--txs-per-block", type=int, metavar="T", help="transactions per block")
    p.add_argument(
        "--tx-interval-ms",
        type=float,
        metavar="MS",
        help="a block's worth of txs arrives every MS (default: all at once)",
    )
    p.add_argument("--timeout-ms", type=float, metavar="MS", help="consensus_timeout (1000)")
    p.add_argument("--max-time-s", type=float, metavar="S", help="virtual time limit")
    p.add_argument(
        "--fake-signatures",
        action="store_true",
        help="cheap keyed-hash signatures instead of secp256k1 (faster)",
    )
    p.add_argument(
        "--break",
        dest="break_rule",
        choices=BREAK_RULES,
        help="teaching aid: switch off a safety rule; the checker should fail",
    )
    p.add_argument(
        "--drop-commits-to",
        metavar="NODES",
        help="drop Commit messages to these nodes for the first 400 ms",
    )
    p.add_argument("--json", metavar="FILE", help="write the summary as JSON ('-': stdout)")
    p.add_argument("--trace", metavar="FILE", help="write every message and transition (JSONL)")
    p.add_argument(
        "--explain",
        type=int,
        nargs="?",
        const=1,
        metavar="HEIGHT",
        help="draw how HEIGHT (default 1) was decided, step by step (as `ledgerlab explain`)",
    )
    p.add_argument("--no-live", action="store_true", help="no live view while running")
    p.set_defaults(func=run)


def build_scenario(args: argparse.Namespace) -> Scenario:
    if args.scenario and args.random_seed is not None:
        raise CommandError("give --scenario or --random-seed, not both")
    try:
        if args.scenario:
            s = load_toml(args.scenario)
        elif args.random_seed is not None:
            s = random_scenario(args.random_seed)
        else:
            s = Scenario(network=NetworkSpec())
        for flag, attr in (
            ("nodes", "nodes"),
            ("sealers", "sealers"),
            ("blocks", "blocks"),
            ("seed", "seed"),
            ("txs_per_block", "txs_per_block"),
            ("tx_interval_ms", "tx_interval_ms"),
            ("timeout_ms", "timeout_ms"),
        ):
            value = getattr(args, flag)
            if value is not None:
                setattr(s, attr, value)
        for flag, attr in (
            ("latency_ms", "latency_ms"),
            ("jitter_ms", "jitter_ms"),
            ("drop", "drop"),
            ("duplicate", "duplicate"),
            ("reorder", "reorder"),
        ):
            value = getattr(args, flag)
            if value is not None:
                setattr(s.network, attr, value)
        if args.max_time_s is not None:
            s.max_time_ms = args.max_time_s * 1000
        if args.fake_signatures:
            s.signatures = "fake"
        if args.break_rule:
            s.break_rule = args.break_rule
        if args.faulty:
            if not 0 <= args.faulty <= s.nodes:
                raise CommandError(f"--faulty must be between 0 and --nodes ({s.nodes})")
            for node in range(s.nodes - args.faulty, s.nodes):
                s.byzantine[node] = args.fault
        s.partitions += [parse_partition(x) for x in args.partition]
        s.crashes += [parse_crash(x) for x in args.crash]
        s.membership += [parse_membership(x) for x in args.membership]
        if args.drop_commits_to:
            from consensus.sim.scenario import DropRule

            nodes = tuple(int(x) for x in args.drop_commits_to.split(",") if x.strip())
            s.drop_rules.append(DropRule(kinds=("Commit",), dst=nodes, end_ms=400))
            s.status_ms = 0.0
            if args.timeout_ms is None:
                s.timeout_ms = 500.0
        s.validate()
    except (ScenarioError, ValueError) as exc:
        raise CommandError(str(exc), hint="see `ledgerlab sim --help`") from None
    return s


def live_table(sim: Simulation, started: float) -> Table:
    table = Table(
        title=f"ledgerlab sim  seed {sim.scenario.seed}  "
        f"t = {sim.now / 1e6:.2f} s (virtual)  {time.perf_counter() - started:.1f} s "
        "wall",
        expand=False,
    )
    for col in ("node", "role", "height", "view", "state"):
        table.add_column(col)
    for node in sim.nodes[:40]:
        r = node.replica
        role = node.behaviour or "honest"
        if r is None:
            table.add_row(str(node.eid), role, str(node.height), "-", "[red]down[/]")
            continue
        state = "active" if r.view_active else "[yellow]view change[/]"
        table.add_row(str(node.eid), role, str(node.height), str(r.view), state)
    if len(sim.nodes) > 40:
        table.add_row("...", f"{len(sim.nodes) - 40} more", "", "", "")
    return table


def summary_tables(summary: dict[str, Any], wall: float) -> list[Table]:
    main = Table(title="summary", show_header=False)
    main.add_column("what")
    main.add_column("value")
    committed = summary["blocks_committed"]
    main.add_row("nodes / f / seed", f"{summary['nodes']} / {summary['f']} / {summary['seed']}")
    main.add_row(
        "faulty",
        ", ".join(f"{k}: {v}" for k, v in summary["byzantine"].items())
        or ", ".join(map(str, summary["faulty"]))
        or "none",
    )
    main.add_row("blocks committed", f"{committed} of {summary['blocks_target']}")
    lists = summary["sealer_lists"]
    if len(lists) > 1:
        main.add_row(
            "sealers",
            "; ".join(f"from {x['from_height']}: {x['sealers']}" for x in lists),
        )
    main.add_row("view changes", str(summary["view_changes"]))
    per_block = summary["messages_per_block"]
    main.add_row("messages per block", ", ".join(f"{k} {v}" for k, v in per_block.items()))
    lat = summary["commit_latency_ms"]
    if lat["p50"] is not None:
        main.add_row("commit latency (sim)", f"p50 {lat['p50']:.1f} ms  p99 {lat['p99']:.1f} ms")
    main.add_row("simulated time", f"{summary['simulated_ms'] / 1000:.2f} s")
    main.add_row(
        "wall time",
        f"{wall:.2f} s  ({committed / wall if wall else 0:.1f} blocks/s, "
        f"{summary['signatures']} signatures)",
    )
    main.add_row("chain hash", summary["chain_hash"][:16])
    if summary["idle_at_end"]:
        main.add_row(
            "note",
            "no transactions left: the chain is idle and stays at its height "
            "(no empty blocks, as in FISCO BCOS)",
        )
    inv = Table(title="invariants")
    inv.add_column("invariant")
    inv.add_column("result")
    inv.add_column("detail")
    for name, r in summary["invariants"].items():
        colour = {"ok": "green", "skipped": "yellow"}.get(r["status"], "bold red")
        inv.add_row(name, f"[{colour}]{r['status']}[/]", r["detail"])
    nodes = Table(title="nodes")
    for col in ("node", "index", "role", "height", "head", "view", "synced"):
        nodes.add_column(col)
    for n in summary["per_node"][:40]:
        role = n["behaviour"] or ("honest" if n["honest"] else "faulty")
        nodes.add_row(
            str(n["endpoint"]),
            str(n["index"]),
            role,
            str(n["committed_height"]),
            n["head_hash"][:12],
            str(n["view"]),
            str(n["synced_blocks"]),
        )
    return [nodes, main, inv]


def run(args: argparse.Namespace) -> int:
    s = build_scenario(args)
    sinks: list[Any] = []
    trace_file = None
    recorder = Recorder() if args.explain is not None else None
    if args.trace:
        try:
            trace_file = open(args.trace, "w")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CommandError(f"cannot write {args.trace}: {exc.strerror}") from None
        sinks.append(JsonlTrace(trace_file))
    if recorder is not None:
        sinks.append(recorder)
    trace = sinks[0] if len(sinks) == 1 else Tee(*sinks) if sinks else None
    sim = Simulation(s, trace=trace)
    quiet = args.json == "-"
    started = time.perf_counter()
    try:
        if args.no_live or quiet or not console.is_terminal:
            sim.run()
        else:
            with Live(live_table(sim, started), console=console, refresh_per_second=8) as live:
                sim.run(progress=lambda x: live.update(live_table(x, started)), every=500)
                live.update(live_table(sim, started))
    finally:
        if trace_file is not None:
            trace_file.close()
    wall = time.perf_counter() - started
    results = check_all(sim)
    summary = summarize(sim, results)
    summary["wall_seconds"] = round(wall, 3)
    if not quiet:
        for table in summary_tables(summary, wall):
            console.print(table)
    if recorder is not None and not quiet:
        from scripts.commands.explain import holds
        from scripts.trace.diagram import render
        from scripts.trace.story import height_story

        header, *records = recorder.records
        story = height_story(header, records, args.explain)
        if story.steps:
            render(story, console)
        else:  # the run is done and judged: a note, not an error
            console.print(
                f"[yellow]--explain {args.explain}: not in this run; it has {holds(records)}[/]",
                soft_wrap=True,
            )
    if args.json:
        text = json.dumps(summary, indent=2, sort_keys=True)
        if args.json == "-":
            sys.stdout.write(text + "\n")
        else:
            try:
                Path(args.json).write_text(text + "\n")
            except OSError as exc:
                raise CommandError(f"cannot write {args.json}: {exc.strerror}") from None
    if not summary["ok"] and not quiet:
        failed = [k for k, r in summary["invariants"].items() if not r["ok"]]
        console.print(f"[bold red]invariant failed:[/] {', '.join(failed)}")
    return 0 if summary["ok"] else 1
