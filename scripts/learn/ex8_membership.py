"""Exercise 8: add a sealer and remove one (consortium operations)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from consensus.quorum import quorum
from consensus.sim import Scenario
from consensus.sim.scenario import LEADER, MembershipChange
from scripts.learn.exercise import Answer, Exercise, Run, node_count, nodes

ADD_AT = 3


def remove_at(seed: int) -> int:
    """The block that removes its proposer: 6 for seed 1, 7 for seed 2, ..."""
    return 6 + (seed - 1) % 2


def scenario(seed: int) -> Scenario:
    return Scenario(
        nodes=5,
        sealers=4,
        blocks=8,
        seed=seed,
        membership=[
            MembershipChange(ADD_AT, "add", 4),
            MembershipChange(remove_at(seed), "remove", LEADER),
        ],
    )


def _lists(run: Run) -> list[dict[str, Any]]:
    return list(run.summary["sealer_lists"])


def look(run: Run) -> list[str]:
    out = ["The sealer lists along the chain:"]
    for x in _lists(run):
        members = x["sealers"]
        out.append(
            f"  from height {x['from_height']}: {members} (n = {len(members)}, quorum "
            f"{quorum(len(members))})"
        )
    out.append("Who proposed each block (node, view):")
    for height, (proposer, view) in sorted(proposers(run).items()):
        out.append(f"  height {height}: node {proposer}, view {view}")
    last = set(_lists(run)[-1]["sealers"])
    out.append("At the end:")
    for n in run.summary["per_node"]:
        role = "sealer" if n["index"] in last else "observer"
        out.append(f"  node {n['endpoint']}: {role:<8} height {n['committed_height']}")
    return out


def proposers(run: Run) -> dict[int, tuple[int, int]]:
    """height -> (proposer, view) of the blocks on the longest honest chain."""
    sim = run.main.sim
    chain = max((n.chain for n in sim.honest_nodes()), key=len)
    out = {}
    for b in chain:
        origin = sim.proposed.get(b.proposal.digest)
        if origin is not None:
            out[b.height] = (origin[0], b.seal.view)
    return out


def question(run: Run) -> str:
    at = max(c.height for c in run.main.scenario.membership)
    return (
        f"Block {at} removed its own proposer from the sealers ('remove:leader@{at}'). "
        "Which node was removed?"
    )


def answer(run: Run) -> Answer:
    lists = _lists(run)
    removed: set[int] = set()
    why = []
    for before, after in pairwise(lists):
        old, new = set(before["sealers"]), set(after["sealers"])
        h = int(after["from_height"])
        if new - old:
            why.append(
                f"Block {h - 1} (on a live chain: a governance tx calling addSealer) made node(s) "
                f"{sorted(new - old)} sealers from height {h}: n = {len(new)}, quorum "
                f"{quorum(len(new))}. Until then they followed the chain as observers."
            )
        if old - new:
            removed |= old - new
            who = proposers(run).get(h - 1)
            led = f" proposed in view {who[1]} by node {who[0]}" if who else ""
            why.append(
                f"Block {h - 1}{led} removed node(s) {sorted(old - new)}: from "
                f"height {h} the list is {sorted(new)}, n = {len(new)}, quorum "
                f"{quorum(len(new))}. The removed node goes on as an observer."
            )
    why.append(
        "Every node derives the new list from the block itself, so the change takes effect "
        "at the same height everywhere, whether the block came by voting or by sync."
    )
    return nodes(removed, why, node_count(run))


EXERCISE = Exercise(
    number=8,
    title="Add a sealer and remove one (consortium operations)",
    intro="Five nodes, four of them sealers; node 4 is an observer. Block 3 makes node 4 a "
    "sealer; block 6 (seed 1) removes whoever proposed it. Watch n, f and the quorum follow.",
    commands=lambda seed: [
        f"ledgerlab sim --nodes 5 --sealers 4 --membership add:4@{ADD_AT} "
        f"--membership remove:leader@{remove_at(seed)} --blocks 8 --seed {seed}"
    ],
    scenario=scenario,
    look=look,
    question=question,
    answer=answer,
    kind="nodes",
    think="Going from 4 to 5 sealers raised the quorum from 3 to 4 but f stayed 1. When is "
    "adding a sealer worth it, and why does governance refuse a change that would leave "
    "more faulty sealers than the new list tolerates?",
    reading=("docs/governance.md", "docs/consensus.md#membership-changes"),
)
