"""Soak run (not in CI): thousands of random scenarios on every core or a cluster, then totals.

``python -m consensus.sim.soak --seeds 5000`` sweeps seeds 0..4999 (``--start`` moves the
window, ``--real`` uses secp256k1 instead of the fast fake signatures, ``--break RULE``
turns a safety rule off to prove the checker catches it). The seeds run on every local
core (a process pool) unless ``--workers K`` (1 = in this process) or ``--scheduler
tcp://HOST:8786`` (a running Dask distributed cluster; ``pip install 'ledgerlab[soak]'``).
Each seed is independent and deterministic, so the totals and the digest line are the
same however the seeds are spread. A failing seed is printed with the command that replays
it; the exit status is 1 if any scenario broke an invariant, 2 if the seeds could not run.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from consensus.sim.checker import check_all
from consensus.sim.engine import run_scenario
from consensus.sim.parallel import SeedRunError, run_seeds
from consensus.sim.scenario import BREAK_RULES, random_scenario
from consensus.sim.summary import chain_hash, summarize

PROGRESS_EVERY = 500
# Seeds per task off this process: a seed takes about 8 ms here (16 ms with real
# signatures), a Dask task about 1 ms of scheduling plus a network round trip.
BATCH = {"fake": 16, "real": 8}


@dataclass(frozen=True)
class SeedOutcome:
    """What one seed gave: counters, failed invariants, and hashes that pin the run."""

    seed: int
    stats: dict[str, int]
    failures: tuple[str, ...]
    chain_hash: str
    summary_hash: str  # sha256 of the run's JSON summary (what `ledgerlab sim --json` writes)
    membership: bool  # the scenario schedules sealer-list changes
    elapsed_s: float = field(default=0.0, compare=False)


def soak_seed(seed: int, *, real: bool = False, break_rule: str | None = None) -> SeedOutcome:
    """Run and check random scenario ``seed``; never raises (a crash is a failure)."""
    started = time.perf_counter()
    membership = False
    try:
        s = random_scenario(seed, signatures="real" if real else "fake")
        s.break_rule = break_rule
        membership = bool(s.membership)
        sim = run_scenario(s)
        results = check_all(sim)
    except Exception as exc:
        return SeedOutcome(
            seed,
            {"scenarios": 1, "crashed": 1},
            (f"crashed: {type(exc).__name__}: {exc}",),
            "",
            "",
            membership,
            time.perf_counter() - started,
        )
    summary = summarize(sim, results)
    stats: Counter[str] = Counter()
    stats["scenarios"] = 1
    stats["blocks"] = max((n.height for n in sim.honest_nodes()), default=0)
    live = [n.replica for n in sim.nodes if n.replica is not None]
    stats["view_changes"] = sum(r.counters.view_changes for r in live)
    stats["equivocations_seen"] = sum(r.counters.equivocations for r in live)
    stats["synced_blocks"] = sum(1 for n in sim.nodes for b in n.chain if b.synced)
    stats["byzantine_nodes"] = len(s.byzantine)
    stats["partitions"] = len(s.partitions)
    stats["crashes"] = sum(n.crashes for n in sim.nodes)
    stats["sealer_list_changes"] = len(summary["sealer_lists"]) - 1
    for r in results:
        stats[f"{r.name}_{r.status}"] += 1
    canonical = json.dumps(summary, sort_keys=True, separators=(",", ":")).encode()
    return SeedOutcome(
        seed,
        dict(stats),
        tuple(f"{r.name}: {r.detail}" for r in results if not r.ok),
        chain_hash(sim),
        hashlib.sha256(canonical).hexdigest(),
        membership,
        time.perf_counter() - started,
    )


@functools.cache
def source_fingerprint() -> str:
    """sha256 over the ``consensus`` package's source: equal on every worker, or refused.

    Read once per process (first call, right after the import), so a worker that loaded an
    older tree before the files changed still answers with what it runs."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def replay_commands(seed: int, *, real: bool, break_rule: str | None) -> list[str]:
    """The commands that replay one seed: the simulator CLI (fake signatures only) and this."""
    extra = f" --break {break_rule}" if break_rule else ""
    soak = f"python -m consensus.sim.soak --start {seed} --seeds 1{' --real' if real else ''}"
    if real:  # `ledgerlab sim --random-seed` always runs a random scenario with fake keys
        return [soak + extra]
    return [f"ledgerlab sim --random-seed {seed}{extra}", soak + extra]


