"""JSON-RPC cost per transaction, against a backend that does nothing.

Measures what the RPC layer itself costs for the benchmark's bulk submission path, with
real signed DagTransfer transactions but a backend whose ``submit`` only returns hashes:

1. in-process: ``Dispatcher.handle_bytes`` on a JSON-RPC batch of ``sendRawTransaction``
   (parse + validate + dispatch + render + encode), per tx, split into its parts; the
   same for single (non-batch) requests;
2. over HTTP: an ``RpcServer`` in a child process, clients in this one posting
   pre-encoded batches over keep-alive connections; transactions per second;
3. for scale: one ``consensus.crypto.recover`` (what admission must pay per tx anyway),
   and the same batch through the real ``node.runtime.txpool.TxPool`` (decode, checks, recovery).

Run: ``python scripts/bench_rpc.py`` (``--help`` for sizes). Figures go to
docs/performance.md ("JSON-RPC").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from consensus.crypto import KeyPair, recover
from node.ledger.tx import Transaction
from node.rpc import Dispatcher, RpcServer
from node.rpc.jsonrpc import encode
from node.runtime.txpool import TxPool, TxRejected

GROUP = "group0"
_HASH = bytes(32)


class NullBackend:
    """Answers instantly: submit() returns a constant hash per tx (no decoding at all)."""

    def chain_id(self) -> str:
        return "chain0"

    def block_number(self) -> int:
        return 1

    async def submit(self, raw_txs: Sequence[bytes]) -> list[bytes]:
        return [_HASH] * len(raw_txs)

    def __getattr__(self, name: str) -> Any:  # the reads the bench never uses
        raise NotImplementedError(name)


class PoolBackend(NullBackend):
    """submit() admits into a real TxPool: what a node pays per submitted tx."""

    def __init__(self) -> None:
        self.pool = TxPool(chain_id="chain0", group_id=GROUP, in_chain=lambda h: False)

    async def submit(self, raw_txs: Sequence[bytes]) -> list[Any]:
        out: list[Any] = []
        for raw in raw_txs:
            try:
                out.append(self.pool.admit(raw, 1).hash)
            except TxRejected as exc:
                out.append(exc)
        return out


def make_txs(count: int) -> list[bytes]:
    key = KeyPair.from_secret(b"\x42" * 32)
    return [
        Transaction.build(
            chain_id="chain0",
            group_id=GROUP,
            to="0x5002",
            method="userTransfer",
            args=[f"user{i % 1000}", f"user{(i + 1) % 1000}", 1],
            block_limit=500,
        )
        .sign(key)
        .encoded
        for i in range(count)
    ]


def batch_body(raws: Sequence[bytes]) -> bytes:
    return json.dumps(
        [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "sendRawTransaction",
                "params": [GROUP, "0x" + r.hex()],
            }
            for i, r in enumerate(raws)
        ]
    ).encode()


def best_of(fn: Any, repeat: int) -> float:
    """The fastest of ``repeat`` timings (seconds) of ``fn()``."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_inprocess(raws: list[bytes], batch: int, repeat: int) -> dict[str, float]:
    dispatcher = Dispatcher({GROUP: NullBackend()})
    loop = asyncio.new_event_loop()
    body = batch_body(raws[:batch])
    message = json.loads(body)
    response = loop.run_until_complete(dispatcher.handle(message))
    singles = [
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "sendRawTransaction",
                "params": [GROUP, "0x" + r.hex()],
            }
        ).encode()
        for r in raws[:batch]
    ]

    def run(b: bytes) -> None:
        loop.run_until_complete(dispatcher.handle_bytes(b))

    async def all_singles() -> None:
        for s in singles:
            await dispatcher.handle_bytes(s)

    out = {
        "batch_us_per_tx": best_of(lambda: run(body), repeat) / batch * 1e6,
        "dispatch_us_per_tx": best_of(
            lambda: loop.run_until_complete(dispatcher.handle(message)), repeat
        )
        / batch
        * 1e6,
        "encode_us_per_tx": best_of(lambda: encode(response), repeat) / batch * 1e6,
        "single_us_per_request": best_of(lambda: loop.run_until_complete(all_singles()), repeat)
        / batch
        * 1e6,
        "json_parse_us_per_tx": best_of(lambda: json.loads(body), repeat) / batch * 1e6,
        "body_bytes_per_tx": len(body) / batch,
    }

    def through_pool() -> None:
        pooled = Dispatcher({GROUP: PoolBackend()})
        answers = json.loads(loop.run_until_complete(pooled.handle_bytes(body)) or b"[]")
        assert all("result" in a for a in answers), answers[:1]

    def direct_pool() -> None:
        pool = PoolBackend().pool
        for raw in raws[:batch]:
            pool.admit(raw, 1)

    rounds = max(3, repeat // 2)
    out["txpool_direct_us_per_tx"] = best_of(direct_pool, rounds) / batch * 1e6
    out["txpool_batch_us_per_tx"] = best_of(through_pool, rounds) / batch * 1e6
    loop.close()
    digest = os.urandom(32)
    sig = KeyPair.from_secret(b"\x42" * 32).sign(digest)
    out["recover_us"] = best_of(lambda: [recover(digest, sig) for _ in range(1000)], 5) / 1000 * 1e6
    return out


def _serve(port_queue: Any, stop: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        async with RpcServer(Dispatcher({GROUP: NullBackend()}), port=0) as server:
            port_queue.put(server.port)
            while not stop.is_set():
                await asyncio.sleep(0.05)

    asyncio.run(main())


async def _client(port: int, body: bytes, deadline: float, counts: list[int], per: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            counts.append(per)
    finally:
        writer.close()


def bench_http(raws: list[bytes], batch: int, connections: int, seconds: float) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    port_queue, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(port_queue, stop), daemon=True)
    proc.start()
    try:
        port = port_queue.get(timeout=30)
        out: dict[str, float] = {}
        for label, body, per, conns in (
            ("http_batch_tx_per_s", batch_body(raws[:batch]), batch, connections),
            (
                "http_single_req_per_s",
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "sendRawTransaction",
                        "params": [GROUP, "0x" + raws[0].hex()],
                    }
                ).encode(),
                1,
                connections,
            ),
        ):
            counts: list[int] = []

            async def drive(
                body: bytes = body, per: int = per, conns: int = conns, counts: list[int] = counts
            ) -> float:
                start = time.perf_counter()
                deadline = start + seconds
                await asyncio.gather(
                    *(_client(port, body, deadline, counts, per) for _ in range(conns))
                )
                return time.perf_counter() - start

            elapsed = asyncio.run(drive())
            out[label] = sum(counts) / elapsed
        return out
    finally:
        stop.set()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=1000, help="txs per JSON-RPC batch")
    parser.add_argument("--repeat", type=int, default=7, help="in-process repetitions")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections")
    parser.add_argument("--seconds", type=float, default=3.0, help="HTTP run length per case")
    parser.add_argument("--no-http", action="store_true", help="in-process figures only")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    raws = make_txs(args.batch)
    results = bench_inprocess(raws, args.batch, args.repeat)
    if not args.no_http:
        results.update(bench_http(raws, args.batch, args.connections, args.seconds))
    results["batch"] = args.batch
    results["python"] = float(f"{sys.version_info.major}.{sys.version_info.minor}")
    if args.json:
        print(json.dumps(results))
        return 0
    rows = [
        (
            "raw tx / JSON per batched tx",
            f"{len(raws[0])} B / {results['body_bytes_per_tx']:.0f} B",
        ),
        ("signature recovery (reference)", f"{results['recover_us']:.2f} us/tx"),
        (f"batch of {args.batch} sendRawTransaction", f"{results['batch_us_per_tx']:.2f} us/tx"),
        ("  json.loads", f"{results['json_parse_us_per_tx']:.2f} us/tx"),
        ("  validate + dispatch + render", f"{results['dispatch_us_per_tx']:.2f} us/tx"),
        ("  encode response", f"{results['encode_us_per_tx']:.2f} us/tx"),
        ("single sendRawTransaction request", f"{results['single_us_per_request']:.2f} us/req"),
        ("TxPool.admit directly (no RPC)", f"{results['txpool_direct_us_per_tx']:.2f} us/tx"),
        ("same batch via RPC into a real TxPool", f"{results['txpool_batch_us_per_tx']:.2f} us/tx"),
    ]
    if not args.no_http:
        rows += [
            (
                f"HTTP batches, {args.connections} keep-alive conns",
                f"{results['http_batch_tx_per_s']:,.0f} tx/s",
            ),
            (
                f"HTTP single requests, {args.connections} conns",
                f"{results['http_single_req_per_s']:,.0f} req/s",
            ),
        ]
    for label, value in rows:
        print(f"{label:<40} {value:>16}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
