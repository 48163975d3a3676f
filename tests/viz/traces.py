"""Fixed-seed simulator traces for the viz tests (written as `ledgerlab sim --trace` does)."""

from __future__ import annotations

from pathlib import Path

from consensus.sim import NetworkSpec, Scenario, Simulation
from consensus.sim.scenario import DropRule, parse_crash
from consensus.sim.trace import JsonlTrace


def write_trace(path: Path, scenario: Scenario) -> Path:
    with path.open("w") as fh:
        Simulation(scenario, trace=JsonlTrace(fh)).run()
    return path


def equivocation(path: Path) -> Path:
    """4 nodes; node3 equivocates when it leads height 3 (view 0), then a view change."""
    s = Scenario(network=NetworkSpec(), nodes=4, blocks=5, seed=3, signatures="fake")
    s.byzantine[3] = "equivocate"
    return write_trace(path, s)


def leader_crash(path: Path) -> Path:
    """4 nodes; node1 crashes at 50 ms (leading height 1 in view 0): a view change."""
    s = Scenario(network=NetworkSpec(), nodes=4, blocks=6, seed=2, signatures="fake")
    s.crashes.append(parse_crash("1@50-3000"))
    return write_trace(path, s)


def reproposal(path: Path) -> Path:
    """node0 alone gets the Commits of height 1 (as `sim --drop-commits-to 1,2,3`): it
    commits, the others time out, and the NewView re-proposes the prepared block."""
    s = Scenario(network=NetworkSpec(), nodes=4, blocks=4, signatures="fake")
    s.drop_rules.append(DropRule(kinds=("Commit",), dst=(1, 2, 3), end_ms=400))
    s.status_ms = 0.0
    s.timeout_ms = 500.0
    return write_trace(path, s)


def byzantine(path: Path, behaviour: str) -> Path:
    """4 nodes, 4 blocks; node3 behaves as ``behaviour`` (double-vote, spam, ...)."""
    s = Scenario(network=NetworkSpec(), nodes=4, blocks=4, seed=2, signatures="fake")
    s.byzantine[3] = behaviour
    return write_trace(path, s)


def large(path: Path) -> Path:
    """10 nodes, 50 heights, 3 equivocating sealers: the size and frame-budget case."""
    s = Scenario(network=NetworkSpec(), nodes=10, blocks=50, seed=5, signatures="fake")
    for node in (7, 8, 9):
        s.byzantine[node] = "equivocate"
    return write_trace(path, s)
