"""``ledgerlab chaos``: faults on a real multi-process cluster, then checks that lose nothing.

The work is in :mod:`scripts.chaos`; this module parses arguments, prints and sets the
exit status (0: every check passed; 1: a check failed; the report says which).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path
from types import FrameType

from consensus.byzantine import BEHAVIOURS
from scripts.chaos import report as report_mod
from scripts.chaos.fleet import TWINS
from scripts.chaos.hostile import POOL_CAPACITY
from scripts.chaos.runner import RunPlan, run
from scripts.chaos.schedule import KINDS, ScheduleError
from scripts.chaos.soak import soak
from scripts.errors import CommandError
from scripts.launcher.options import Verb, add_verbs, arg, console, fresh_dir


class ChaosFailed(CommandError):
    """A check failed; the report above says which."""


def _byzantine(values: list[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for value in values:
        node, sep, behaviour = value.partition("=")
        index = node.removeprefix("node")
        if not sep or not index.isdigit() or behaviour not in (*BEHAVIOURS, TWINS):
            raise CommandError(
                f"--byzantine {value!r}: expected NODE=BEHAVIOUR",
                hint=f"behaviours: {', '.join((*BEHAVIOURS, TWINS))}; e.g. --byzantine 3=twins",
            )
        out[int(index)] = behaviour
    return out


def _kinds(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    kinds = frozenset(k.strip() for k in value.split(",") if k.strip())
    unknown = kinds - set(KINDS)
    if unknown:
        raise CommandError(
            f"--kinds: unknown {', '.join(sorted(unknown))}", hint=f"kinds: {', '.join(KINDS)}"
        )
    return kinds


def _plan(args: argparse.Namespace) -> RunPlan:
    if args.dir and (args.nodes is not None or args.transport is not None):
        raise CommandError("--dir attaches to a running chain: --nodes and --transport are its own")
    if args.seed is not None and args.schedule:
        raise CommandError("--seed and --schedule are alternatives: a schedule is one or the other")
    byzantine = _byzantine(args.byzantine or [])
    nodes = args.nodes or 4
    if any(i >= nodes for i in byzantine) and not args.dir:
        raise CommandError(f"--byzantine names a node outside 0..{nodes - 1}")
    if TWINS in byzantine.values() and (args.transport == "mqtt" or args.dir):
        raise CommandError(
            "--byzantine N=twins needs a fresh TCP cluster (no --dir, no --transport mqtt)",
            hint="over MQTT both twins would read one inbox; see docs/reliability.md",
        )
    if len(byzantine) > (nodes - 1) // 3:
        console.print(
            f"[yellow]warning:[/] {len(byzantine)} Byzantine of {nodes} nodes is more "
            f"than f={(nodes - 1) // 3}: safety is not promised"
        )
    if args.observers and args.dir:
        raise CommandError("--dir attaches to a running chain: --observers is its own")
    return RunPlan(
        nodes=nodes,
        observers=args.observers or 0,
        transport=args.transport or "tcp",
        seed=1 if args.seed is None else args.seed,
        schedule=Path(args.schedule).expanduser() if args.schedule else None,
        duration=args.duration,
        attach=Path(args.dir).expanduser() if args.dir else None,
        work_dir=fresh_dir(args.work_dir, "a chaos run"),
        byzantine=byzantine,
        rate=args.rate,
        users=args.users,
        resend_after=args.resend_after,
        kinds=_kinds(args.kinds),
        keep=args.keep,
        hostile=args.hostile,
    )


def cmd_chaos(args: argparse.Namespace) -> int:
    plan = _plan(args)
    if args.seeds is not None:
        return _soak(args, plan)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        outcome = asyncio.run(run(plan, lambda line: console.print(line, highlight=False)))
    except ScheduleError as exc:
        raise CommandError(str(exc)) from None
    finally:
        signal.signal(signal.SIGTERM, old)
    report_mod.render(console, outcome.report, outcome.verdict)
    if args.json:
        Path(args.json).expanduser().write_text(json.dumps(outcome.report, indent=2))
        console.print(f"report written to {args.json}")
    if not outcome.verdict.ok:
        console.print(f"node data and logs kept in {outcome.run_dir}")
        raise ChaosFailed("a check failed (see above)", hint=f"replay: {outcome.report['replay']}")
    return 0


def _soak(args: argparse.Namespace, plan: RunPlan) -> int:
    if args.schedule or args.dir or args.work_dir:
        raise CommandError(
            "--seeds runs fresh clusters from seeds: no --schedule, --dir, --work-dir"
        )
    if args.seeds < 1:
        raise CommandError("--seeds must be at least 1")
    first = plan.seed
    seeds = range(first, first + args.seeds)
    console.print(
        f"chaos soak: seeds {first}..{first + args.seeds - 1}, {plan.duration or 60:g} s each"
    )
    try:
        totals = soak(
            plan,
            seeds,
            workers=args.workers,
            scheduler=args.scheduler,
            say=lambda line: console.print(line, highlight=False),
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise CommandError(str(exc)) from None
    txs = totals["txs"]
    console.print(
        f"{len(totals['seeds'])} runs, {totals['passed']} passed, "
        f"{totals['seconds_of_chaos'] / 60:.0f} min of chaos; perturbations "
        + ", ".join(f"{k} {v}" for k, v in sorted(totals["perturbations"].items()))
        + f"; {txs.get('acknowledged', 0):,} txs acknowledged, {txs.get('lost', 0)} lost; "
        f"longest stall {totals['longest_stall']:.1f} s; {totals['views_advanced']:,} views "
        f"advanced; median tx/s during faults {_tps(totals['throughput']['during_faults_tps'])}"
        f", fault-free {_tps(totals['throughput']['fault_free_tps'])}"
    )
    if args.json:
        Path(args.json).expanduser().write_text(json.dumps(totals, indent=2))
        console.print(f"report written to {args.json}")
    if totals["failed"]:
        raise ChaosFailed(f"seeds {', '.join(map(str, totals['failed']))} failed (see above)")
    return 0


def _tps(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


VERBS = (
    Verb(
        "chaos",
        "faults on a live multi-process cluster (kill, pause, partitions, slow links, "
        "stale data, full or read-only disks, skewed clocks, membership changes, Byzantine "
        "nodes, hostile clients), then checks that nothing was lost",
        """
        ledgerlab chaos                                # 4 nodes over TCP, seed 1, 60 s
        ledgerlab chaos --seed 7 --duration 120 --json chaos.json
        ledgerlab chaos --schedule faults.toml         # a schedule of your own
        ledgerlab chaos --transport mqtt               # with a private broker it restarts
        ledgerlab chaos --byzantine 3=equivocate --kinds kill,partition
        ledgerlab chaos --hostile --byzantine 3=twins  # hostile clients; node3's key twice
        ledgerlab chaos --kinds disk_full,read_only,clock_skew   # root; apt install faketime
        ledgerlab chaos --dir ./chain --duration 60    # a running chain: process faults only
        ledgerlab chaos --seeds 60 --duration 60 --json soak.json   # a soak: about 90 min
        """,
        cmd_chaos,
        (
            arg(
                "--dir",
                default=None,
                metavar="DIR",
                help="attach to this running chain instead of starting one (no proxies, no "
                "disks of its own: kill, pause, leader kill, stale restart, clock skew and "
                "membership only)",
            ),
            arg("--nodes", type=int, default=None, metavar="N", help="sealers (default 4)"),
            arg(
                "--observers",
                type=int,
                default=None,
                metavar="M",
                help="observers besides the sealers (default 0); they take submissions too",
            ),
            arg("--transport", choices=("tcp", "mqtt"), default=None, help="default tcp"),
            arg(
                "--seed",
                type=int,
                default=None,
                metavar="S",
                help="random schedule from this seed (default 1; the same seed, duration "
                "and cluster give the same schedule)",
            ),
            arg(
                "--schedule",
                default=None,
                metavar="FILE.toml",
                help="perturbations from a TOML file (docs/reliability.md)",
            ),
            arg(
                "--duration",
                type=float,
                default=None,
                metavar="S",
                help="seconds of workload and faults (default: the schedule's, else 60)",
            ),
            arg(
                "--kinds",
                default=None,
                metavar="K,K",
                help=f"random schedules use only these kinds ({', '.join(KINDS)})",
            ),
            arg(
                "--byzantine",
                action="append",
                metavar="NODE=BEHAVIOUR",
                help=f"start NODE Byzantine ({', '.join(BEHAVIOURS)}), or as {TWINS} (two "
                "processes with its key); repeatable",
            ),
            arg(
                "--hostile",
                action="store_true",
                help="hostile clients beside the workload: same-nonce races across nodes, "
                "poison pills, replays of committed txs, bursts over the pool limit "
                f"(every node's pool then holds {POOL_CAPACITY:,} txs)",
            ),
            arg("--rate", type=float, default=40.0, help="offered tx/s (default 40)"),
            arg("--users", type=int, default=20, help="DagTransfer users (default 20)"),
            arg(
                "--resend-after",
                type=float,
                default=8.0,
                metavar="S",
                help="the client resends a transaction without a receipt after S s (default "
                "8; 0: never, to see what the nodes deliver on their own)",
            ),
            arg("--json", default=None, metavar="FILE", help="write the report as JSON"),
            arg(
                "--work-dir",
                default=None,
                metavar="DIR",
                help="put the fresh cluster here (a new or empty folder; kept)",
            ),
            arg("--keep", action="store_true", help="keep the temporary folder after a pass"),
            arg(
                "--seeds",
                type=int,
                default=None,
                metavar="N",
                help="a soak: N runs, seeds --seed .. --seed+N-1, each --duration s",
            ),
            arg(
                "--workers",
                type=int,
                default=None,
                metavar="K",
                help="--seeds: K runs at once on this machine (default 1)",
            ),
            arg(
                "--scheduler",
                default=None,
                metavar="ADDRESS",
                help="--seeds: run on a Dask cluster (tcp://host:8786; docs/reliability.md)",
            ),
        ),
    ),
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_verbs(sub, VERBS)
