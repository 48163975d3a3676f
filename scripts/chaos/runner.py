"""One chaos run, start to verdict.

1. a fresh cluster behind the proxies (or ``--dir``: a running one, as it is);
2. the schedule (from ``--seed`` or ``--schedule``);
3. users created, then the workload, the monitor and the schedule for ``duration`` s;
4. every fault undone, the workload drained (resending what has no receipt), the heads
   given time to converge;
5. the nodes stopped (a fresh cluster) and their stores checked offline;
6. the report: a summary on the terminal, everything as JSON with ``--json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from node.runtime.config import NodeConfig
from scripts.chaos import clock as clock_mod
from scripts.chaos import cluster as cluster_mod
from scripts.chaos import disk as disk_mod
from scripts.chaos import report as report_mod
from scripts.chaos import schedule as schedule_mod
from scripts.chaos.checker import Evidence, Verdict, run_checks
from scripts.chaos.cluster import ChaosCluster
from scripts.chaos.hostile import MAX_FLOOD_CAPACITY, POOL_CAPACITY, HostileClient
from scripts.chaos.perturb import Perturber
from scripts.chaos.schedule import Schedule, Shape
from scripts.chaos.stalls import Stall, find_stalls
from scripts.chaos.store import NodeLedger, open_ledger
from scripts.chaos.workload import TxRecord, Workload, WorkloadPlan
from scripts.errors import CommandError
from scripts.launcher.layout import load_chain

DRAIN_TIMEOUT = 120.0
CONVERGE_TIMEOUT = 60.0
SETUP_TIMEOUT = 60.0
DEFAULT_RATE = 40.0
DEFAULT_RESEND = 8.0
Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RunPlan:
    nodes: int = 4  # sealers
    observers: int = 0
    transport: str = "tcp"
    seed: int = 1
    schedule: Path | None = None
    duration: float | None = None  # None: the schedule file's, else 60
    attach: Path | None = None
    work_dir: Path | None = None  # where a fresh cluster goes (default: a temp folder)
    byzantine: dict[int, str] = field(default_factory=dict)
    rate: float = DEFAULT_RATE
    users: int = 20
    resend_after: float = DEFAULT_RESEND  # 0: the client never resends
    kinds: frozenset[str] | None = None
    keep: bool = False
    hostile: bool = False  # hostile clients beside the workload (scripts/chaos/hostile.py)


@dataclass(slots=True)
class Outcome:
    report: dict[str, Any]
    verdict: Verdict
    run_dir: Path


def _schedule(plan: RunPlan) -> Schedule:
    """The run's schedule, checked before anything starts."""
    chain = load_chain(plan.attach) if plan.attach is not None else None
    nodes = len(chain.nodes) if chain else plan.nodes + plan.observers
    transport = chain.transport if chain else plan.transport
    network = chain is None
    if plan.schedule is not None:
        sched = schedule_mod.load(plan.schedule, nodes)
        net = {p.kind for p in sched.perturbations if p.kind in schedule_mod.NETWORK_KINDS}
        if net and not network:
            raise CommandError(
                f"{plan.schedule} has network faults ({', '.join(sorted(net))}) but --dir "
                "attaches without proxies",
                hint="run without --dir (a fresh cluster behind proxies)",
            )
        _check_can(sched, network)
        return sched
    shape = Shape(
        nodes=nodes,
        transport=transport,
        network=network,
        byzantine=frozenset(plan.byzantine),
        kinds=plan.kinds,
        disk=network and disk_mod.available() is None,
        clock=clock_mod.library() is not None,
    )
    return schedule_mod.generate(plan.seed, plan.duration or 60.0, shape)


def _check_can(sched: Schedule, fresh: bool) -> None:
    """A schedule file's disk and clock faults need what they need, said before starting."""
    kinds = {p.kind for p in sched.perturbations}
    if kinds & schedule_mod.DISK_KINDS:
        why = disk_mod.available() if fresh else "--dir: the nodes' data folders are yours"
        if why is not None:
            raise CommandError(f"the schedule has disk faults, but {why}")
    if kinds & schedule_mod.CLOCK_KINDS and clock_mod.library() is None:
        raise CommandError(
            "the schedule has clock_skew, but libfaketime is not installed",
            hint="apt-get install faketime",
        )


def _disk_nodes(sched: Schedule) -> frozenset[int]:
    return frozenset(
        p.node
        for p in sched.perturbations
        if p.kind in schedule_mod.DISK_KINDS and isinstance(p.node, int)
    )


