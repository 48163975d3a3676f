"""Helpers for cluster tests over MQTT: unique chains, a private Mosquitto, agreement checks.

Each test gets its own chain id, hence its own topic tree (``ledgerlab/<chain>/group0``)
and client ids, so tests sharing the broker at 127.0.0.1:1883 -- in parallel, or after an
earlier run left clients behind -- never see each other's traffic.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from node.ledger.genesis import GenesisConfig
from node.rpc.client import RpcClient
from node.runtime import Node
from node.runtime.config import NodeConfig
from tests.runtime.cluster import tcp_chain
from tests.runtime.test_cluster_tcp import Proc, free_base, wait_sync


def unique_chain() -> str:
    return "mq" + uuid.uuid4().hex[:12]


def mqtt_chain(
    tmp: Path,
    broker_url: str,
    *,
    n: int = 4,
    observers: int = 0,
    tick_ms: int = 20,
    chain_id: str | None = None,
) -> tuple[str, list[int], GenesisConfig, list[NodeConfig]]:
    """``n`` sealer (+ observer) folders whose peer traffic goes through ``broker_url``.

    Returns the (unique) chain id, the nodes' RPC ports, the genesis and the configs.
    """
    chain = chain_id or unique_chain()
    total = n + observers
    base = free_base(total)
    genesis, configs = tcp_chain(
        tmp,
        n,
        base,
        tick_ms=tick_ms,
        observers=observers,
        chain_id=chain,
        transport="mqtt",
        mqtt_broker=broker_url,
    )
    return chain, [base + 100 + i for i in range(total)], genesis, configs


def heads_agree(nodes: list[Node]) -> bool:
    return len({n.chain.head for n in nodes}) == 1


def assert_same_chain(nodes: list[Node]) -> None:
    """Every height on every node: the same block hash and state root (no fork)."""
    top = nodes[0].chain.head.number
    assert all(n.chain.head.number == top for n in nodes)
    for number in range(1, top + 1):
        seen = set()
        for n in nodes:
            block = n.chain.block(number)
            assert block is not None, f"{n.config.name} lacks block {number}"
            seen.add((block.hash, block.header.state_root))
        assert len(seen) == 1, f"fork at height {number}: {seen}"


class ProcCluster:
    """Real ``python -m node`` processes for ``configs``, with a sync RPC client per node."""

    def __init__(self, configs: list[NodeConfig], rpc_ports: list[int]) -> None:
        self.configs = configs
        self.procs = [Proc(c.home / "config.toml") for c in configs]
        self.rpc_ports = rpc_ports
        self.clients = [RpcClient("127.0.0.1", port, timeout=5.0) for port in rpc_ports]

    def __enter__(self) -> ProcCluster:
        for p in self.procs:
            p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.stop()
        for c in self.clients:
            c.close()

    def wait_connected(self, timeout: float = 30.0) -> None:
        n = len(self.procs)
        self.check_alive()
        wait_sync(lambda: all(len(c.peers()) == n - 1 for c in self.clients), timeout)

    def check_alive(self) -> None:
        for p, cfg in zip(self.procs, self.configs, strict=True):
            assert p.p is not None
            if p.p.poll() is not None:
                err = p.p.stderr.read().decode(errors="replace") if p.p.stderr else ""
                raise AssertionError(f"{cfg.name} exited with {p.p.returncode}: {err[-2000:]}")

    def restart(self, i: int) -> None:
        """Start node ``i`` again (after ``procs[i].kill9()``) with a fresh RPC client."""
        self.procs[i].start()
        self.clients[i].close()
        self.clients[i] = RpcClient("127.0.0.1", self.rpc_ports[i], timeout=5.0)

    def heads(self, clients: list[RpcClient] | None = None) -> set[tuple[str, str]]:
        """``(hash, stateRoot)`` of each node's head block, as one set."""
        out = set()
        for c in self.clients if clients is None else clients:
            block = c.get_block(c.block_number())
            out.add((block["hash"], block["stateRoot"]))
        return out

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for cfg in self.configs:
            assert cfg.log_file is not None
            path = cfg.path(cfg.log_file)
            text = path.read_text(errors="replace").splitlines() if path.exists() else []
            parts.append(f"--- {cfg.name}\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)
