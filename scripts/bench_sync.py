"""Block-sync benchmark: a node that was down for many blocks catches up.

Four sealers and one observer run in one process on the memory transport. The observer
stops, the sealers commit BLOCKS one-transaction blocks, then the observer restarts and
syncs while the sealers keep committing a steady trickle of new transactions. Prints the
catch-up rate and the sealers' commit rate before and during the catch-up.

    python -m scripts.bench_sync --blocks 10000
"""

from __future__ import annotations

import argparse
import asyncio
import time

from consensus.crypto import KeyPair
from node.ledger.tx import Transaction
from node.runtime.local import MemoryCluster
from node.runtime.local import wait_for as wait_until

CLIENT = KeyPair.generate()


def transfer(i: int, *, head: int = 0) -> bytes:
    """A signed one-transaction block's worth: userSave on one of 50 users."""
    tx = Transaction.build(
        chain_id="chain0",
        group_id="group0",
        to="0x5002",
        method="userSave",
        args=[f"user{i % 50}", 1 + i],
        block_limit=head + 500,
        nonce=f"s{i}",
    )
    return tx.sign(CLIENT).encode()


async def run(blocks: int) -> None:
    async with MemoryCluster(4, observers=1, tx_count_limit=1) as cluster:
        leader = cluster.node(0)
        leader.submit([transfer(0)])
        await wait_until(lambda: all(n.chain.head.number == 1 for n in cluster.running()))
        await cluster.stop(4)
        t0 = time.perf_counter()
        for start in range(1, blocks, 400):
            head = leader.chain.head.number
            leader.submit([transfer(i, head=head) for i in range(start, min(start + 400, blocks))])
            await wait_until(lambda: len(leader.pool) == 0, timeout=3600)
        build = time.perf_counter() - t0
        height = leader.chain.head.number
        print(f"sealers committed {height} blocks in {build:.1f} s ({height / build:.0f} blocks/s)")

        observer = await cluster.start(4)
        t1 = time.perf_counter()
        trickle = 0
        sealer_before = leader.chain.head.number
        while observer.chain.head.number < leader.chain.head.number:
            head = leader.chain.head.number
            leader.submit([transfer(blocks + trickle, head=head)])
            trickle += 1
            await asyncio.sleep(0.05)
        took = time.perf_counter() - t1
        synced = observer.sync.stats["imported"]
        during = leader.chain.head.number - sealer_before
        print(f"observer imported {synced} blocks in {took:.1f} s ({synced / took:.0f} blocks/s)")
        print(
            f"sealers meanwhile committed {during} of {trickle} trickled transactions "
            f"({during / took:.1f} blocks/s; the trickle offers {trickle / took:.1f}/s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(run(args.blocks))


if __name__ == "__main__":
    main()
