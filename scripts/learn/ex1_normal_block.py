"""Exercise 1: one normal block on 4 nodes (PrePrepare, Prepare, Commit)."""

from __future__ import annotations

from consensus.quorum import max_faulty, quorum
from consensus.sim import Scenario
from scripts.learn import facts
from scripts.learn.exercise import Answer, Exercise, Run, number
from scripts.learn.look import node_steps

WATCHED = 2
HEIGHT = 1


def scenario(seed: int) -> Scenario:
    return Scenario(nodes=4, blocks=1, seed=seed)


def look(run: Run) -> list[str]:
    return [
        f"Node {WATCHED}'s steps at height {HEIGHT} (its column in the diagram):",
        *node_steps(run.records, WATCHED, HEIGHT),
    ]


def question(run: Run) -> str:
    return (
        f"When node {WATCHED} became prepared at height {HEIGHT}, how many matching "
        "Prepares did it hold (its own included)?"
    )


def answer(run: Run) -> Answer:
    at = facts.prepared_at(run.records, WATCHED, HEIGHT)
    n = run.main.scenario.nodes
    q, f = quorum(n), max_faulty(n)
    if at is None:
        return number(0, [f"node {WATCHED} never became prepared at height {HEIGHT}"])
    why = [
        f"At {facts.ms(at.t_us)} node {WATCHED} became prepared in view {at.view}, holding "
        f"Prepares for block {at.block} from nodes {', '.join(map(str, sorted(at.senders)))}: "
        f"{len(at.senders)} of them.",
        f"With n = {n} sealers, f = (n - 1) // 3 = {f} and the quorum is n - f = {q}: "
        "two quorums always share f + 1 nodes, so at least one honest node is in both.",
    ]
    if len(at.senders) > q:
        why.append(
            "It held more than the quorum: Prepares that arrive before a node has executed "
            "the proposal itself wait in its round; it becomes prepared only when its own "
            "execution gives the same block hash, and then all of them count."
        )
    why.append(
        "Being prepared, it persisted the certificate (view, block, Prepare signatures) "
        "BEFORE broadcasting its Commit: after a crash it must not vote for anything else."
    )
    return number(len(at.senders), why)


EXERCISE = Exercise(
    number=1,
    title="A normal block on 4 nodes",
    intro="Four sealers, no faults. The leader of height 1 (view 0) proposes a block; "
    "everyone executes it, votes Prepare, then Commit, and commits it with a seal of "
    "Commit signatures.",
    commands=lambda seed: [f"ledgerlab sim --nodes 4 --blocks 1 --seed {seed} --explain 1"],
    scenario=scenario,
    look=look,
    diagram=lambda run: ("height", HEIGHT),
    question=question,
    answer=answer,
    kind="number",
    think="Why does a node execute the block before it votes Prepare, and what would go "
    "wrong if it voted for a block it had not executed?",
    reading=("docs/consensus.md#protocol",),
)
