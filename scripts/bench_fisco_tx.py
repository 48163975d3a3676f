"""Decode and sender-recovery cost per transaction: FISCO BCOS 2.x format vs native.

``python -m scripts.bench_fisco_tx [--n 2000] [--rounds 7]`` prints microseconds per
DagTransfer ``userTransfer`` transaction for each step, native and FISCO interleaved
round by round (the machine is shared: the median and the best round, and the median
of the per-round ratios), and the ABI calldata
decode of ledgerlab's codec against eth-abi's (if installed) -- the figures in
docs/performance.md ("FISCO-format transactions").
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

from consensus.crypto import KeyPair
from node.ledger.fisco import decode_fisco_transaction, encode_calldata, sign_fisco_tx
from node.ledger.fisco.abi import decode_args
from node.ledger.tx import SignedTransaction, Transaction


def _per_item_us(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / n * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="transactions per round")
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args(argv)
    n = args.n
    key = KeyPair.from_secret(bytes([1]) * 32)
    native = [
        Transaction.build(chain_id="1", group_id="1", to="0x5002", method="userTransfer",
                          args=[f"u{i}", f"v{i}", i + 1], block_limit=500).sign(key).encode()
        for i in range(n)
    ]  # fmt: skip
    calldata = [encode_calldata("userTransfer(string,string,uint256)", [f"u{i}", f"v{i}", i + 1])
                for i in range(n)]  # fmt: skip
    fisco = [sign_fisco_tx(key, to="0x5002", data=d, block_limit=500).encoded for d in calldata]
    kinds = ("string", "string", "uint256")
    steps: dict[str, Callable[[], object]] = {
        "native decode": lambda: [SignedTransaction.decode(r) for r in native],
        "fisco decode": lambda: [decode_fisco_transaction(r) for r in fisco],
        "native decode+recover": lambda: [SignedTransaction.decode(r).verified() for r in native],
        "fisco decode+recover": lambda: [SignedTransaction.decode(r).verified() for r in fisco],
        "abi args (ledgerlab)": lambda: [decode_args(kinds, d[4:]) for d in calldata],
    }
    try:
        from eth_abi.abi import decode as eth_abi_decode

        steps["abi args (eth-abi)"] = lambda: [eth_abi_decode(list(kinds), d[4:]) for d in calldata]
    except ImportError:
        pass
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, fn in steps.items():
            times[name].append(_per_item_us(fn, n))
    print(f"{n} userTransfer txs x {args.rounds} interleaved rounds, us per tx: median, best")
    for name, values in times.items():
        print(f"  {name:24} {statistics.median(values):7.2f} {min(values):7.2f}")
    for a, b in (
        ("fisco decode", "native decode"),
        ("fisco decode+recover", "native decode+recover"),
        ("abi args (eth-abi)", "abi args (ledgerlab)"),
    ):
        if a in times:
            ratios = [x / y for x, y in zip(times[a], times[b], strict=True)]
            print(f"  {a} / {b}: median of the per-round ratios {statistics.median(ratios):.2f}")
    print(f"  sizes: native {len(native[0])} B, fisco {len(fisco[0])} B")


if __name__ == "__main__":
    main()
