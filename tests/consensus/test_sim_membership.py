"""Membership changes in the simulator: the checker's invariants hold across them.

Each scenario names what it stresses: removing the current leader, adding a node that is
cut off, changing the list during a view change, renumbering every sealer, a node that
syncs across several changes, and Byzantine behaviours and Twins while the list changes.
"""

from __future__ import annotations

import pytest

from consensus.sim import check_all, random_scenario, run_scenario
from consensus.sim.engine import Simulation
from consensus.sim.scenario import (
    LEADER,
    CrashSpec,
    DropRule,
    MembershipChange,
    PartitionSpec,
    Scenario,
    ScenarioError,
    from_dict,
    parse_membership,
)


def run(s: Scenario) -> Simulation:
    sim = run_scenario(s)
    bad = [f"{r.name}: {r.detail}" for r in check_all(sim) if not r.ok]
    assert not bad, bad
    return sim


def lists(sim: Simulation) -> list[tuple[int, ...]]:
    """The distinct sealer lists along the longest honest chain, in order."""
    chain = max((n.chain for n in sim.honest_nodes()), key=len)
    out = [sim.scenario.initial_sealers()]
    for b in chain:
        if b.sealers != out[-1]:
            out.append(b.sealers)
    return out


def signers(sim: Simulation, height: int) -> set[int]:
    """Run indices of the nodes whose signatures seal ``height``."""
    node = max(sim.honest_nodes(), key=lambda n: n.height)
    block = node.chain[height - 1]
    in_force = node.chain[height - 2].sealers if height > 1 else sim.scenario.initial_sealers()
    return {in_force[i] for i, _ in block.seal.signatures}


def scenario(**kw: object) -> Scenario:
    base: dict[str, object] = dict(nodes=5, sealers=4, blocks=14, seed=7, txs_per_block=3)
    base.update(kw)
    return Scenario(**base)  # type: ignore[arg-type]


def test_add_then_remove_the_current_leader() -> None:
    s = scenario(membership=[MembershipChange(3, "add", 4), MembershipChange(7, "remove", LEADER)])
    sim = run(s)
    got = lists(sim)
    assert got[:2] == [(0, 1, 2, 3), (0, 1, 2, 3, 4)]
    assert len(got) == 3 and len(got[2]) == 4
    block7 = max(sim.honest_nodes(), key=lambda n: n.height).chain[6]
    proposer = sim.proposed[block7.proposal.digest]
    assert proposer[0] not in got[2]  # the leader of block 7 is the one removed
    assert any(4 in signers(sim, h) for h in range(4, 8))  # the new sealer signs seals


def test_renumbering_every_sealer_by_removing_sealer_zero() -> None:
    sim = run(scenario(nodes=4, sealers=4, membership=[MembershipChange(2, "remove", 0)]))
    assert lists(sim) == [(0, 1, 2, 3), (1, 2, 3)]
    for node in sim.nodes:
        assert node.replica is not None
        assert node.replica.index == (None if node.index == 0 else node.index - 1)


def test_adding_a_node_while_it_is_partitioned() -> None:
    """4 of the 5 sealers can still form the quorum of 4; the cut-off one catches up."""
    s = scenario(
        membership=[MembershipChange(2, "add", 4)],
        partitions=[PartitionSpec([[4]], 0.0, 4000.0)],
    )
    sim = run(s)
    assert lists(sim) == [(0, 1, 2, 3), (0, 1, 2, 3, 4)]
    assert sim.nodes[4].height == s.blocks


def test_changing_the_list_during_a_view_change() -> None:
    """Commits are dropped around the boundary block, so the change commits in a later
    view, and the first height under the new list starts mid view change."""
    s = scenario(
        membership=[MembershipChange(4, "add", 4), MembershipChange(5, "remove", 1)],
        drop_rules=[DropRule(kinds=("Commit",), start_ms=200.0, end_ms=2500.0)],
        timeout_ms=500.0,
    )
    sim = run(s)
    assert lists(sim) == [(0, 1, 2, 3), (0, 1, 2, 3, 4), (0, 2, 3, 4)]
    assert max(n.replica.counters.view_changes for n in sim.nodes if n.replica) > 0


