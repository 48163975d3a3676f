"""Tracing only observes: a run with a trace is the run without one, event for event."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from consensus.sim import Scenario, run_scenario
from consensus.sim.summary import chain_hash
from consensus.sim.trace import Recorder
from tests.trace import scenarios


@pytest.mark.parametrize(
    "make",
    [scenarios.equivocation, scenarios.sync, scenarios.everything],
    ids=["equivocation", "sync", "everything"],
)
def test_the_trace_does_not_change_the_run(make: Callable[[], Scenario]) -> None:
    plain = run_scenario(make())
    rec = Recorder()
    traced = run_scenario(make(), trace=rec)
    assert len(rec.records) > 100
    assert traced.events == plain.events
    assert chain_hash(traced) == chain_hash(plain)
    assert dict(traced.net_messages) == dict(plain.net_messages)
