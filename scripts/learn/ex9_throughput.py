"""Exercise 9: throughput against n -- what each added sealer costs every block."""

from __future__ import annotations

from consensus.quorum import max_faulty, quorum
from consensus.sim import Scenario
from scripts.learn.exercise import Answer, Exercise, Run, SimRun, number

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
        "      n   f  quorum  msgs/block (PrePrepare + Prepare + Commit)  "
        "commit p50 (sim)  CPU ms/block",
    ]
    for r in run.runs:
        n = r.scenario.nodes
        m = r.summary["messages_per_block"]
        parts = " + ".join(f"{m.get(k, 0):g}" for k in ("PrePrepare", "Prepare", "Commit"))
        p50 = r.summary["commit_latency_ms"]["p50"]
        blocks = max(1, r.summary["blocks_committed"])
        out.append(
            f"  {n:>5} {max_faulty(n):>3} {quorum(n):>7}  {per_block(r):>10g} ({parts})"
            f"{'':<10}{p50 or 0:>10.1f} ms  {r.cpu_s * 1000 / blocks:>12.1f}"
        )
    return out


def _asked(run: Run) -> SimRun:
    return next(r for r in run.runs if r.scenario.nodes == ASKED)


def question(run: Run) -> str:
    return (
        f"The table hides nothing, but predict it first: how many network messages does "
        f"one block cost with n = {ASKED} sealers? (within 10 %)"
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
)
