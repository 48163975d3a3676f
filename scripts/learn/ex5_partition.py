"""Exercise 5: partition f + 1 nodes away: safety over liveness."""

from __future__ import annotations

from consensus.quorum import quorum
from consensus.sim import PartitionSpec, Scenario
from scripts.learn import facts
from scripts.learn.exercise import Answer, Exercise, Run, number
from scripts.learn.look import heights, invariants

HEAL_MS = 3000.0


def start_ms(seed: int) -> float:
    """When the network splits: 700 ms for seed 1; other seeds move it (and the answer)."""
    return (900.0, 700.0, 300.0, 500.0)[seed % 4]


def scenario(seed: int) -> Scenario:
    return Scenario(
        nodes=4,
        blocks=8,
        seed=seed,
        tx_interval_ms=200,
        partitions=[PartitionSpec([[0, 1], [2, 3]], start_ms(seed), HEAL_MS)],
    )


def _window(run: Run) -> tuple[float, float]:
    p = run.main.scenario.partitions[0]
    return p.start_ms * 1000, (p.heal_ms or 0.0) * 1000


def look(run: Run) -> list[str]:
    start, heal = _window(run)
    changes = [x for x in facts.view_changes_started(run.records) if start <= x[0] < heal]
    out = ["Commits before, during and after the partition (time, node, height, view):"]
    last_phase = None
    for c in facts.commits(run.records):
        phase = "before" if c["t"] < start else "during" if c["t"] < heal else "after"
        if phase != last_phase:
            out.append(f"  -- {phase} the partition")
            last_phase = phase
        out.append(
            f"  {facts.ms(c['t']):>10}  node {c['node']} height {c['height']} view {c['view']}"
        )
    out.append(f"ViewChanges broadcast during the partition: {len(changes)}")
    return [*out, *heights(run.main), *invariants(run.main)]


def question(run: Run) -> str:
    p = run.main.scenario.partitions[0]
    groups = " and ".join("{" + ",".join(map(str, g)) + "}" for g in p.groups)
    return (
        f"The network split into {groups} from {p.start_ms:.0f} ms to {p.heal_ms:.0f} ms. "
        "What is the highest height any node committed before the partition healed?"
    )


def answer(run: Run) -> Answer:
    start, heal = _window(run)
    n = run.main.scenario.nodes
    groups = run.main.scenario.partitions[0].groups
    stalled = facts.highest_commit_before(run.records, heal)
    during = [c for c in facts.commits(run.records) if start <= c["t"] < heal]
    after = facts.first_commit_after(run.records, heal)
    biggest = max(len(g) for g in groups)
    why = [
        f"Each side has at most {biggest} nodes, fewer than the quorum of {quorum(n)}: no "
        "side can prepare, commit or even complete a view change on its own.",
        f"So the chain stood at height {stalled}: "
        + (
            "nothing committed during the partition."
            if not during
            else "the last commits during it finished rounds begun before ("
            + ", ".join(f"node {c['node']} height {c['height']}" for c in during)
            + ")."
        ),
    ]
    if after is not None:
        why.append(
            f"After the heal, height {after['height']} committed at {facts.ms(after['t'])} "
            f"in view {after['view']}: liveness came back, and agreement never broke."
        )
    why.append(
        "PBFT chooses safety over liveness: under a partition it stops rather than let "
        "two sides commit different blocks."
    )
    return number(stalled, why)


EXERCISE = Exercise(
    number=5,
    title="Partition f + 1 nodes: safety over liveness",
    intro="From 700 ms (seed 1) to 3000 ms nodes {0,1} and {2,3} cannot talk. Neither half is a "
    "quorum, so the chain stops, and resumes when the network heals.",
    commands=lambda seed: [
        "ledgerlab sim --nodes 4 --blocks 8 --tx-interval-ms 200 "
        f"--partition '0,1|2,3@{start_ms(seed):.0f}-{HEAL_MS:.0f}' --seed {seed}"
    ],
    scenario=scenario,
    look=look,
    question=question,
    answer=answer,
    kind="number",
    think="A blockchain that keeps committing on both sides of a partition is available "
    "but can fork (CAP). Which would your consortium rather have, and when?",
    reading=("docs/consensus.md#protocol", "docs/consensus.md#view-change"),
)