@dataclass
class Totals:
    stats: Counter[str] = field(default_factory=Counter)
    failures: list[int] = field(default_factory=list)
    with_membership: int = 0
    slowest: tuple[float, int] = (0.0, -1)
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)

    def add(self, o: SeedOutcome) -> None:
        self.stats.update(o.stats)
        self.with_membership += o.membership
        if o.failures:
            self.failures.append(o.seed)
        self.slowest = max(self.slowest, (o.elapsed_s, o.seed))
        self.digest.update(f"{o.seed} {o.summary_hash} {o.chain_hash};".encode())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m consensus.sim.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seeds", type=int, default=5000, help="how many seeds (default 5000)")
    p.add_argument("--start", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--real", action="store_true", help="real secp256k1 signatures")
    p.add_argument(
        "--break", dest="break_rule", choices=BREAK_RULES, help="run with a safety rule off"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        metavar="K",
        help="K local processes (default: one per usable core; 1 = in this process)",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on the Dask distributed cluster at ADDRESS (e.g. tcp://10.0.0.5:8786)",
    )
    args = p.parse_args(argv)
    if args.seeds < 0:
        p.error("--seeds must be 0 or more")
    if args.workers is not None and args.workers < 1:
        p.error("--workers must be 1 or more")
    last = args.start + args.seeds - 1
    signatures = "real" if args.real else "fake"
    print(f"soak: seeds {args.start}..{last} ({args.seeds}), {signatures} signatures", flush=True)
    fn = functools.partial(soak_seed, real=args.real, break_rule=args.break_rule)
    placed: list[str] = []

    def note(line: str) -> None:
        placed.append(line)
        print(f"soak: {line}", flush=True)

    totals = Totals()
    started = time.perf_counter()
    try:
        for _seed, outcome in run_seeds(
            fn,
            range(args.start, args.start + args.seeds),
            workers=args.workers,
            scheduler=args.scheduler,
            batch=max(1, min(BATCH[signatures], args.seeds // 8)),  # few seeds: small batches
            check=source_fingerprint,
            log=note,
        ):
            totals.add(outcome)
            if outcome.failures:
                print(f"seed {outcome.seed} FAILED: {'; '.join(outcome.failures)}", flush=True)
                for cmd in replay_commands(
                    outcome.seed, real=args.real, break_rule=args.break_rule
                ):
                    print(f"  replay: {cmd}", flush=True)
            done = totals.stats["scenarios"]
            if done % PROGRESS_EVERY == 0 and done < args.seeds:
                rate = done / (time.perf_counter() - started)
                print(
                    f"... {done}/{args.seeds} seeds, {len(totals.failures)} failed, "
                    f"{rate:.1f} seeds/s",
                    flush=True,
                )
    except SeedRunError as exc:
        print(f"soak: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nsoak: interrupted after {totals.stats['scenarios']} seeds", file=sys.stderr)
        return 130
    wall = time.perf_counter() - started
    seeds = totals.stats["scenarios"]
    rate = seeds / wall if wall > 0 else 0.0
    on = placed[0] if placed else "in this process"
    print(
        f"{seeds} seeds in {wall:.1f} s, {rate:.1f} seeds/s ({on}): "
        f"{len(totals.failures)} failed, {totals.with_membership} with membership changes"
    )
    for key in sorted(totals.stats):
        print(f"  {key:28} {totals.stats[key]}")
    if totals.slowest[1] >= 0:
        print(f"  {'slowest seed':28} {totals.slowest[1]} ({totals.slowest[0]:.2f} s)")
    print(f"digest {totals.digest.hexdigest()[:32]} (the same seeds give it however they ran)")
    if totals.failures:
        print("failing seeds:", " ".join(map(str, totals.failures)))
    return 1 if totals.failures else 0


if __name__ == "__main__":
    # Run the importable module's main, not this __main__ copy: what is sent to workers
    # (soak_seed, source_fingerprint) must pickle as consensus.sim.soak.NAME.
    from consensus.sim import soak

    sys.exit(soak.main())
