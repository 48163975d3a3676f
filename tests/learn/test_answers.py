"""Every exercise's expected answer is computed from the run it asks about.

For each exercise: its answer on its own run agrees with a second, independent reading of
the same run (the simulator's state, the replica's own vote tables, the Byzantine marks),
and a changed scenario changes the expected answer accordingly. Each run is a fraction
of a second.
"""

from __future__ import annotations

import dataclasses
import shlex

import pytest

from consensus.quorum import leader_of
from consensus.replica import Replica
from consensus.sim import CrashSpec, NetworkSpec, PartitionSpec, Scenario, Simulation
from consensus.sim.scenario import LEADER, MembershipChange
from consensus.sim.trace import Recorder
from scripts.cli import build_parser
from scripts.commands.sim import build_scenario
from scripts.learn import EXERCISES, facts
from scripts.learn import ex1_normal_block as ex1
from scripts.learn import ex2_why_3f1 as ex2
from scripts.learn import ex3_leader_crash as ex3
from scripts.learn import ex4_equivocation as ex4
from scripts.learn import ex5_partition as ex5
from scripts.learn import ex6_block_sync as ex6
from scripts.learn import ex7_break_safety as ex7
from scripts.learn import ex8_membership as ex8
from scripts.learn import ex9_throughput as ex9
from scripts.learn.exercise import AnswerError, Run, parse, simulate


def run_of(*scenarios: Scenario) -> Run:
    return Run([simulate(s) for s in scenarios])


def test_nine_exercises_in_order() -> None:
    assert [e.number for e in EXERCISES] == list(range(1, 10))


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: str(e.number))
def test_the_printed_command_is_the_run(ex) -> None:  # type: ignore[no-untyped-def]
    """The command shown (and in docs/tutorial.md) builds exactly the exercise's scenario."""
    parser = build_parser()
    for seed in (1, 2, 3):
        expected = ex.sweep(seed) if ex.sweep is not None else [ex.scenario(seed)]
        built = []
        for command in ex.commands(seed):
            argv = shlex.split(command)
            assert argv[:2] == ["ledgerlab", "sim"], command
            built.append(build_scenario(parser.parse_args(argv[1:])))
        assert built == expected


@pytest.mark.parametrize("ex", EXERCISES, ids=lambda e: str(e.number))
def test_own_answer_is_accepted_and_a_wrong_one_is_not(ex) -> None:  # type: ignore[no-untyped-def]
    run = ex.run()
    answer = ex.answer(run)
    assert answer.kind == ex.kind
    assert answer.accepts(answer.shown.split(" ")[0].rstrip(","))
    wrong = {"number": "999", "nodes": "0,1,2,3", "word": "integrity"}[ex.kind]
    assert not answer.accepts(wrong)
    assert answer.why and ex.look(run) and ex.question(run)


class CountingReplica(Replica):
    """Records, as the replica itself sees it, how many Prepares it held when prepared."""

    held: dict[tuple[int, int], int] = {}

    def _on_prepared(self, r, key):  # type: ignore[no-untyped-def]
        if self._me is not None:
            CountingReplica.held.setdefault((self._me, self._height), len(r.prepares[key]))
        super()._on_prepared(r, key)


@pytest.mark.parametrize(
    ("nodes", "exec_ms", "seed"), [(4, 2.0, 1), (4, 40.0, 2), (7, 2.0, 3), (7, 40.0, 1)]
)
def test_ex1_prepares_held_match_the_replicas_own_tables(
    nodes: int, exec_ms: float, seed: int
) -> None:
    CountingReplica.held = {}
    rec = Recorder()
    s = Scenario(
        nodes=nodes, blocks=1, seed=seed, exec_ms=exec_ms, network=NetworkSpec(jitter_ms=30.0)
    )
    Simulation(s, trace=rec, replica_factory=CountingReplica).run()
    for node in range(nodes):
        at = facts.prepared_at(rec.records, node, 1)
        assert at is not None
        assert len(at.senders) == CountingReplica.held[(node, 1)], node


def test_ex1_answer_follows_the_cluster() -> None:
    slow = run_of(
        Scenario(nodes=4, blocks=1, seed=7, exec_ms=40.0, network=NetworkSpec(jitter_ms=30.0))
    )
    seven = run_of(Scenario(nodes=7, blocks=1, seed=1))
    assert ex1.answer(run_of(ex1.scenario(1))).value == 3
    assert ex1.answer(slow).value == 4  # Prepares queued while node 2 was still executing
    assert ex1.answer(seven).value == 5


def test_ex2_stop_height_is_the_runs() -> None:
    early = dataclasses.replace(ex2.scenario(1), crashes=[CrashSpec(2, 250.0, None)])
    for s in (ex2.scenario(1), early):
        run = run_of(s)
        truth = max(n.height for n in run.main.sim.nodes)
        assert ex2.answer(run).value == truth
    assert ex2.answer(run_of(early)).value < ex2.answer(run_of(ex2.scenario(1))).value


def test_ex3_new_leader_follows_the_crashed_node() -> None:
    other = dataclasses.replace(ex3.scenario(1), crashes=[CrashSpec(2, 0.0, None)])
    assert ex3.answer(run_of(ex3.scenario(1))).value == {leader_of(1, 1, 4)}
    # node 2 leads height 2: the view change happens there, and view 1's leader of height 2
    assert ex3.answer(run_of(other)).value == {leader_of(1, 2, 4)} == {3}


