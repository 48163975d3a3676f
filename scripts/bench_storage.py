"""Storage benchmark: block commits, point reads and prefix scans on every backend.

    python -m scripts.bench_storage [--blocks 100] [--txs 1000] [--dir /tmp]

A block commit is one ``LedgerStore.commit_block`` of ~150 KB block bytes, ``txs`` tx
index entries and receipts, ``2 * txs`` state writes and the head, as a node commits it;
the time includes building the batch in Python. Each backend runs with ``sync=True``
(fsync before returning: what a node uses) and ``sync=False``. Figures go to
docs/storage.md; the run takes well under a minute.
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
from collections.abc import Callable

from storage import BACKENDS, BlockCommit, LedgerStore, next_state_root, open_store
from storage.state_root import GENESIS_STATE_ROOT

USERS = 200_000
WARMUP = 5


def make_blocks(count: int, txs: int, seed: int) -> list[BlockCommit]:
    """Deterministic block commits shaped like DagTransfer blocks."""
    rng = random.Random(seed)
    root = GENESIS_STATE_ROOT
    blocks = []
    for number in range(count):
        users = rng.sample(range(USERS), 2 * txs)
        writes = sorted((f"dag/u{u:07d}".encode(), rng.randbytes(32)) for u in users)
        root = next_state_root(root, writes)
        tx_hashes = [rng.randbytes(32) for _ in range(txs)]
        blocks.append(
            BlockCommit(
                number=number,
                block_hash=rng.randbytes(32),
                block=rng.randbytes(150 * txs),
                tx_hashes=tx_hashes,
                receipts=[rng.randbytes(160) for _ in range(txs)],
                state_writes=writes,
                state_root=root,
            )
        )
    return blocks


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Seconds per call, median over ``repeat`` calls."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def fsync_floor_ms(directory: str) -> float:
    """Median fdatasync of a 4 KiB append: the disk's own price for one durable commit."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:

        def once() -> None:
            os.write(fd, b"x" * 4096)
            os.fdatasync(fd)

        return timed(once, 50) * 1000
    finally:
        os.close(fd)
        os.unlink(path)


def bench(backend: str, sync: bool, blocks: list[BlockCommit], directory: str) -> dict[str, float]:
    path = None if backend == "memory" else tempfile.mkdtemp(prefix=f"{backend}-", dir=directory)
    kv = open_store(path, backend, sync=sync)
    try:
        ledger = LedgerStore(kv)
        commit_ms = []
        for commit in blocks:
            t0 = time.perf_counter()
            ledger.commit_block(commit)
            commit_ms.append((time.perf_counter() - t0) * 1000)
        measured = commit_ms[WARMUP:]

        rng = random.Random(1)
        tx_hashes = [h for c in blocks for h in c.tx_hashes]
        state_keys = [k for c in blocks for k, _ in c.state_writes]
        probes = [(rng.choice(tx_hashes), rng.choice(state_keys)) for _ in range(20_000)]
        t0 = time.perf_counter()
        for tx_hash, key in probes:
            ledger.receipt(tx_hash)
            ledger.state.get(key)
        reads_per_s = 2 * len(probes) / (time.perf_counter() - t0)

        scan_len, scans = 1000, 200
        starts = [f"dag/u{rng.randrange(USERS):07d}".encode() for _ in range(scans)]
        t0 = time.perf_counter()
        for start in starts:
            it = ledger.state.scan(start, prefix=b"dag/")
            for _ in zip(range(scan_len), it, strict=False):
                pass
        scan_s = (time.perf_counter() - t0) / scans
        return {
            "commit_median_ms": statistics.median(measured),
            "commit_p90_ms": sorted(measured)[int(0.9 * (len(measured) - 1))],
            "reads_per_s": reads_per_s,
            "scans_per_s": 1 / scan_s,
            "scanned_keys_per_s": scan_len / scan_s,
        }
    finally:
        kv.close()
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=100, help="measured blocks per run")
    parser.add_argument("--txs", type=int, default=1000, help="transactions per block")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the stores go")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()

    blocks = make_blocks(WARMUP + args.blocks, args.txs, seed=42)
    system = f"{platform.system()} {platform.release()}"
    python = platform.python_version()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cpus, {system}, python {python}")
    shape = f"{args.txs} txs/block, {2 * args.txs} state writes, {150 * args.txs // 1000} KB block"
    print(f"workload: {shape}; median of {args.blocks} blocks after {WARMUP} warm-up")
    print(f"fdatasync floor in {args.dir}: {fsync_floor_ms(args.dir):.2f} ms")
    header = f"{'backend':8} {'sync':5} {'commit ms':>9} {'p90 ms':>7} {'reads/s':>9} "
    print(header + f"{'scans/s':>8} {'keys/s':>10}")
    for backend in args.backends.split(","):
        for sync in (True, False) if backend != "memory" else (False,):
            r = bench(backend, sync, blocks, args.dir)
            print(
                f"{backend:8} {'yes' if sync else 'no':5} {r['commit_median_ms']:9.2f} "
                f"{r['commit_p90_ms']:7.2f} {r['reads_per_s']:9,.0f} "
                f"{r['scans_per_s']:8,.0f} {r['scanned_keys_per_s']:10,.0f}"
            )


if __name__ == "__main__":
    main()
