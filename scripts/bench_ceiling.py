"""The throughput ceiling of this machine, measured in the same run as the benchmark.

Every PBFT node must do a minimum of work for each transaction it commits, whatever the
implementation: parse the ~200-byte msgpack transaction, hash it twice with SHA3-256
(the signing hash of the body and the transaction hash), recover the sender's public key
from the secp256k1 signature, and apply the transfer to its state. This module times
exactly that, with the libraries directly (msgpack, hashlib, coincurve) and a plain dict
as the state, so that the figure does not move when the node's own code gets faster or
slower. ``ceiling_tps = cores / (nodes x cost)`` is then what N nodes sharing ``cores``
could commit if they did nothing else; ``committed_tps / ceiling_tps`` is a figure that
survives a shared, noisy machine better than tx/s do.

    python -m scripts.bench_ceiling [--txs 1000] [--rounds 10] [--nodes 4] [--concurrent K]

``--concurrent K`` times the same work in K processes at once (one per core, say), to see
whether busy cores slow each other down (shared caches, SMT siblings, a host's power
budget): if they did, a ceiling timed on one otherwise idle core would be too high.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import os
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import coincurve
import msgpack

from consensus.crypto import KeyPair
from node.ledger.tx import Transaction

DEFAULT_TXS = 1_000
DEFAULT_ROUNDS = 10
_SIGNATURE_TAIL = 2 + 65  # msgpack bin8 header + r||s||v at the end of a signed tx


@dataclass(frozen=True, slots=True)
class Ceiling:
    """The measured minimal work and what it allows ``nodes`` nodes on ``cores`` cores."""

    cost_us: float  # per transaction, best round
    rounds_us: tuple[float, ...]  # every round, for the record
    tx_bytes: int
    cores: int
    nodes: int

    @property
    def busy_cores(self) -> int:
        """Cores the nodes can use: each node process runs its Python work on one core."""
        return max(1, min(self.cores, self.nodes))

    @property
    def tps(self) -> float:
        return self.busy_cores / (self.nodes * self.cost_us * 1e-6)

    def as_dict(self) -> dict[str, object]:
        return {
            "cost_us": round(self.cost_us, 2),
            "rounds_us": [round(r, 2) for r in self.rounds_us],
            "tx_bytes": self.tx_bytes,
            "cores": self.cores,
            "busy_cores": self.busy_cores,
            "nodes": self.nodes,
            "ceiling_tps": round(self.tps, 1),
        }


def cores_of(pids: Sequence[int]) -> int:
    """CPUs the processes ``pids`` may run on together (their affinity masks' union).

    Falls back to this process's mask when none of them can be asked (not on this host,
    or not Linux).
    """
    cpus: set[int] = set()
    for pid in pids:
        try:
            cpus |= os.sched_getaffinity(pid)
        except (OSError, AttributeError):
            continue
    if not cpus:
        try:
            cpus = os.sched_getaffinity(0)
        except AttributeError:
            return os.cpu_count() or 1
    return len(cpus)


def sample_transfers(count: int, seed: int = 7) -> list[bytes]:
    """``count`` signed ``userTransfer`` transactions as the benchmark sends them."""
    rng = random.Random(seed)
    keys = [KeyPair.generate(rng) for _ in range(8)]
    out = []
    for i in range(count):
        tx = Transaction.build(
            chain_id="chain0",
            group_id="group0",
            to="0x5002",
            method="userTransfer",
            args=(f"u{rng.randrange(1000):05d}", f"u{rng.randrange(1000):05d}", 1 + i % 100),
            block_limit=1_000,
            nonce=f"{rng.getrandbits(128):032x}",
        )
        out.append(tx.sign(keys[i % len(keys)]).encoded)
    return out


def minimal_work(raws: Sequence[bytes], state: dict[str, int]) -> None:
    """Decode, hash twice, recover the sender and apply the transfer, for each of ``raws``."""
    unpack = msgpack.unpackb
    sha3 = hashlib.sha3_256
    from_signature = coincurve.PublicKey.from_signature_and_message
    for raw in raws:
        fields = unpack(raw)
        signature = fields[8]
        body = b"\x98" + raw[1:-_SIGNATURE_TAIL]  # the unsigned fields: what was signed
        signing_hash = sha3(body).digest()
        sha3(raw).digest()  # the transaction hash
        from_signature(signature, signing_hash, hasher=None)
        src, dst, amount = fields[7]
        value = int.from_bytes(amount, "big")
        state[src] = state.get(src, 1 << 60) - value
        state[dst] = state.get(dst, 1 << 60) + value


def measure(
    *, nodes: int, cores: int, txs: int = DEFAULT_TXS, rounds: int = DEFAULT_ROUNDS
) -> Ceiling:
    """Time :func:`minimal_work` ``rounds`` times; keep the fastest (noise only adds).

    The clock is this thread's CPU time, so a round is not charged for the time other
    processes of a busy machine held the core.
    """
    raws = sample_transfers(txs)
    minimal_work(raws[:50], {})  # warm up caches and the allocator
    times = [_timed_round(raws) for _ in range(rounds)]
    return Ceiling(min(times), tuple(times), len(raws[0]), cores, nodes)


async def ameasure(
    *, nodes: int, cores: int, txs: int = DEFAULT_TXS, rounds: int = DEFAULT_ROUNDS
) -> Ceiling:
    """:func:`measure` in an event loop: it gives the loop a turn between rounds.

    Under ``asyncio.run``, Ctrl-C only cancels the main task, and the cancel lands at its
    next ``await``; run in one piece, the ~1 s of CPU work (several on a busy machine)
    would hold it off until the end.
    """
    raws = sample_transfers(txs)
    await asyncio.sleep(0)
    minimal_work(raws[:50], {})
    times = []
    for _ in range(rounds):
        times.append(_timed_round(raws))
        await asyncio.sleep(0)
    return Ceiling(min(times), tuple(times), len(raws[0]), cores, nodes)


def _timed_round(raws: Sequence[bytes]) -> float:
    """CPU microseconds of :func:`minimal_work` per transaction, for one pass over ``raws``."""
    state: dict[str, int] = {}
    t0 = time.thread_time()
    minimal_work(raws, state)
    return (time.thread_time() - t0) / len(raws) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--txs", type=int, default=DEFAULT_TXS)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument(
        "--concurrent", type=int, default=1, metavar="K", help="time it in K processes at once"
    )
    args = parser.parse_args(argv)
    if args.concurrent > 1:
        return _concurrent(args.concurrent, args.txs, args.rounds)
    c = measure(nodes=args.nodes, cores=cores_of([]), txs=args.txs, rounds=args.rounds)
    print(
        f"minimal work per tx ({c.tx_bytes}-byte transfer): {c.cost_us:.1f} µs "
        f"(rounds {', '.join(f'{r:.1f}' for r in c.rounds_us)})"
    )
    print(f"ceiling for {c.nodes} nodes on {c.cores} cores: {c.tps:,.0f} tx/s")
    return 0


def _concurrent(workers: int, txs: int, rounds: int) -> int:
    """Run :func:`measure` in ``workers`` processes started together; print each one's."""
    with multiprocessing.Pool(workers) as pool:
        results = pool.starmap(_measure_rounds, [(txs, rounds)] * workers)
    for i, rounds_us in enumerate(results):
        print(
            f"worker {i}: best {min(rounds_us):.1f} µs, median {statistics.median(rounds_us):.1f} "
            f"µs per tx ({workers} at once)"
        )
    return 0


def _measure_rounds(txs: int, rounds: int) -> tuple[float, ...]:
    return measure(nodes=1, cores=1, txs=txs, rounds=rounds).rounds_us


if __name__ == "__main__":
    raise SystemExit(main())