@pytest.mark.parametrize(("nodes", "liar"), [(4, 3), (7, 2), (7, 5)])
def test_ex4_answer_matches_the_byzantine_mark(nodes: int, liar: int) -> None:
    run = run_of(Scenario(nodes=nodes, blocks=nodes, seed=1, byzantine={liar: "equivocate"}))
    h = next(h for h in range(1, nodes + 1) if leader_of(0, h, nodes) == liar)
    mark = next(
        r
        for r in run.records
        if r["ev"] == "byzantine" and r["type"] == "PrePrepare" and r["height"] == h
    )
    honest_version = next(v for v in mark["versions"] if v["honest"])
    assert ex4.answer(run).value == set(honest_version["to"])


def test_ex4_answer_changes_with_the_cluster() -> None:
    a = ex4.answer(run_of(ex4.scenario(1))).value
    b = ex4.answer(run_of(Scenario(nodes=7, blocks=3, seed=1, byzantine={2: "equivocate"}))).value
    assert a != b


def test_ex5_stall_height_is_read_from_the_chains() -> None:
    earlier = dataclasses.replace(
        ex5.scenario(1), partitions=[PartitionSpec([[0, 1], [2, 3]], 250.0, 3000.0)]
    )
    values = []
    for s in (ex5.scenario(1), earlier):
        run = run_of(s)
        heal_us = s.partitions[0].heal_ms * 1000  # type: ignore[operator]
        truth = max(sum(1 for b in n.chain if b.time_us < heal_us) for n in run.main.sim.nodes)
        assert ex5.answer(run).value == truth
        values.append(truth)
    assert values[1] < values[0]


def test_ex6_catch_up_height_is_the_last_synced_block() -> None:
    values = []
    for restart in (2500.0, 3500.0):
        s = dataclasses.replace(ex6.scenario(1), crashes=[CrashSpec(3, 300.0, restart)])
        run = run_of(s)
        truth = max(b.height for b in run.main.sim.nodes[3].chain if b.synced)
        assert ex6.answer(run).value == truth
        values.append(truth)
    assert values[0] != values[1]


def test_ex7_accepts_what_the_checker_failed_and_nothing_else() -> None:
    answer = ex7.answer(ex7.Run(ex7_runs := [simulate(s) for s in ex7.sweep(1)]))
    failed = {k for k, r in ex7_runs[0].summary["invariants"].items() if not r["ok"]}
    assert {"agreement", "liveness"} <= failed and answer.value == {"agreement"}
    assert not answer.accepts("integrity")
    assert not answer.accepts("liveness"), "liveness failed too, but it is not safety"
    assert "SAFETY" in ex7.question(ex7.Run(ex7_runs))
    other = Scenario(
        nodes=4,
        blocks=5,
        seed=1,
        break_rule="small-quorum",
        partitions=[PartitionSpec([[0, 1]], 0.0, 3000.0)],
    )
    small = ex7.answer(run_of(other, ex7.scenario(1, None)))
    assert small.value == {
        k
        for k, r in simulate(other).summary["invariants"].items()
        if not r["ok"] and k in ex7.SAFETY
    }
    assert small.value != answer.value


def test_ex8_removed_node_is_the_proposer_of_the_block() -> None:
    values = []
    for at in (6, 5):
        s = dataclasses.replace(
            ex8.scenario(1),
            membership=[MembershipChange(3, "add", 4), MembershipChange(at, "remove", LEADER)],
        )
        run = run_of(s)
        sim = run.main.sim
        block = sim.nodes[0].chain[at - 1]
        proposer = sim.proposed[block.proposal.digest][0]
        assert ex8.answer(run).value == {proposer}
        values.append(proposer)
    assert values[0] != values[1]


def test_ex9_messages_per_block_are_counted_not_assumed() -> None:
    plain = run_of(ex9.scenario(1, 10))
    crashed = run_of(dataclasses.replace(ex9.scenario(1, 10), crashes=[CrashSpec(9, 0.0, None)]))
    for run in (plain, crashed):
        sim = run.main.sim
        truth = sum(sim.net_messages.values()) / max(n.height for n in sim.nodes)
        assert ex9.answer(run).value == round(truth)
    assert ex9.answer(plain).value == 2 * 10 * 10 - 10 - 1
    assert ex9.answer(crashed).value != ex9.answer(plain).value


@pytest.mark.parametrize(
    ("text", "value"),
    [("height 4", 4), ("Height 4", 4), ("view 1", 1), ("block 6", 6), ("189 messages", 189)],
)
def test_a_number_may_carry_its_unit_word(text: str, value: int) -> None:
    assert parse("number", text) == value


def test_a_node_outside_the_run_is_unreadable_not_wrong() -> None:
    answer = ex3.answer(ex3.EXERCISE.run())
    assert answer.count == 4 and answer.accepts("node 2")
    for text in ("99", "node 99", "2, 4"):
        with pytest.raises(AnswerError, match="nodes 0-3"):
            answer.accepts(text)
