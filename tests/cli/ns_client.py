"""A DagTransfer client for test_hosts_netns.py, run inside a network namespace:

    ip netns exec NS python -m tests.cli.ns_client CHAIN_DIR NODE COUNT [--timeout S]

signs COUNT ``userTransfer alice -> bob 1`` with the chain's admin key
(scripts/launcher/load.py), sends them as one JSON-RPC batch to node NODE at its RPC
address in chain.toml, waits for every receipt and prints one JSON line:
``{"sent", "refused", "committed", "failed", "height"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from node.rpc.client import RpcError
from scripts.launcher.accounts import ADMIN, key_path, load_key
from scripts.launcher.layout import load_chain
from scripts.launcher.load import TransferSigner, node_client


async def transfers(root: str, index: int, count: int, timeout: float) -> dict[str, object]:
    chain = load_chain(root)
    signer = TransferSigner(chain, load_key(key_path(chain.accounts_dir, ADMIN)))
    async with node_client(chain, index, timeout=timeout) as client:
        limit = await client.block_number() + 500
        signed = [signer.sign("userTransfer", ["alice", "bob", 1], limit) for _ in range(count)]
        answers = await client.send_raw_batch([raw for _, raw in signed])
        accepted = [h for h, a in zip((h for h, _ in signed), answers, strict=True)
                    if not isinstance(a, RpcError)]  # fmt: skip
        receipts = [await client.wait_for_receipt(h, timeout) for h in accepted]
        failed = [r for r in receipts if int(str(r.get("status", "0x1")), 0) != 0]
        return {
            "sent": count,
            "refused": count - len(accepted),
            "committed": len(receipts) - len(failed),
            "failed": failed[:3],
            "height": await client.block_number(),
        }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("node", type=int)
    p.add_argument("count", type=int)
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()
    print(json.dumps(asyncio.run(transfers(a.root, a.node, a.count, a.timeout))))


if __name__ == "__main__":
    main()
