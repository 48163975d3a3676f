"""Exercise 4: an equivocating leader cannot split the honest nodes."""

from __future__ import annotations

from consensus.quorum import leader_of, quorum
from consensus.sim import Scenario
from scripts.learn import facts
from scripts.learn.exercise import Answer, Exercise, Run, node_count, nodes
from scripts.learn.look import invariants

LIAR = 3
HEIGHT = 3
"""Node 3 leads height 3 in view 0 ((0 + 3) % 4)."""


def scenario(seed: int) -> Scenario:
    return Scenario(nodes=4, blocks=4, seed=seed, byzantine={LIAR: "equivocate"})


def _liar(run: Run) -> int:
    return next(iter(run.main.scenario.byzantine))


def _height(run: Run) -> int:
    """The first height the equivocating node leads in view 0."""
    n = run.main.scenario.nodes
    return next(h for h in range(1, n + 1) if leader_of(0, h, n) == _liar(run))


def look(run: Run) -> list[str]:
    liar, h = _liar(run), _height(run)
    got = facts.proposals_received(run.records, liar, h, 0)
    out = [f"Height {h}, view 0: the proposal each node got from node {liar}, and its vote:"]
    for node in sorted(got):
        vote = facts.own_prepare(run.records, node, h, 0)
        out.append(f"  node {node}: got {got[node]}, voted Prepare for {vote or 'nothing'}")
    out.append(f"  node {liar} (the leader) voted for {facts.own_prepare(run.records, liar, h, 0)}")
    view = facts.committed_view(run.records, h)
    out.append(f"Height {h} committed in view {view}." if view is not None else "Not committed.")
    return [*out, *invariants(run.main)]


def question(run: Run) -> str:
    return (
        f"Node {_liar(run)} sent two different proposals for height {_height(run)}. Which "
        "honest node(s) received the proposal node "
        f"{_liar(run)} itself voted for? (e.g. '0' or '0,2')"
    )


def answer(run: Run) -> Answer:
    liar, h = _liar(run), _height(run)
    n = run.main.scenario.nodes
    got = facts.proposals_received(run.records, liar, h, 0)
    mine = facts.own_prepare(run.records, liar, h, 0)
    same = {node for node, p in got.items() if p == mine}
    other = {node for node, p in got.items() if p != mine}
    other_p = {got[x] for x in other}
    q = quorum(n)
    votes_mine = len(same) + 1
    why = [
        f"Node {liar} voted for proposal {mine} and sent it to node(s) "
        f"{', '.join(map(str, sorted(same))) or 'none'}; node(s) "
        f"{', '.join(map(str, sorted(other))) or 'none'} got {', '.join(sorted(other_p))}.",
        f"Votes: {votes_mine} Prepares for {mine} (the liar's own included), "
        f"{len(other)} for the other; a quorum is {q}.",
    ]
    view = facts.committed_view(run.records, h)
    if votes_mine >= q or len(other) >= q:
        why.append(
            "One side still reached a quorum: the other side can never reach one for its "
            "proposal too (two quorums share an honest node, which votes once)."
        )
    else:
        why.append(
            f"Neither reached the quorum ({votes_mine} and {len(other)} < {q}), and no split "
            "could give both one: quorums for the two would need an honest node voting for "
            "both, and an honest node votes once per view."
        )
    if view is not None:
        why.append(
            f"Height {h} committed in view {view}, one block on every honest node; the "
            f"checker: agreement {run.summary['invariants']['agreement']['status']}."
        )
    return nodes(same, why, node_count(run))


EXERCISE = Exercise(
    number=4,
    title="An equivocating leader cannot split honest nodes",
    intro="Node 3 is Byzantine: as the leader of height 3 it sends one proposal to some "
    "peers and a different, validly signed one to the others. Watch the votes split and "
    "the view change that follows.",
    commands=lambda seed: [
        f"ledgerlab sim --nodes 4 --faulty 1 --fault equivocate --blocks 4 --seed {seed} "
        "--explain 3"
    ],
    scenario=scenario,
    look=look,
    diagram=lambda run: ("height", _height(run)),
    question=question,
    answer=answer,
    kind="nodes",
    think="The honest nodes never saw both proposals, yet nothing forked. What would an "
    "honest node need to see to PROVE that node 3 equivocated (and could that proof be "
    "sent to the consortium's governance)?",
    reading=("docs/consensus.md#message-hygiene", "docs/consensus.md#view-change"),
)
