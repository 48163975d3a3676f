"""Transport throughput: small frames per second over TCP+TLS and over MQTT.

Sender and receiver run in separate processes (two nodes, as in a cluster); the receiver
times from its first to its last frame. Usage::

    python -m scripts.bench_transport                      # both transports
    python -m scripts.bench_transport --transport tcp --frames 500000 --size 64
    python -m scripts.bench_transport --transport mqtt --broker mqtt://127.0.0.1:1883

Prints per transport: frames/s, MB/s and frames dropped (a one-way stream), then the
round-trip time of one frame each way between two idle nodes (median and p99, in-process).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from node.transport import pki as certs
from node.transport.base import Transport
from node.transport.mqtt import MqttTransport
from node.transport.tcp import TcpTransport

GENESIS = b"\x42" * 32


def _tcp(node_dir: str, allowed: list[str], peers: list[str]) -> TcpTransport:
    ident = certs.load_node(node_dir)
    return TcpTransport(identity=ident, genesis_hash=GENESIS, allowed=allowed, peers=peers)


def _mqtt(node_dir: str, allowed: list[str], broker: str, chain: str) -> MqttTransport:
    ident = certs.load_node(node_dir)
    return MqttTransport(
        key=ident.consensus,
        genesis_hash=GENESIS,
        broker_url=broker,
        chain_id=chain,
        group_id=1,
        members=allowed,
    )


async def _receive(transport: Transport, frames: int, conn: Connection) -> None:
    async with transport:
        if isinstance(transport, TcpTransport):
            conn.send(transport.listen_port)
        else:
            conn.send(0)
        got = 0
        await transport.recv()
        start = last = time.perf_counter()
        got = 1
        while got < frames:
            try:  # frames can be lost (best-effort): stop after 5 s of silence
                await asyncio.wait_for(transport.recv(), 5.0)
            except TimeoutError:
                break
            got += 1 + len(transport.recv_nowait_many(100_000))
            last = time.perf_counter()
        elapsed = last - start
        conn.send((got, elapsed, dict(transport.stats.dropped)))


def _receiver_main(kind: str, args: dict[str, Any], frames: int, conn: Connection) -> None:
    if kind == "tcp":
        t: Transport = _tcp(args["dir"], args["allowed"], [])
    else:
        t = _mqtt(args["dir"], args["allowed"], args["broker"], args["chain"])
    asyncio.run(_receive(t, frames, conn))


async def _send(transport: Transport, target: str, frames: int, size: int) -> dict[str, int]:
    payload = b"\xab" * size
    async with transport:
        await transport.wait_for_peers([target], timeout=20)
        burst = 1000
        for i in range(0, frames, burst):
            for _ in range(min(burst, frames - i)):
                transport.send(target, payload)
            await asyncio.sleep(0)
            while transport.backlog() > 4 * 1024 * 1024:  # pace like a real producer
                await asyncio.sleep(0.0005)
        await asyncio.sleep(1.0)  # let queues drain before closing
        return dict(transport.stats.dropped)


def run(kind: str, frames: int, size: int, broker: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        certs.generate_chain_ca(root / "cert")
        certs.generate_agency(root / "cert", root / "agency")
        rx = certs.generate_node(root / "agency", root / "rx")
        tx = certs.generate_node(root / "agency", root / "tx")
        allowed = [rx.node_id, tx.node_id]
        chain = "bench" + uuid.uuid4().hex[:8]
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        args = {"dir": str(root / "rx"), "allowed": allowed, "broker": broker, "chain": chain}
        proc = ctx.Process(target=_receiver_main, args=(kind, args, frames, child))
        proc.start()
        try:
            port = parent.recv()
            if kind == "tcp":
                sender: Transport = _tcp(str(root / "tx"), allowed, [f"127.0.0.1:{port}"])
            else:
                sender = _mqtt(str(root / "tx"), allowed, broker, chain)
            sent_drops = asyncio.run(_send(sender, rx.node_id, frames, size))
            if not parent.poll(300):
                return f"{kind}: receiver did not report; sender dropped {sent_drops}"
            got, elapsed, recv_drops = parent.recv()
        finally:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        rate = got / elapsed
        return (
            f"{kind:4s} {size:5d}-byte frames: {rate:12,.0f} frames/s  "
            f"{rate * size / 1e6:8.1f} MB/s  ({got:,}/{frames:,} frames in {elapsed:.2f}s; "
            f"dropped sender={sent_drops or 0} receiver={recv_drops or 0})"
        )


async def _ping_pong(a: Transport, b: Transport, rounds: int) -> list[float]:
    """Round-trip samples between two started transports, one frame at a time."""
    await a.wait_for_peers([b.node_id], timeout=20)
    await b.wait_for_peers([a.node_id], timeout=20)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        a.send(b.node_id, b"ping")
        await asyncio.wait_for(b.recv(), 5)
        b.send(a.node_id, b"pong")
        await asyncio.wait_for(a.recv(), 5)
        samples.append(time.perf_counter() - start)
    return sorted(samples)


def rtt(kind: str, broker: str, rounds: int = 500) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        certs.generate_chain_ca(root / "cert")
        certs.generate_agency(root / "cert", root / "agency")
        ids = [certs.generate_node(root / "agency", root / n) for n in ("a", "b")]
        allowed = [i.node_id for i in ids]
        chain = "bench" + uuid.uuid4().hex[:8]

        async def go() -> list[float]:
            if kind == "tcp":
                async with _tcp(str(root / "b"), allowed, []) as b:
                    peer = [f"127.0.0.1:{b.listen_port}"]
                    async with _tcp(str(root / "a"), allowed, peer) as a:
                        return await _ping_pong(a, b, rounds)
            async with (
                _mqtt(str(root / "a"), allowed, broker, chain) as ma,
                _mqtt(str(root / "b"), allowed, broker, chain) as mb,
            ):
                return await _ping_pong(ma, mb, rounds)

        s = asyncio.run(go())
        med, p99 = s[len(s) // 2], s[int(len(s) * 0.99)]
        return (
            f"{kind:4s} round trip, 1 frame each way: "
            f"median {med * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--transport", choices=["tcp", "mqtt", "both"], default="both")
    p.add_argument("--frames", type=int, default=1_000_000)
    p.add_argument("--size", type=int, default=64, help="payload bytes per frame")
    p.add_argument(
        "--broker",
        default=os.environ.get("LEDGERLAB_MQTT_BROKER", "mqtt://127.0.0.1:1883"),
    )
    ns = p.parse_args(argv)
    broker = ns.broker if "://" in ns.broker else f"mqtt://{ns.broker}"
    kinds = ["tcp", "mqtt"] if ns.transport == "both" else [ns.transport]
    for kind in kinds:
        print(run(kind, ns.frames, ns.size, broker), flush=True)
        print(rtt(kind, broker), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
