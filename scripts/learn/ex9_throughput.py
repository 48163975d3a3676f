"""Exercise 9: throughput against n -- what each added sealer costs every block."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from consensus.quorum import max_faulty, quorum
from consensus.sim import Scenario
from scripts.learn.exercise import Answer, Exercise, Live, Run, SimRun, number

SIZES = (4, 7, 10, 13)
ASKED = 10
BLOCKS = 10


def scenario(seed: int, nodes: int = SIZES[0]) -> Scenario:
    return Scenario(nodes=nodes, blocks=BLOCKS, seed=seed)


def sweep(seed: int) -> list[Scenario]:
    return [scenario(seed, n) for n in SIZES]


def per_block(r: SimRun) -> float:
    return float(sum(r.summary["messages_per_block"].values()))


def look(run: Run) -> list[str]:
    out = [
        f"{BLOCKS} blocks at each n, same seed, real secp256k1 signatures "
        "(CPU: this process running every replica):",
        f"  {'n':>3} {'f':>3} {'quorum':>6}  {'msgs/block':>10}  "
        f"{'= PrePrepare + Prepare + Commit':<32}{'commit p50 (sim)':>17}  {'CPU ms/block':>12}",
    ]
    for r in run.runs:
        n = r.scenario.nodes
        m = r.summary["messages_per_block"]
        parts = " + ".join(f"{m.get(k, 0):g}" for k in ("PrePrepare", "Prepare", "Commit"))
        p50 = r.summary["commit_latency_ms"]["p50"] or 0.0
        blocks = max(1, r.summary["blocks_committed"])
        out.append(
            f"  {n:>3} {max_faulty(n):>3} {quorum(n):>6}  {per_block(r):>10g}  {'= ' + parts:<32}"
            f"{p50:>14.1f} ms  {r.cpu_s * 1000 / blocks:>12.1f}"
        )
    return out


def _asked(run: Run) -> SimRun:
    return next(r for r in run.runs if r.scenario.nodes == ASKED)


def question(run: Run) -> str:
    return (
        f"Predict it before the table is shown: how many network messages does one "
        f"block cost with n = {ASKED} sealers? (within 10 %)"
    )


def answer(run: Run) -> Answer:
    r = _asked(run)
    n = r.scenario.nodes
    measured = per_block(r)
    why = [
        f"Measured in this run: {measured:g} messages per block at n = {n}.",
        f"The leader sends n - 1 = {n - 1} PrePrepares; every sealer broadcasts a Prepare "
        f"and a Commit to the n - 1 others: 2 n (n - 1) = {2 * n * (n - 1)}. In all "
        f"2n^2 - n - 1 = {2 * n * n - n - 1}: quadratic in n.",
        "Simulated latency hardly moves (a quorum waits for the (n - f)-th fastest link), "
        "but the work per block grows with n^2: each node checks about 2n signatures a "
        "block. On real processes that is what caps throughput as n grows: measure it with "
        "`ledgerlab bench --nodes N` (docs/performance.md).",
    ]
    return number(round(measured), why, tolerance=0.1)


LIVE_NODES = (4, 7)
LIVE_TXS = 2_000
LIVE_USERS = 20
LIVE_BLOCK_TXS = 200
"""Small blocks, so that even this short load makes ten of them."""


def live_command(seed: int) -> str:
    nodes = ",".join(map(str, LIVE_NODES))
    return (
        f"ledgerlab bench sweep --sweep-nodes {nodes} --sweep-block-txs {LIVE_BLOCK_TXS} "
        f"--txs {LIVE_TXS} --users {LIVE_USERS} --repeat 1 --seed {seed}"
    )


def live_rows(seed: int, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """One small ``bench sweep``: a fresh chain of real node processes per size (about
    10-20 s each on a 2-core machine)."""
    from scripts.bench_sweep import SweepPlan, sweep
    from scripts.benchmark import BenchPlan

    base = BenchPlan(txs=LIVE_TXS, users=LIVE_USERS, seed=seed)
    plan = SweepPlan(base=base, nodes=LIVE_NODES, block_sizes=(LIVE_BLOCK_TXS,), repeat=1)
    plan.check()
    return asyncio.run(sweep(plan, say))


def live_look(rows: list[dict[str, Any]]) -> list[str]:
    out = ["      n  committed tx/s  ceiling tx/s  ratio  p50 ms  p99 ms  view changes  ok"]
    for r in sorted(rows, key=lambda r: r["nodes"]):
        out.append(
            f"  {r['nodes']:>5}  {r['committed_tps']:>14,.0f}  {r['ceiling_tps']:>12,.0f}"
            f"  {r['ratio']:>5.2f}  {r['p50_ms']:>6,.0f}  {r['p99_ms']:>6,.0f}"
            f"  {r['view_changes']:>12}  {'yes' if r['ok'] else 'NO'}"
        )
    return out


def live_question(rows: list[dict[str, Any]]) -> str:
    sizes = " or ".join(str(r["nodes"]) for r in sorted(rows, key=lambda r: r["nodes"]))
    return f"Which cluster size committed more transactions per second: {sizes}?"


def live_answer(rows: list[dict[str, Any]]) -> Answer:
    best = max(rows, key=lambda r: r["committed_tps"])
    smallest = min(r["nodes"] for r in rows)
    cores = rows[0].get("cores")
    why = [
        ", ".join(f"n = {r['nodes']}: {r['committed_tps']:,.0f} tx/s" for r in rows)
        + f" in this run: n = {best['nodes']} was faster"
        + (
            ", as expected."
            if best["nodes"] == smallest
            else ". Measure, do not assume: a short closed-loop run like this is bounded by "
            "latency and by the client (it submits to every node, so more nodes take "
            "submissions in parallel) more than by consensus work, and one run on a shared "
            "machine is noisy; a longer sweep (--txs 20000 --repeat 3) shows whether and "
            "where the consensus cost takes over."
        ),
        f"All the nodes share this machine's {cores} core(s) and every node executes every "
        "transaction, so the ceiling (the ceiling tx/s column: cores / (n x the work of one "
        "tx)) already falls as 1/n; the ratio to it is what consensus itself costs.",
        "On top of that each block costs 2n^2 - n - 1 messages, each vote a signature to "
        "check: more sealers buy more fault tolerance, not more throughput.",
    ]
    return number(int(best["nodes"]), why)


LIVE = Live(
    command=live_command,
    run=lambda seed, say: live_rows(seed, say),  # looked up at call time (tests stub it)
    look=live_look,
    question=live_question,
    answer=live_answer,
    kind="number",
)


EXERCISE = Exercise(
    number=9,
    title="Throughput against n",
    intro=f"The same {BLOCKS}-block workload on {', '.join(map(str, SIZES))} sealers: "
    "messages per block, simulated commit latency and the CPU time it took.",
    commands=lambda seed: [
        f"ledgerlab sim --nodes {n} --blocks {BLOCKS} --seed {seed}" for n in SIZES
    ],
    scenario=scenario,
    sweep=sweep,
    look=look,
    question=question,
    answer=answer,
    kind="number",
    think="A consortium can run many observers beside a few sealers. Why does an observer "
    "(it receives the votes but casts none) cost the sealers so much less than one more "
    "sealer?",
    reading=("docs/performance.md#cluster-throughput", "docs/consensus.md#protocol"),
    live=LIVE,
    predict=True,
)
