"""The CI sweep: hundreds of random seeded scenarios, each checked for every invariant.

Scenarios stay within the fault budget (f or fewer faulty in every sealer list) but mix
Byzantine roles, membership changes (about 40 % of the seeds: sealers added, removed and
re-added, the current leader removed),
crashes, partitions that heal, loss, duplication and reordering. A failure names its seed;
reproduce it with ``ledgerlab sim --random-seed SEED --explain H``.
"""

from __future__ import annotations

import pytest

from consensus.sim import check_all, random_scenario, run_scenario

SEEDS = 320
BATCH = 20


@pytest.mark.parametrize("start", range(0, SEEDS, BATCH))
def test_random_scenarios_keep_every_invariant(start: int) -> None:
    failures = []
    for seed in range(start, start + BATCH):
        sim = run_scenario(random_scenario(seed))
        bad = [f"{r.name}: {r.detail}" for r in check_all(sim) if not r.ok]
        if bad:
            failures.append((seed, bad))
    assert not failures, failures
