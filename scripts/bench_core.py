"""Ledger-core micro-benchmark: admission, execution and block commit rates.

    python -m scripts.bench_core [--txs 20000] [--blocks 20] [--rounds 3]
                                 [--backend rocksdb] [--dir /tmp]
                                 [--profile admission|execute|commit]

Prints, on one core (one Python thread):

* decode+hash: ``SignedTransaction.decode`` of a DagTransfer transaction;
* admission: ``TxPool.admit`` = decode, chain/group/duplicate/block-limit/nonce checks
  and sender recovery, and the bare decode+recover it is built on (target >= 25,000/s),
  beside the minimal work ``ledgerlab bench`` takes as its ceiling (``bench_ceiling``);
* transfer executions: ``Executor.execute_block`` of 1,000-transfer blocks, senders
  known (no signature work), including receipts and the tx, receipt and state roots;
  on a plain dict (the executor alone: target >= 100,000/s), on a ledger in memory and
  on the persistent ledger (reads go through LedgerStore's state view);
* block commit: ``LedgerStore.commit_block`` of those blocks (block, receipts, tx index,
  state diff, head in one synced batch) on the persistent backend (target <= 20 ms).

Rates are the best of ``--rounds`` runs (admission, dict state) or the median block
(ledgers): the machine is shared and interference only ever slows a run down. Figures
go to docs/performance.md ("Ledger core"). Setup (signing) is not timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from consensus.crypto import KeyPair
from node.ledger.block import NO_SEAL
from node.ledger.chain import Chain, ExecutedBlock, ProposalBody
from node.ledger.executor import Executor
from node.ledger.genesis import GenesisConfig
from node.ledger.tx import SignedTransaction, Transaction, VerifiedTx
from node.runtime.txpool import TxPool
from scripts import bench_ceiling
from storage.backends import DEFAULT_BACKEND, open_store
from storage.ledger import LedgerStore
from storage.memory import MemoryKV

BLOCK_TXS = 1000
USERS = 10_000


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f} /s  ({seconds / count * 1e6:6.2f} us each)"


def line(label: str, text: str) -> None:
    print(f"  {label:<44} {text}")


def profiled(enabled: bool, fn: Callable[[], Any]) -> Any:
    if not enabled:
        return fn()
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    profiler.start()
    try:
        return fn()
    finally:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False))


def signed_txs(genesis: GenesisConfig, calls: Sequence[tuple[str, tuple[Any, ...]]],
               keys: Sequence[KeyPair], block_limit: int) -> list[VerifiedTx]:  # fmt: skip
    out = []
    for i, (method, args) in enumerate(calls):
        kp = keys[i % len(keys)]
        tx = Transaction.build(
            chain_id=genesis.chain_id,
            group_id=genesis.group_id,
            to="0x5002",
            method=method,
            args=args,
            block_limit=block_limit,
        )
        out.append(VerifiedTx(tx.sign(kp), kp.address))
    return out


# ---------------------------------------------------------------------------- admission


def best_of(rounds: int, fn: Callable[[], float]) -> float:
    """The fastest of ``rounds`` timings: the machine is shared, interference only adds."""
    return min(fn() for _ in range(rounds))


def bench_admission(
    genesis: GenesisConfig, keys: list[KeyPair], n: int, rounds: int, profile: bool
) -> None:
    rng = random.Random(1)
    calls = [
        ("userTransfer", (f"u{rng.randrange(USERS)}", f"u{rng.randrange(USERS)}", 1 + i % 97))
        for i in range(n)
    ]
    raws = [v.tx.encode() for v in signed_txs(genesis, calls, keys, block_limit=500)]
    print(f"  {n} signed DagTransfer transactions of ~{len(raws[0])} bytes; best of {rounds}")

    def decode_all() -> float:
        t0 = time.perf_counter()
        for raw in raws:
            SignedTransaction.decode(raw)
        return time.perf_counter() - t0

    line("decode+hash (SignedTransaction.decode)", rate(n, best_of(rounds, decode_all)))

    def recover_all() -> float:
        t0 = time.perf_counter()
        for raw in raws:
            SignedTransaction.decode(raw).recover_sender()
        return time.perf_counter() - t0

    line("decode+hash+recover sender", rate(n, best_of(rounds, recover_all)))
    floor = bench_ceiling.measure(nodes=1, cores=1, txs=min(n, 1000), rounds=rounds)
    line(
        "minimal work (bench ceiling, libraries direct)",
        rate(1, floor.cost_us * 1e-6) + "   (scripts.bench_ceiling, CPU time)",
    )

    def admit_all() -> float:
        pool = TxPool(
            chain_id=genesis.chain_id,
            group_id=genesis.group_id,
            in_chain=lambda _h: False,
            capacity=n + 1,
        )
        t0 = time.perf_counter()
        for raw in raws:
            pool.admit(raw, 0)
        elapsed = time.perf_counter() - t0
        assert pool.admitted == n
        return elapsed

    elapsed = profiled(profile, admit_all) if profile else best_of(rounds, admit_all)
    line("admission (TxPool.admit, all checks)", rate(n, elapsed) + "   target >= 25,000/s")


# ---------------------------------------------------------------------------- execution


class DictState(dict[bytes, bytes]):
    """Committed state as a plain dict: measures the executor without a store under it."""

    def apply(self, write_set: Sequence[tuple[bytes, bytes | None]]) -> None:
        for key, value in write_set:
            if value is None:
                self.pop(key, None)
            else:
                self[key] = value


def next_block(chain: Chain, txs: Sequence[VerifiedTx]) -> ExecutedBlock:
    """Execute ``txs`` as the next block, as a replica does for a proposal."""
    head = chain.head
    body = ProposalBody(1_700_000_000_000 + head.number + 1, 0, tuple(v.hash for v in txs))
    return chain.execute(head.number + 1, head.block_hash, body, txs)


Block = list[VerifiedTx]


def block_workloads(
    genesis: GenesisConfig, keys: list[KeyPair], blocks: int
) -> tuple[list[Block], list[Block]]:
    """The setup blocks (userAdd of every user) and the timed userTransfer blocks."""
    rng = random.Random(2)
    setup = [
        signed_txs(
            genesis,
            [("userAdd", (f"u{i}", 10**12)) for i in range(b, b + BLOCK_TXS)],
            keys,
            10**6,
        )
        for b in range(0, USERS, BLOCK_TXS)
    ]
    transfer_blocks = [
        signed_txs(
            genesis,
            [
                ("userTransfer", (f"u{rng.randrange(USERS)}", f"u{rng.randrange(USERS)}", 1 + j))
                for j in range(BLOCK_TXS)
            ],
            keys,
            10**6,
        )
        for _ in range(blocks)
    ]
    return setup, transfer_blocks


def bench_dict_state(
    genesis: GenesisConfig,
    setup: list[Block],
    transfer_blocks: list[Block],
    rounds: int,
    profile: str | None,
) -> None:
    """The executor alone: state in a plain dict, nothing committed."""
    dict_state = DictState()
    root = genesis.block().header.state_root
    for number, txs in enumerate(setup, start=1):
        result = Executor(genesis).execute_block(
            dict_state, number=number, parent_state_root=root, txs=txs
        )
        dict_state.apply(result.write_set)
        root = result.state_root
    executor = Executor(genesis)

    def run_dict() -> float:
        t0 = time.perf_counter()
        for txs in transfer_blocks:  # every block on the same parent state
            executor.execute_block(dict_state, number=len(setup) + 1, parent_state_root=root,
                                   txs=txs)  # fmt: skip
        return time.perf_counter() - t0

    elapsed = profiled(True, run_dict) if profile == "execute" else best_of(rounds, run_dict)
    line(
        f"transfer executions, dict state (best of {rounds})",
        rate(len(transfer_blocks) * BLOCK_TXS, elapsed) + "   target >= 100,000/s",
    )


def bench_memory_ledger(
    genesis: GenesisConfig, setup: list[Block], transfer_blocks: list[Block]
) -> Chain:
    """Execution on a ledger in memory (the simulator's set-up), committing each block."""
    mem = Chain(LedgerStore(MemoryKV()), genesis)
    for txs in setup:
        mem.commit(next_block(mem, txs), NO_SEAL)
    times = []
    for txs in transfer_blocks:
        t0 = time.perf_counter()
        executed = next_block(mem, txs)
        times.append(time.perf_counter() - t0)
        assert all(r.status == 0 for r in executed.result.receipts)
        mem.commit(executed, NO_SEAL)
    line(
        "transfer executions, memory ledger",
        rate(BLOCK_TXS, statistics.median(times)) + "   (median block)",
    )
    return mem


def time_disk_ledger(
    genesis: GenesisConfig,
    setup: list[Block],
    transfer_blocks: list[Block],
    backend: str,
    directory: str,
    profile: str | None,
) -> tuple[bytes, list[float], list[float]]:
    """Execution and commit on the persistent backend, synced as a node runs it.

    Returns the final state root (the store is closed and removed) and the per-block
    execution and commit times.
    """
    path = tempfile.mkdtemp(prefix="ledgerlab-bench-core-", dir=directory)
    try:
        kv = open_store(path, backend, sync=True)
        disk = Chain(LedgerStore(kv), genesis)
        for txs in setup:
            disk.commit(next_block(disk, txs), NO_SEAL)

        def run_disk() -> tuple[list[float], list[float]]:
            exec_times, commit_times = [], []
            for txs in transfer_blocks:
                t0 = time.perf_counter()
                executed = next_block(disk, txs)  # execution plus assembling the block
                t1 = time.perf_counter()
                disk.commit(executed, NO_SEAL)
                t2 = time.perf_counter()
                exec_times.append(t1 - t0)
                commit_times.append(t2 - t1)
            return exec_times, commit_times

        exec_times, commit_times = profiled(profile == "commit", run_disk)
        head_root = disk.head.state_root
        kv.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return head_root, exec_times, commit_times


def report_disk_ledger(backend: str, exec_times: list[float], commit_times: list[float]) -> None:
    line(
        f"transfer executions, {backend} ledger",
        rate(BLOCK_TXS, statistics.median(exec_times)) + "   (median block)",
    )
    commit_ms = sorted(t * 1000 for t in commit_times)
    p90 = commit_ms[int(0.9 * (len(commit_ms) - 1))]
    line(
        f"block commit ({backend}, synced, {BLOCK_TXS} txs)",
        f"median {statistics.median(commit_ms):.2f} ms, p90 {p90:.2f} ms, "
        f"max {commit_ms[-1]:.2f} ms = {1000 / statistics.median(commit_ms):,.0f} commits/s"
        "   target <= 20 ms",
    )
    per_block = [e + c for e, c in zip(exec_times, commit_times, strict=True)]
    line(
        "execute+commit per block",
        f"median {statistics.median(per_block) * 1000:.2f} ms"
        f" = {BLOCK_TXS / statistics.median(per_block):,.0f} tx/s",
    )


def bench_blocks(
    genesis: GenesisConfig,
    keys: list[KeyPair],
    blocks: int,
    rounds: int,
    backend: str,
    directory: str,
    profile: str | None,
) -> None:
    setup, transfer_blocks = block_workloads(genesis, keys, blocks)
    print(f"  {USERS} users; {blocks} blocks of {BLOCK_TXS} userTransfer transactions")
    bench_dict_state(genesis, setup, transfer_blocks, rounds, profile)
    mem = bench_memory_ledger(genesis, setup, transfer_blocks)
    disk_root, exec_times, commit_times = time_disk_ledger(
        genesis, setup, transfer_blocks, backend, directory, profile
    )
    assert disk_root == mem.head.state_root
    report_disk_ledger(backend, exec_times, commit_times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--txs", type=int, default=20_000, help="transactions for admission")
    parser.add_argument("--blocks", type=int, default=20, help="1,000-tx blocks to run")
    parser.add_argument("--rounds", type=int, default=3, help="repeat and keep the best")
    parser.add_argument("--backend", default=DEFAULT_BACKEND)
    parser.add_argument("--dir", default=None, help="where the temporary store goes")
    parser.add_argument("--profile", choices=["admission", "execute", "commit"])
    args = parser.parse_args(argv)

    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, Python {platform.python_version()}")
    rng = random.Random(0)
    keys = [KeyPair.generate(rng) for _ in range(50)]
    genesis = GenesisConfig(sealers=(KeyPair.generate(rng).public_key,))
    print("admission")
    bench_admission(genesis, keys, args.txs, args.rounds, args.profile == "admission")
    print("execution and commit")
    bench_blocks(genesis, keys, args.blocks, args.rounds, args.backend, args.dir, args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
