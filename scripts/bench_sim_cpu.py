"""CPU seconds of the simulator's run alone, for ``ledgerlab sim``'s default scenario.

    python -m scripts.bench_sim_cpu [--nodes 100] [--blocks 10] [--rounds 3]

``ledgerlab sim --json`` reports wall seconds, which on a shared machine say more about
the other work than about the simulator. This times ``Simulation.run()`` (not key
generation, not the invariant checker) with ``time.process_time`` and keeps the best
round; blocks per CPU second is what one free core would give.
"""

from __future__ import annotations

import argparse
import time

from consensus.sim.engine import Simulation
from consensus.sim.scenario import NetworkSpec, Scenario


def run_cpu_seconds(nodes: int, blocks: int) -> float:
    scenario = Scenario(network=NetworkSpec())
    scenario.nodes = nodes
    scenario.blocks = blocks
    sim = Simulation(scenario)
    start = time.process_time()
    sim.run()
    return time.process_time() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best is kept")
    args = parser.parse_args(argv)
    times = [run_cpu_seconds(args.nodes, args.blocks) for _ in range(args.rounds)]
    best = min(times)
    print(
        f"n = {args.nodes}, {args.blocks} blocks: CPU {best:.2f} s (rounds "
        + ", ".join(f"{t:.2f}" for t in times)
        + f") = {args.blocks / best:.2f} blocks per CPU second"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