def _duration(plan: RunPlan, sched: Schedule) -> float:
    return plan.duration or sched.duration or 60.0


async def run(plan: RunPlan, say: Say) -> Outcome:
    sched = _schedule(plan)
    run_dir, temp = _run_dir(plan)
    cluster = await _cluster(plan, run_dir, say, _disk_nodes(sched))
    outcome: Outcome | None = None
    try:
        outcome = await _run_on(plan, cluster, sched, say)
        return outcome
    finally:
        if plan.attach is None:
            await cluster.close()
        elif cluster.network is not None:
            await cluster.network.close()
        if temp and outcome is not None and outcome.verdict.ok and not plan.keep:
            shutil.rmtree(run_dir, ignore_errors=True)


def _run_dir(plan: RunPlan) -> tuple[Path, bool]:
    if plan.attach is not None:
        folder = plan.attach / "chaos" / time.strftime("%Y%m%d-%H%M%S")
        folder.mkdir(parents=True, exist_ok=True)
        return folder, False
    if plan.work_dir is not None:
        plan.work_dir.mkdir(parents=True, exist_ok=True)
        return plan.work_dir, False
    return Path(tempfile.mkdtemp(prefix="ledgerlab-chaos-")), True


async def _cluster(
    plan: RunPlan, run_dir: Path, say: Say, disks: frozenset[int] = frozenset()
) -> ChaosCluster:
    if plan.attach is not None:
        say(f"attaching to the running chain in {plan.attach} (process faults only)")
        return cluster_mod.attach(plan.attach, plan.byzantine, run_dir)
    say(f"starting {plan.nodes} nodes over {plan.transport} behind fault proxies in {run_dir}")
    return await cluster_mod.create(
        run_dir / "chain",
        nodes=plan.nodes,
        observers=plan.observers,
        transport=plan.transport,
        byzantine=plan.byzantine,
        seed=plan.seed,
        disks=disks,
        txpool_capacity=POOL_CAPACITY if plan.hostile else None,
    )


async def _run_on(plan: RunPlan, cluster: ChaosCluster, sched: Schedule, say: Say) -> Outcome:
    duration = _duration(plan, sched)
    (cluster.run_dir / "schedule.toml").write_text(schedule_mod.to_toml(sched))
    say(
        f"schedule: {len(sched.perturbations)} perturbations over {duration:g} s "
        f"({', '.join(f'{k} {v}' for k, v in sorted(sched.counts().items())) or 'none'})"
    )
    workload = _workload(plan, cluster)
    hostile = _hostile(plan, cluster, workload)
    cluster.pending = lambda: bool(workload.open_records())
    stop_monitor = asyncio.Event()
    monitor = asyncio.ensure_future(cluster.monitor.run(stop_monitor))
    perturber = Perturber(cluster, offset=0.0)
    try:
        await cluster.monitor.sample()
        await _create_users(workload, say)
        timing = await _chaos(cluster, workload, perturber, sched, duration, say, hostile)
        say("draining: every submitted transaction to a receipt (resending), heads converging")
        drained = await workload.drain(DRAIN_TIMEOUT)
        await _converge(cluster)
        timing["end"] = cluster.now()
        members = await _members(cluster)
    finally:
        stop_monitor.set()
        await monitor
        await workload.close()
    if plan.attach is None:
        cluster.fleet.stop_all()
    _save_records(cluster.run_dir / "txs.json", workload)
    points = [p for p in cluster.monitor.points if timing["start"] <= p.t <= timing["end"]]
    stalls = find_stalls(points)
    verdict = _check(cluster, workload, members, stalls, hostile, perturber)
    report = _report(plan, cluster, sched, duration, workload, perturber, verdict, timing)
    report["stalls"] = report_mod.stall_summary(stalls, timing["start"])
    report["storage_faults"] = {
        f"node{i}": [{"t": round(t - timing["start"], 2), "reason": why} for t, why in seen]
        for i, seen in cluster.monitor.storage_faults.items()
    }
    if hostile is not None:
        report["hostile"] = hostile.figures()
    if not drained:
        report["notes"].append(f"the drain timed out after {DRAIN_TIMEOUT:.0f} s")
    return Outcome(report, verdict, cluster.run_dir)


def _save_records(path: Path, workload: Workload) -> None:
    """Every transaction of the run and what became of it (for the checks and for you)."""
    path.write_text(json.dumps([r.as_json() for r in workload.records.values()]))


def load_records(path: Path) -> list[TxRecord]:
    return [TxRecord.from_json(doc) for doc in json.loads(path.read_text())]


