"""Named fault scenarios on the simulator; every run must pass the invariant checker."""

from __future__ import annotations

import pytest

from consensus.sim import (
    BEHAVIOURS,
    CrashSpec,
    DropRule,
    NetworkSpec,
    PartitionSpec,
    Scenario,
    check_all,
    run_scenario,
)
from consensus.sim.engine import Simulation
from consensus.sim.trace import Recorder


def run_ok(s: Scenario, **kw: object) -> Simulation:
    sim = run_scenario(s, **kw)  # type: ignore[arg-type]
    failed = [(r.name, r.detail) for r in check_all(sim) if not r.ok]
    assert not failed, failed
    return sim


def honest_heights(sim: Simulation) -> list[int]:
    return [n.height for n in sim.honest_nodes()]


def view_changes(sim: Simulation) -> int:
    return sum(n.replica.counters.view_changes for n in sim.nodes if n.replica is not None)


@pytest.mark.parametrize("n", [1, 4, 7, 10])
def test_normal_case_real_signatures(n: int) -> None:
    sim = run_ok(Scenario(nodes=n, blocks=12, seed=n))
    assert honest_heights(sim) == [12] * n
    assert view_changes(sim) == 0
    assert len({node.head_hash for node in sim.nodes}) == 1
    assert all(b.seal.view == 0 and not b.synced for b in sim.nodes[0].chain)


def test_leader_crash_triggers_view_change_and_commits_continue() -> None:
    # node 3 leads height 3 in view 0; it dies just as that height starts
    s = Scenario(
        nodes=4,
        blocks=10,
        seed=2,
        tx_interval_ms=100,
        signatures="fake",
        crashes=[CrashSpec(3, 250, None)],
    )
    sim = run_ok(s)
    assert honest_heights(sim)[:3] == [10, 10, 10]
    assert view_changes(sim) >= 1
    assert max(b.seal.view for b in sim.nodes[0].chain) >= 1


@pytest.mark.parametrize("n", [4, 7, 10])
def test_f_silent_nodes(n: int) -> None:
    f = (n - 1) // 3
    s = Scenario(
        nodes=n,
        blocks=2 * n,
        seed=n,
        signatures="fake",
        byzantine={i: "silent" for i in range(n - f, n)},
    )
    sim = run_ok(s)
    assert all(h == 2 * n for h in honest_heights(sim))


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
@pytest.mark.parametrize("n", [4, 7])
def test_f_byzantine_nodes_of_each_kind(behaviour: str, n: int) -> None:
    f = (n - 1) // 3
    for seed in (1, 2, 3):
        s = Scenario(
            nodes=n,
            blocks=12,
            seed=seed,
            signatures="fake",
            tx_interval_ms=50,
            network=NetworkSpec(latency_ms=10, jitter_ms=10, reorder=0.1),
            byzantine={(seed + 2 * i) % n: behaviour for i in range(f)},
        )
        run_ok(s)


def test_equivocation_and_double_votes_are_detected() -> None:
    s = Scenario(
        nodes=4,
        blocks=12,
        seed=4,
        signatures="fake",
        byzantine={1: "double-vote"},
        tx_interval_ms=50,
    )
    sim = run_ok(s)
    assert sum(len(n.replica.evidence) for n in sim.nodes if n.replica) > 0
    s = Scenario(
        nodes=7,
        blocks=14,
        seed=4,
        signatures="fake",
        byzantine={1: "equivocate", 2: "bad-signature"},
    )
    sim = run_ok(s)
    drops = sum(n.replica.counters.drops["bad_signature"] for n in sim.honest_nodes() if n.replica)
    assert drops > 0


def commits_between(sim: Simulation, start_ms: float, end_ms: float) -> int:
    lo, hi = start_ms * 1000, end_ms * 1000
    return sum(1 for n in sim.honest_nodes() for b in n.chain if lo <= b.time_us < hi)


@pytest.mark.parametrize("n", [4, 7])
def test_partition_isolating_f_nodes_does_not_stop_commits(n: int) -> None:
    f = (n - 1) // 3
    s = Scenario(
        nodes=n,
        blocks=80,
        seed=n,
        signatures="fake",
        tx_interval_ms=100,
        partitions=[PartitionSpec([list(range(f))], 500, 8000)],
    )
    sim = run_ok(s)
    # f isolated leaders in a row cost a few timeouts, then the rest commit on their own
    assert commits_between(sim, 4000, 8000) >= 5
    # the isolated nodes catch up after the heal
    assert all(node.height == 80 for node in sim.nodes)


@pytest.mark.parametrize("n", [4, 7])
def test_partition_isolating_f_plus_one_stops_commits_without_fork(n: int) -> None:
    f = (n - 1) // 3
    s = Scenario(
        nodes=n,
        blocks=30,
        seed=n,
        signatures="fake",
        tx_interval_ms=100,
        partitions=[PartitionSpec([list(range(f + 1))], 500, 4000)],
    )
    sim = run_ok(s)  # agreement holds and progress resumes after the heal
    # nothing can commit while neither side has a quorum (allow for in-flight votes)
    assert commits_between(sim, 700, 4000) == 0
    assert commits_between(sim, 4000, 1e9) > 0


def test_crash_and_restart_of_a_prepared_replica_keeps_its_certificate() -> None:
    # Commits of view 0 never arrive: everyone is prepared for height 1 but nobody commits.
    # Node 0 crashes while prepared and restarts; it must come back with its view and its
    # certificate, and the block it prepared is the one the cluster commits.
    rec = Recorder()
    s = Scenario(
        nodes=4,
        blocks=3,
        seed=9,
        signatures="fake",
        status_ms=0,
        drop_rules=[DropRule(kinds=("Commit",), end_ms=600)],
        crashes=[CrashSpec(0, 300, 700)],
    )
    sim = run_ok(s, trace=rec)
    prepared = [
        r
        for r in rec.records
        if r["ev"] == "persist_state"
        and r["node"] == 0
        and r["prepared"] == [0, 1]
        and r["t"] < 300_000
    ]
    assert prepared, "node 0 was not prepared before the crash"
    restart = next(r["t"] for r in rec.records if r["ev"] == "restart")
    vcs = [
        r
        for r in rec.records
        if r["ev"] == "bcast" and r["node"] == 0 and r["type"] == "ViewChange" and r["t"] >= restart
    ]
    assert vcs and vcs[0]["prepared"] == 0  # its ViewChange carries the view-0 certificate
    first = sim.nodes[1].chain[0]
    assert sim.nodes[0].chain[0].block_hash == first.block_hash
    assert first.seal.view >= 1  # re-proposed in a later view, same block


@pytest.mark.parametrize("seed", range(6))
def test_twins(seed: int) -> None:
    s = Scenario(
        nodes=4,
        blocks=10,
        seed=seed,
        signatures="fake",
        byzantine={seed % 4: "twins"},
        twins_split=seed % 2 == 0,
        tx_interval_ms=50,
    )
    sim = run_ok(s)
    assert len(sim.nodes) == 5


def test_twins_with_two_faulty_of_seven() -> None:
    s = Scenario(
        nodes=7,
        blocks=14,
        seed=3,
        signatures="fake",
        byzantine={1: "twins", 4: "twins"},
        tx_interval_ms=50,
    )
    run_ok(s)


def test_lossy_network_with_duplicates_and_reordering() -> None:
    s = Scenario(
        nodes=4,
        blocks=20,
        seed=5,
        signatures="fake",
        network=NetworkSpec(latency_ms=20, jitter_ms=30, drop=0.05, duplicate=0.2, reorder=0.3),
    )
    run_ok(s)
