"""Fixed-seed simulator runs whose traces the explain and schema tests read."""

from __future__ import annotations

from typing import Any

from consensus.sim import CrashSpec, DropRule, NetworkSpec, Scenario, run_scenario
from consensus.sim.trace import Recorder


def normal() -> Scenario:
    """4 honest nodes, nothing goes wrong."""
    return Scenario(nodes=4, blocks=3, seed=1, signatures="fake")


def view_change() -> Scenario:
    """Only node 0 gets the Commits of view 0 at height 1: it commits, the others change
    view and the NewView must re-propose the block they prepared."""
    return Scenario(
        nodes=4,
        blocks=2,
        seed=5,
        timeout_ms=500,
        status_ms=0,
        signatures="fake",
        drop_rules=[DropRule(kinds=("Commit",), dst=(1, 2, 3), end_ms=400)],
    )


def equivocation() -> Scenario:
    """node 3 leads height 3 and sends two different proposals."""
    return Scenario(nodes=4, blocks=4, seed=3, signatures="fake", byzantine={3: "equivocate"})


def sync() -> Scenario:
    """node 2 crashes early and, back at 3 s, fetches the blocks it missed."""
    return Scenario(
        nodes=4,
        blocks=8,
        seed=1,
        tx_interval_ms=100,
        signatures="fake",
        crashes=[CrashSpec(2, 100, 3000)],
    )


def membership() -> Scenario:
    """node 4 starts as an observer and is added as a sealer by block 2: n = 5 from 3."""
    from consensus.sim.scenario import parse_membership

    return Scenario(
        nodes=5,
        sealers=4,
        blocks=4,
        seed=1,
        signatures="fake",
        membership=[parse_membership("add:4@2")],
    )


def everything() -> Scenario:
    """Loss, a partition, a double-voter, a crash, membership: most record kinds at once."""
    from consensus.sim.scenario import parse_membership

    return Scenario(
        nodes=5,
        sealers=4,
        blocks=5,
        seed=2,
        signatures="fake",
        tx_interval_ms=100,
        network=NetworkSpec(drop=0.05),
        byzantine={3: "double-vote"},
        crashes=[CrashSpec(1, 150, 900)],
        membership=[parse_membership("add:4@2")],
    )


def records_of(s: Scenario) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rec = Recorder()
    run_scenario(s, trace=rec)
    header, *records = rec.records
    return header, records
