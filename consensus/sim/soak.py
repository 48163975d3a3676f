"""Soak run (not in CI): thousands of random scenarios, then a summary.

``python -m consensus.sim.soak --seeds 5000`` sweeps seeds 0..4999 (``--start`` moves
the window, ``--real`` uses secp256k1 instead of the fast fake signatures). Prints one
line per failing seed (reproduce with ``ledgerlab sim --random-seed SEED``) and a summary;
the exit status is 1 if any scenario broke an invariant.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from consensus.sim.checker import check_all
from consensus.sim.engine import run_scenario
from consensus.sim.scenario import random_scenario


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m consensus.sim.soak", description=__doc__)
    p.add_argument("--seeds", type=int, default=5000, help="how many seeds (default 5000)")
    p.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--real", action="store_true", help="real secp256k1 signatures")
    args = p.parse_args(argv)
    started = time.perf_counter()
    failures: list[int] = []
    stats: Counter[str] = Counter()
    for seed in range(args.start, args.start + args.seeds):
        s = random_scenario(seed, signatures="real" if args.real else "fake")
        sim = run_scenario(s)
        results = check_all(sim)
        stats["scenarios"] += 1
        stats["blocks"] += max((n.height for n in sim.honest_nodes()), default=0)
        stats["view_changes"] += sum(
            n.replica.counters.view_changes for n in sim.nodes if n.replica is not None
        )
        stats["equivocations_seen"] += sum(
            n.replica.counters.equivocations for n in sim.nodes if n.replica is not None
        )
        stats["synced_blocks"] += sum(1 for n in sim.nodes for b in n.chain if b.synced)
        stats["byzantine_nodes"] += len(s.byzantine)
        stats["partitions"] += len(s.partitions)
        stats["crashes"] += sum(n.crashes for n in sim.nodes)
        for r in results:
            stats[f"{r.name}_{r.status}"] += 1
        bad = [f"{r.name}: {r.detail}" for r in results if not r.ok]
        if bad:
            failures.append(seed)
            print(f"seed {seed} FAILED: {'; '.join(bad)}", flush=True)
        if stats["scenarios"] % 500 == 0:
            print(f"... {stats['scenarios']} scenarios, {len(failures)} failed", flush=True)
    wall = time.perf_counter() - started
    print(f"{stats['scenarios']} scenarios in {wall:.1f} s, {len(failures)} failed")
    for key in sorted(stats):
        print(f"  {key:28} {stats[key]}")
    if failures:
        print("failing seeds:", " ".join(map(str, failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
