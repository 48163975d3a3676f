"""Transport CPU per gossiped transaction: N nodes in one process, cluster-shaped traffic.

Each of ``--nodes`` transports (TCP+TLS mesh, or MQTT through the broker) broadcasts
``--frames`` gossip frames of ``--txs`` transactions (210 bytes each, the size of a signed
DAG transfer) and two 200-byte votes per frame, one round every 2 ms (the MQTT batch
window), until every peer has every frame. The figure is the process CPU time of the
round (all nodes' sending and receiving, the event loop, paho, TLS; on uvloop, as the node
runs) divided by the gossiped transactions and by the nodes: the transport's share of a
cluster node's CPU per transaction, which ``ledgerlab bench`` cannot resolve on a busy
machine. Usage::

    python -m scripts.bench_transport_cpu                   # both transports, 4 nodes
    python -m scripts.bench_transport_cpu --transport mqtt --txs 50 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from node.transport import pki as certs
from node.transport.base import Transport
from node.transport.mqtt import MqttTransport
from node.transport.tcp import TcpTransport

GENESIS = b"\x42" * 32
TX_BYTES = 210
VOTE_BYTES = 200
VOTES_PER_FRAME = 2


async def _mesh(kind: str, ids: list[certs.NodeIdentity], broker: str) -> list[Transport]:
    allowed = [i.node_id for i in ids]
    out: list[Transport] = []
    if kind == "mqtt":
        chain = "cpu" + uuid.uuid4().hex[:8]
        for ident in ids:
            m = MqttTransport(
                key=ident.consensus,
                genesis_hash=GENESIS,
                broker_url=broker,
                chain_id=chain,
                group_id=1,
                members=allowed,
            )
            await m.start()
            out.append(m)
    else:
        for ident in ids:
            peers = [f"127.0.0.1:{p.listen_port}" for p in out if isinstance(p, TcpTransport)]
            tcp = TcpTransport(identity=ident, genesis_hash=GENESIS, allowed=allowed, peers=peers)
            await tcp.start()
            out.append(tcp)
    for t in out:
        await t.wait_for_peers(set(allowed) - {t.node_id}, timeout=30)
    return out


async def _round(transports: list[Transport], frames: int, txs: int) -> float:
    """CPU seconds for one round of ``frames`` broadcasts per node, all delivered."""
    frame, vote = os.urandom(TX_BYTES * txs), os.urandom(VOTE_BYTES)
    n = len(transports)
    want = frames * (1 + VOTES_PER_FRAME) * n * (n - 1)
    got = 0

    async def drain(t: Transport) -> None:
        nonlocal got
        while True:
            await t.recv()
            got += 1 + len(t.recv_nowait_many(100_000))

    start = time.process_time()
    readers = [asyncio.create_task(drain(t)) for t in transports]
    for _ in range(frames):
        for t in transports:
            t.broadcast(frame)
            for _ in range(VOTES_PER_FRAME):
                t.broadcast(vote)
        await asyncio.sleep(0.002)
    deadline = time.monotonic() + 60
    while got < want and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    cpu = time.process_time() - start
    for r in readers:
        r.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    if got < want:
        raise RuntimeError(f"only {got} of {want} frames arrived")
    return cpu


async def run(kind: str, nodes: int, frames: int, txs: int, rounds: int, broker: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        certs.generate_chain_ca(root / "cert")
        certs.generate_agency(root / "cert", root / "agency")
        ids = [certs.generate_node(root / "agency", root / f"n{i}") for i in range(nodes)]
        transports = await _mesh(kind, ids, broker)
        try:
            await _round(transports, max(1, frames // 10), txs)  # warm-up
            per_tx = []
            for _ in range(rounds):
                cpu = await _round(transports, frames, txs)
                per_tx.append(cpu / (frames * nodes * txs) / nodes * 1e6)
        finally:
            for t in transports:
                await t.close()
    runs = " / ".join(f"{x:.2f}" for x in per_tx)
    best, median = min(per_tx), sorted(per_tx)[len(per_tx) // 2]
    return (
        f"{kind:4s} {nodes} nodes, {txs}-tx frames: CPU per gossiped tx per node "
        f"best {best:.2f} us, median {median:.2f} us ({runs})"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--transport", choices=["tcp", "mqtt", "both"], default="both")
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--frames", type=int, default=100, help="gossip frames per node per round")
    p.add_argument("--txs", type=int, default=200, help="transactions per gossip frame")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--broker",
        default=os.environ.get("LEDGERLAB_MQTT_BROKER", "mqtt://127.0.0.1:1883"),
    )
    ns = p.parse_args(argv)
    broker = ns.broker if "://" in ns.broker else f"mqtt://{ns.broker}"
    kinds = ["tcp", "mqtt"] if ns.transport == "both" else [ns.transport]
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    for kind in kinds:
        print(asyncio.run(run(kind, ns.nodes, ns.frames, ns.txs, ns.rounds, broker)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