def _hostile(plan: RunPlan, cluster: ChaosCluster, workload: Workload) -> HostileClient | None:
    if not plan.hostile:
        return None

    def committed() -> list[bytes]:
        return [r.raw for r in workload.records.values() if r.receipt_at is not None]

    capacity: int | None = POOL_CAPACITY
    if plan.attach is not None:  # the chain's own pools (the fresh ones are made small)
        own = NodeConfig.load(cluster.chain.nodes[0].config_path).txpool_capacity
        capacity = own if own <= MAX_FLOOD_CAPACITY else None

    return HostileClient(
        chain_id=cluster.chain.chain_id,
        group_id=cluster.chain.group_id,
        targets=cluster.submission_targets,
        address=cluster.rpc_address,
        head=cluster.monitor.head,
        committed=committed,
        pid_of=lambda i: cluster.fleet[i].pid,
        seed=plan.seed,
        capacity=capacity,
    )


def _workload(plan: RunPlan, cluster: ChaosCluster) -> Workload:
    return Workload(
        WorkloadPlan(
            rate=plan.rate,
            users=plan.users,
            seed=plan.seed,
            resend_after=plan.resend_after or float("inf"),
        ),
        chain_id=cluster.chain.chain_id,
        group_id=cluster.chain.group_id,
        key=cluster.admin,
        targets=cluster.submission_targets,
        address=cluster.rpc_address,
        head=cluster.monitor.head,
    )


async def _create_users(workload: Workload, say: Say) -> None:
    await workload.create_users()
    if not await workload.drain(SETUP_TIMEOUT):
        raise CommandError(
            f"the {len(workload.users)} users were not created within "
            f"{SETUP_TIMEOUT:.0f} s: the chain does not commit"
        )
    say(f"{len(workload.users)} users created; workload and schedule start")


async def _chaos(
    cluster: ChaosCluster,
    workload: Workload,
    perturber: Perturber,
    sched: Schedule,
    duration: float,
    say: Say,
    hostile: HostileClient | None = None,
) -> dict[str, float]:
    start = cluster.now()
    perturber.offset = start
    stop_load = asyncio.Event()
    tasks = [
        asyncio.ensure_future(workload.run(stop_load)),
        asyncio.ensure_future(workload.follow_receipts(stop_load)),
    ]
    if hostile is not None:
        tasks.append(asyncio.ensure_future(hostile.run(stop_load)))
    play = asyncio.ensure_future(perturber.play(sched))
    watch = asyncio.ensure_future(_watch(cluster, say, stop_load, start))
    await asyncio.sleep(max(0.0, start + duration - cluster.now()))
    perturber.stop.set()
    say("schedule over: undoing what is still on")
    await play
    load_end = cluster.now()
    stop_load.set()
    await asyncio.gather(*tasks, watch)
    return {"start": start, "load_end": load_end}


