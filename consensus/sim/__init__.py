"""Deterministic discrete-event simulator that drives the real Replica code.

``run_scenario(Scenario(...))`` runs one seeded scenario; ``check_all(sim)`` applies the
invariant checker; ``summarize(sim, results)`` gives the JSON-ready summary used by
``ledgerlab sim``. ``python -m consensus.sim.soak`` sweeps thousands of random seeds.
"""

from consensus.sim.checker import InvariantResult, check_all
from consensus.sim.engine import Simulation, run_scenario
from consensus.sim.scenario import (
    BEHAVIOURS,
    BREAK_RULES,
    CrashSpec,
    DropRule,
    NetworkSpec,
    PartitionSpec,
    Scenario,
    ScenarioError,
    load_toml,
    random_scenario,
)

__all__ = [
    "BEHAVIOURS",
    "BREAK_RULES",
    "CrashSpec",
    "DropRule",
    "InvariantResult",
    "NetworkSpec",
    "PartitionSpec",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "check_all",
    "load_toml",
    "random_scenario",
    "run_scenario",
]
