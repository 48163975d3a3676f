"""Exercise 3: kill the leader, watch the view change."""

from __future__ import annotations

from typing import Any

from consensus.quorum import leader_of, quorum
from consensus.sim import CrashSpec, Scenario
from scripts.learn import facts
from scripts.learn.exercise import Answer, Exercise, Run, node_count, nodes


def down(seed: int) -> int:
    """The node that is down: node 1 (the leader of height 1 in view 0) for seed 1; the
    seed picks another leader, and so another view change, for other seeds."""
    return seed % 4


def scenario(seed: int) -> Scenario:
    return Scenario(nodes=4, blocks=6, seed=seed, crashes=[CrashSpec(down(seed), 0.0, None)])


def _first_change(run: Run) -> tuple[int, int, int] | None:
    """(node, height, time) of the NewView of view 1."""
    return facts.new_view_sender(run.records, 1)


def look(run: Run) -> list[str]:
    """ViewChanges (each node's first for each view), NewViews and the commits, in time."""
    steps = [
        (t, f"node {node} asks for view {view} at height {height} (ViewChange)")
        for t, node, view, height in facts.view_changes_started(run.records)
    ]
    for rec in run.records:
        if rec["ev"] == "bcast" and rec.get("type") == "NewView":
            steps.append(
                (
                    rec["t"],
                    f"node {rec['node']} broadcasts NewView({rec['view']}) for height "
                    f"{rec['height']} with {rec['proofs']} ViewChanges",
                )
            )
    first: dict[int, dict[str, Any]] = {}
    for c in facts.commits(run.records):
        first.setdefault(c["height"], c)
    for h, c in first.items():
        steps.append((c["t"], f"height {h} commits (first node: {c['node']}) in view {c['view']}"))
    steps.sort(key=lambda x: x[0])
    return ["The view changes of the run, in time:"] + [
        f"  {facts.ms(t):>10}  {line}" for t, line in steps
    ]


def question(run: Run) -> str:
    return (
        f"Node {run.main.scenario.crashes[0].node} is down from the start. Which node "
        "sent the NewView that started view 1?"
    )


def answer(run: Run) -> Answer:
    s = run.main.scenario
    n = s.nodes
    nv = _first_change(run)
    if nv is None:
        return nodes(set(), ["no view change happened in this run"], node_count(run))
    sender, height, t = nv
    started = [x for x in facts.view_changes_started(run.records) if x[2] == 1]
    first_vc = min(x[0] for x in started) if started else t
    why = [
        f"Height {height} expected a PrePrepare from node {leader_of(0, height, n)} in view "
        f"0, which never came; from {facts.ms(first_vc)} the live sealers timed out "
        f"(consensus_timeout {s.timeout_ms:.0f} ms) and broadcast ViewChange(1).",
        f"The leader of height h in view v is (v + h) % n = (1 + {height}) % {n} = "
        f"{leader_of(1, height, n)}: node {sender} collected {quorum(n)} ViewChanges "
        f"(a quorum) and broadcast NewView(1) at {facts.ms(t)}.",
    ]
    nv_rec = next(
        r
        for r in run.records
        if r["ev"] == "bcast" and r.get("type") == "NewView" and r["view"] == 1
    )
    c = facts.first_commit_after(run.records, t)
    if nv_rec.get("reproposed") is None:
        how = (
            f"No ViewChange carried a prepared certificate, so the NewView re-proposed "
            f"nothing and node {sender} proposed afresh"
        )
    else:
        how = (
            f"The NewView re-proposed the block prepared in view {nv_rec['reproposed']} "
            "(it may have committed somewhere, so it is the only one that may commit)"
        )
    if c is not None:
        why.append(
            f"{how}; height {c['height']} committed in view {c['view']} at {facts.ms(c['t'])}."
        )
    why.append(
        f"The schedule keeps rotating: the run needed {run.summary['view_changes']} view "
        f"changes in all, one each time the turn came back to the dead node."
    )
    return nodes({sender}, why, node_count(run))


EXERCISE = Exercise(
    number=3,
    title="Kill the leader, watch the view change",
    intro="A sealer is down from the start (node 1 with seed 1: the leader of height 1 in "
    "view 0). When its turn to lead comes, the others wait one consensus timeout, ask for "
    "view 1, and the leader of view 1 takes over.",
    commands=lambda seed: [
        f"ledgerlab sim --nodes 4 --blocks 6 --crash {down(seed)}@0 --seed {seed} "
        f"--explain {down(seed) or 4}"
    ],
    scenario=scenario,
    look=look,
    diagram=lambda run: ("view-change", 1),
    question=question,
    answer=answer,
    kind="nodes",
    think="A slow leader and a dead one look the same from outside. What does a too short "
    "consensus_timeout cost, and what does a too long one cost?",
    reading=("docs/consensus.md#view-change",),
)
