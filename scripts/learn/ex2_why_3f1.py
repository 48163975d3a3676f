"""Exercise 2: why 3f + 1 -- three nodes cannot survive one fault, four can."""

from __future__ import annotations

from consensus.quorum import max_faulty, quorum
from consensus.sim import CrashSpec, Scenario
from scripts.learn import facts
from scripts.learn.exercise import Answer, Exercise, Run, number
from scripts.learn.look import heights, invariants


def crash_ms(seed: int) -> float:
    """When the node crashes: 700 ms for seed 1; other seeds move it (and the answer)."""
    return (900.0, 700.0, 300.0, 500.0)[seed % 4]


def scenario(seed: int, nodes: int = 3) -> Scenario:
    return Scenario(
        nodes=nodes,
        blocks=6,
        seed=seed,
        tx_interval_ms=200,
        crashes=[CrashSpec(nodes - 1, crash_ms(seed), None)],
        max_time_ms=6000,
    )


def sweep(seed: int) -> list[Scenario]:
    """The lesson's run (3 nodes) and the same fault on 4 nodes, for comparison."""
    return [scenario(seed, 3), scenario(seed, 4)]


def look(run: Run) -> list[str]:
    out = []
    for r in run.runs:
        n = r.scenario.nodes
        crash = r.scenario.crashes[0]
        out += [
            f"n = {n} (f = {max_faulty(n)}, quorum {quorum(n)}); node {crash.node} crashes at "
            f"{crash.at_ms:.0f} ms for good: {r.summary['blocks_committed']} of "
            f"{r.scenario.blocks} blocks, {r.summary['view_changes']} view changes",
            *heights(r),
            *invariants(r),
            "",
        ]
    return out[:-1]


def question(run: Run) -> str:
    crash = run.main.scenario.crashes[0]
    return (
        f"With {run.main.scenario.nodes} nodes, node {crash.node} crashed at "
        f"{crash.at_ms:.0f} ms. "
        "At which height did the chain stop?"
    )


def answer(run: Run) -> Answer:
    main = run.main
    n = main.scenario.nodes
    q, f = quorum(n), max_faulty(n)
    crash_us = main.scenario.crashes[0].at_ms * 1000
    stopped = main.summary["blocks_committed"]
    before = facts.highest_commit_before(main.records, crash_us)
    why = [
        f"n = {n} gives f = (n - 1) // 3 = {f}: the quorum n - f = {q} needs "
        + ("every node." if q == n else f"{q} of the {n} nodes."),
        f"The chain had height {before} when the node crashed; it ended at height "
        f"{stopped} of {main.scenario.blocks}, after {main.summary['view_changes']} view "
        f"changes that could not help: {n - 1} live nodes "
        + (f"are fewer than {q} votes." if n - 1 < q else f"still make {q} votes."),
    ]
    if main.summary["invariants"]["liveness"]["status"] == "skipped":
        why.append(
            "The checker skips liveness here ('not expected'): one crash is more than "
            f"f = {f} faults, so PBFT promises nothing. Safety still holds: agreement ok."
        )
    for other in run.runs[1:]:
        m = other.scenario.nodes
        why.append(
            f"With n = {m} (f = {max_faulty(m)}, quorum {quorum(m)}) the same crash left "
            f"{m - 1} live nodes and the chain committed {other.summary['blocks_committed']} "
            f"of {other.scenario.blocks} blocks. Tolerating f faults takes n >= 3f + 1."
        )
    return number(stopped, why)


EXERCISE = Exercise(
    number=2,
    title="Why 3f + 1: 3 nodes with 1 fault",
    intro="Three sealers tolerate f = 0 faults, so one crash stops the chain; the same "
    "crash on four sealers (f = 1) changes nothing. The run does both.",
    commands=lambda seed: [
        f"ledgerlab sim --nodes {n} --blocks 6 --tx-interval-ms 200 "
        f"--crash {n - 1}@{crash_ms(seed):.0f} --max-time-s 6 --seed {seed}"
        for n in (3, 4)
    ],
    scenario=scenario,
    sweep=sweep,
    look=look,
    question=question,
    answer=answer,
    kind="number",
    think="Why not make the quorum smaller, say 2 of 3, so the chain survives the crash? "
    "What could two quorums of 2 out of 3 then disagree on? (Exercise 7 breaks it.)",
    reading=("docs/consensus.md#protocol",),
)