def test_a_node_down_across_several_changes_syncs_verifying_every_seal() -> None:
    s = scenario(
        nodes=6,
        sealers=4,
        membership=[
            MembershipChange(3, "add", 4),
            MembershipChange(5, "remove", 0),
            MembershipChange(7, "add", 5),
            MembershipChange(9, "remove", 2),
        ],
        crashes=[CrashSpec(3, 100.0, 6000.0)],
        blocks=16,
    )
    sim = run(s)
    assert len(lists(sim)) == 5
    lagger = sim.nodes[3]
    assert lagger.height == s.blocks and any(b.synced for b in lagger.chain)
    assert sim.sync_failures == 0


@pytest.mark.parametrize("behaviour", ["equivocate", "double-vote", "bad-signature", "spam"])
def test_byzantine_sealers_while_the_list_changes(behaviour: str) -> None:
    s = scenario(
        nodes=6,
        sealers=4,
        byzantine={1: behaviour},
        membership=[
            MembershipChange(2, "add", 4),
            MembershipChange(4, "remove", 0),
            MembershipChange(6, "add", 5),
        ],
    )
    run(s)


def test_twins_while_the_list_changes() -> None:
    s = scenario(
        nodes=6,
        sealers=4,
        byzantine={2: "twins"},
        membership=[MembershipChange(3, "add", 4), MembershipChange(5, "remove", 0)],
    )
    run(s)


def test_removing_a_byzantine_sealer_then_shrinking_to_one() -> None:
    s = scenario(
        nodes=4,
        sealers=4,
        byzantine={3: "equivocate"},
        membership=[
            MembershipChange(2, "remove", 3),
            MembershipChange(4, "remove", 0),
            MembershipChange(6, "remove", 1),
            MembershipChange(8, "remove", 2),  # the last sealer: refused, nothing changes
        ],
    )
    sim = run(s)
    assert lists(sim) == [(0, 1, 2, 3), (0, 1, 2), (1, 2), (2,)]


def test_growing_from_one_sealer() -> None:
    s = scenario(
        nodes=4,
        sealers=1,
        membership=[MembershipChange(2, "add", 1), MembershipChange(3, "add", 2)],
    )
    sim = run(s)
    assert lists(sim) == [(0,), (0, 1), (0, 1, 2)]


def test_a_seed_reproduces_a_run_with_changes_exactly() -> None:
    def trace(seed: int) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        s = scenario(seed=seed, membership=[MembershipChange(3, "add", 4)])
        run_scenario(s, trace=out.append)
        return out

    assert trace(5) == trace(5)
    assert trace(5) != trace(6)


def test_membership_from_toml_and_flags() -> None:
    s = from_dict(
        {
            "nodes": 5,
            "sealers": 4,
            "membership": [
                {"height": 2, "op": "add", "node": 4},
                {"height": 3, "op": "remove", "node": "leader"},
            ],
        }
    )
    assert [(c.height, c.op, c.node) for c in s.membership] == [(2, "add", 4), (3, "remove", -1)]
    assert parse_membership("remove:leader@5") == MembershipChange(5, "remove", LEADER)
    with pytest.raises(ScenarioError):
        parse_membership("add:x@1")
    with pytest.raises(ScenarioError):
        Scenario(nodes=4, membership=[MembershipChange(1, "add", 9)]).validate()
    with pytest.raises(ScenarioError):
        Scenario(nodes=4, membership=[MembershipChange(1, "add", LEADER)]).validate()


def test_the_ci_sweep_includes_at_least_100_seeds_with_changes() -> None:
    from tests.consensus.test_sim_random import SEEDS

    with_changes = sum(1 for seed in range(SEEDS) if random_scenario(seed).membership)
    assert with_changes >= 100
