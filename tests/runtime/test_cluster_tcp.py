"""Nodes over loopback TCP with mutual TLS, in one process and as real OS processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from scripts.launcher.procs import free_port_base
from tests.runtime.cluster import start_nodes, tcp_chain, transfer, wait_until


def free_base(count: int) -> int:
    """A base port with ``count`` free ports for p2p and ``count`` more at +100 for RPC,
    below the ephemeral range (an outgoing connection may take any port in it)."""
    return free_port_base(100 + count)


@pytest.mark.asyncio
async def test_in_process_tcp_cluster_commits_identically(tmp_path: Path) -> None:
    _, configs = tcp_chain(tmp_path, 4, free_base(4))
    async with contextlib.AsyncExitStack() as stack:
        nodes = await start_nodes(stack, configs)
        nodes[2].submit([transfer(i) for i in range(300)])
        await wait_until(lambda: all(n.chain.store.total_tx_count() == 300 for n in nodes), 30)
        await wait_until(lambda: len({n.chain.head for n in nodes}) == 1)


def rpc(port: int, method: str, *params, timeout: float = 5.0):
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method, "params": ["group0", *params]}
    ).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        reply = json.loads(resp.read())
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply["result"]


def height(port: int) -> int:
    return int(rpc(port, "getBlockNumber"), 16)


class Proc:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.p: subprocess.Popen | None = None

    def start(self) -> None:
        self.p = subprocess.Popen(
            [sys.executable, "-m", "node", "--config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def kill9(self) -> None:
        assert self.p is not None
        os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait()

    def stop(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()


def wait_sync(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, RuntimeError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out (last error: {last})")


def send_batch(port: int, raws: list[bytes]) -> None:
    body = json.dumps(
        [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "sendRawTransaction",
                "params": ["group0", "0x" + raw.hex()],
            }
            for i, raw in enumerate(raws)
        ]
    )
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        replies = json.loads(resp.read())
    assert all("result" in r for r in replies), replies[:3]


@pytest.mark.slow
def test_multi_process_cluster_survives_kill9_and_leader_crash(tmp_path: Path) -> None:
    base = free_base(4)
    _, configs = tcp_chain(tmp_path, 4, base, tick_ms=50)
    rpc_ports = [base + 100 + i for i in range(4)]
    procs = [Proc(c.home / "config.toml") for c in configs]
    try:
        for p in procs:
            p.start()
        wait_sync(lambda: all(len(rpc(port, "getPeers")) == 3 for port in rpc_ports))
        sent = 0

        def load(port: int, count: int) -> None:
            nonlocal sent
            head = height(port)
            send_batch(port, [transfer(sent + i, head=head) for i in range(count)])
            sent += count

        load(rpc_ports[0], 100)
        wait_sync(lambda: all(height(p) >= 1 for p in rpc_ports))

        # kill -9 a follower (f = 1): commits continue on the other three
        victim = 3
        procs[victim].kill9()
        before = height(rpc_ports[0])
        load(rpc_ports[1], 100)
        wait_sync(lambda: height(rpc_ports[0]) > before)

        # restart it: it catches up to the same head and state root
        procs[victim].start()

        def same_head() -> bool:
            blocks = [
                rpc(p, "getBlockByNumber", hex(height(rpc_ports[0])), False) for p in rpc_ports
            ]
            return len({(b["hash"], b["stateRoot"]) for b in blocks}) == 1

        wait_sync(same_head, timeout=40)

        # kill the leader of the next height: a view change, then commits resume
        status = rpc(rpc_ports[0], "getConsensusStatus")
        leader = (
            int(status["leaderIndex"], 16)
            if isinstance(status["leaderIndex"], str)
            else status["leaderIndex"]
        )
        procs[leader].kill9()
        alive = [p for i, p in enumerate(rpc_ports) if i != leader]
        before = height(alive[0])
        load(alive[0], 50)
        wait_sync(lambda: all(height(p) > before for p in alive), timeout=60)
        views = [int(rpc(p, "getPbftView"), 16) for p in alive]
        assert min(views) >= 1, f"the leader's crash must have caused a view change: {views}"
        total = int(rpc(alive[0], "getTotalTransactionCount")["txSum"], 16)
        assert total == sent
    finally:
        for p in procs:
            p.stop()