async def _watch(cluster: ChaosCluster, say: Say, stop: asyncio.Event, start: float) -> None:
    """Notice nodes that exit on their own (a crash is a finding) and say what happens."""
    seen = len(cluster.events)
    while not stop.is_set():
        for node in cluster.fleet.check_exits():
            say(f"[red]{node.name} {node.exits[-1]}[/]")
            cluster.record("crash", "exit", f"{node.name}: {node.exits[-1]}")
        for event in cluster.events[seen:]:
            say(f"  {event.t - start:6.1f}s  {event.kind:<14} {event.action:<8} {event.detail}")
        seen = len(cluster.events)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def _converge(cluster: ChaosCluster) -> None:
    """Until every running honest member reports the same height (or the timeout)."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT
    while time.monotonic() < deadline:
        views = [
            v
            for i, v in cluster.monitor.latest.items()
            if cluster.is_honest(i) and cluster.fleet[i].up and v.role != "free"
        ]
        if views and len({v.height for v in views}) == 1:
            return
        await asyncio.sleep(0.5)


async def _members(cluster: ChaosCluster) -> set[str]:
    """Names of the nodes the chain lists as sealers or observers at the end."""
    via = cluster.talking_member()
    if via is None:
        return {n.name for n in cluster.chain.nodes}
    client = cluster.client(via)
    try:
        ids = list(await client.sealers()) + list(await client.observers())
    finally:
        await client.close()
    return {n.name for n in cluster.chain.nodes if n.node_id in ids}


def _check(
    cluster: ChaosCluster,
    workload: Workload,
    members: set[str],
    stalls: list[Stall],
    hostile: HostileClient | None = None,
    perturber: Perturber | None = None,
) -> Verdict:
    with contextlib.ExitStack() as stack:
        ledgers: dict[str, NodeLedger] = {}
        for n in cluster.fleet.honest():
            ledgers[n.name] = stack.enter_context(open_ledger(n.name, n.entry.home))
        evidence = Evidence(
            genesis=cluster.chain.genesis(),
            ledgers=ledgers,
            records=list(workload.records.values()),
            members=[m for m in members if m in ledgers],
            stalls=stalls,
            crashes={n.name: n.exits for n in cluster.fleet.nodes.values()},
            internal_errors={
                f"node{i}": k
                for i, k in cluster.monitor.internal_errors.items()
                if cluster.is_honest(i)
            },
            disk_victims=perturber.disk_victims if perturber is not None else (),
            storage_faults={
                f"node{i}": [why for _t, why in seen]
                for i, seen in cluster.monitor.storage_faults.items()
            },
            storage_fault_at_end=[
                f"node{i}" for i, v in cluster.monitor.latest.items() if v.storage_fault
            ],
            hostile=hostile.evidence if hostile is not None else None,
        )
        return run_checks(evidence)


def _report(
    plan: RunPlan,
    cluster: ChaosCluster,
    sched: Schedule,
    duration: float,
    workload: Workload,
    perturber: Perturber,
    verdict: Verdict,
    timing: dict[str, float],
) -> dict[str, Any]:
    counts = workload.counts()
    mon = cluster.monitor
    fleet = cluster.fleet.nodes.values()
    return {
        "ok": verdict.ok,
        "replay": replay_command(plan, sched, cluster.run_dir),
        "cluster": {
            "nodes": len(cluster.chain.nodes),
            "transport": cluster.chain.transport,
            "byzantine": {f"node{k}": v for k, v in plan.byzantine.items()},
            "dir": str(cluster.chain.root),
        },
        "duration": duration,
        "schedule": {
            "source": sched.source,
            "seed": sched.seed,
            "perturbations": [p.as_dict() for p in sched.perturbations],
        },
        "perturbations": {
            "scheduled": sched.counts(),
            "applied": dict(perturber.applied),
            "skipped": dict(perturber.skipped),
        },
        "txs": {
            **counts,
            "committed": verdict.figures.get("committed", 0),
            "lost": verdict.figures.get("lost", 0),
        },
        "view_changes": {
            "views_advanced": mon.max_view - (mon.first_view or 0),
            "per_node": {f"node{i}": v for i, v in mon.view_changes.items()},
        },
        "latency": report_mod.latency(list(workload.records.values())),
        "throughput": report_mod.throughput(
            mon.throughput, perturber.windows, timing["start"], timing["load_end"]
        ),
        "restarts": {n.name: n.restarts for n in fleet},
        "kills": {n.name: n.kills for n in fleet},
        "pauses": {n.name: n.pauses for n in fleet},
        "broker_restarts": cluster.broker.restarts if cluster.broker else 0,
        "checks": [c.as_json() for c in verdict.checks],
        "figures": verdict.figures,
        "events": [{**e.as_json(), "t": round(e.t - timing["start"], 2)} for e in cluster.events],
        "errors": dict(workload.errors),
        "notes": list(perturber.notes),
        "timing": {k: round(v - timing["start"], 2) for k, v in timing.items()},
    }


def replay_command(plan: RunPlan, sched: Schedule, run_dir: Path) -> str:
    """The one command that runs this schedule again."""
    parts = ["ledgerlab", "chaos"]
    if plan.attach is not None:
        parts += ["--dir", str(plan.attach)]
    else:
        parts += ["--nodes", str(plan.nodes), "--transport", plan.transport]
        if plan.observers:
            parts += ["--observers", str(plan.observers)]
    if sched.source == "seed":
        parts += ["--seed", str(sched.seed), "--duration", f"{sched.duration:g}"]
        if plan.kinds:
            parts += ["--kinds", ",".join(sorted(plan.kinds))]
    else:
        parts += ["--schedule", str(plan.schedule)]
    for k, v in sorted(plan.byzantine.items()):
        parts += ["--byzantine", f"{k}={v}"]
    if plan.rate != DEFAULT_RATE:
        parts += ["--rate", f"{plan.rate:g}"]
    if plan.resend_after != DEFAULT_RESEND:
        parts += ["--resend-after", f"{plan.resend_after:g}"]
    if plan.hostile:
        parts.append("--hostile")
    return shlex.join(parts)
