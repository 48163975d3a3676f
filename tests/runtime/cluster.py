"""Cluster helpers for tests: memory clusters (node.local), TCP chains on loopback, signed
transfers."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

from consensus.crypto import KeyPair
from node.ledger.genesis import GenesisConfig
from node.ledger.tx import Transaction
from node.runtime import Node
from node.runtime.config import NodeConfig
from node.runtime.local import MemoryCluster, wait_for
from node.transport.pki import generate_agency, generate_chain_ca, generate_node

__all__ = [
    "CLIENT",
    "LOOPS",
    "MemoryCluster",
    "loops_alive",
    "memory_cluster",
    "pool_sizes_at_probe",
    "start_nodes",
    "tcp_chain",
    "transfer",
    "wait_until",
]

CLIENT = KeyPair.generate(random.Random(99))
LOOPS = frozenset({"inbound", "tick", "seal", "gossip", "status", "sync"})


def loops_alive(node: Node) -> bool:
    """Every long-lived loop runs and none ever failed (supervision policy)."""
    names = {name.rpartition(":")[2] for name in node.supervisor.running()}
    return names >= LOOPS and node.failure is None and not node.supervisor.restarts


def transfer(
    i: int,
    *,
    head: int = 0,
    method: str = "userSave",
    args: list | None = None,
    key: KeyPair = CLIENT,
    chain_id: str = "chain0",
    nonce: str | None = None,
) -> bytes:
    tx = Transaction.build(
        chain_id=chain_id,
        group_id="group0",
        to="0x5002",
        method=method,
        args=args if args is not None else [f"user{i % 50}", 1 + i],
        block_limit=head + 500,
        nonce=nonce if nonce is not None else f"t{i}-{random.random()}",
    )
    return tx.sign(key).encode()


@contextlib.asynccontextmanager
async def memory_cluster(n: int = 4, **kw) -> AsyncIterator[list[Node]]:
    async with MemoryCluster(n, **kw) as cluster:
        yield cluster.running()


def tcp_chain(
    tmp: Path,
    n: int,
    base_port: int,
    *,
    tick_ms: int = 20,
    observers: int = 0,
    free: int = 0,
    governors: tuple[bytes, ...] = (),
    chain_id: str = "chain0",
    transport: str = "tcp",
    mqtt_broker: str | None = None,
) -> tuple[GenesisConfig, list[NodeConfig]]:
    """Certificates, genesis and configs for ``n`` sealers (+ observers) on loopback.

    ``free`` more nodes get certificates and configs (every node lists every other as a
    peer) but are in neither genesis list, as ``ledgerlab add-node`` would make them.

    ``transport="mqtt"`` with ``mqtt_broker`` routes peer traffic through a broker; a
    unique ``chain_id`` gives the chain its own topic tree on a shared broker.
    """
    generate_chain_ca(tmp / "ca")
    generate_agency(tmp / "ca", tmp / "agency")
    identities = [
        generate_node(tmp / "agency", tmp / f"node{i}" / "conf", name=f"node{i}")
        for i in range(n + observers + free)
    ]
    genesis = GenesisConfig(
        chain_id=chain_id,
        sealers=tuple(x.consensus.public_key for x in identities[:n]),
        observers=tuple(x.consensus.public_key for x in identities[n : n + observers]),
        governors=governors,
    )
    total = n + observers + free
    p2p = [f"127.0.0.1:{base_port + i}" for i in range(total)]
    configs = []
    for i in range(total):
        home = tmp / f"node{i}"
        genesis.dump(home / "conf" / "genesis.toml")
        cfg = NodeConfig(
            home=home,
            name=f"node{i}",
            p2p_listen=p2p[i],
            peers=tuple(p for j, p in enumerate(p2p) if j != i),
            rpc_listen=f"127.0.0.1:{base_port + 100 + i}",
            tick_ms=tick_ms,
            seal_max_wait_ms=20,
            transport=transport,
            **({"mqtt_broker": mqtt_broker} if mqtt_broker else {}),
        )
        (home / "config.toml").write_text(cfg.to_toml())
        configs.append(cfg)
    return genesis, configs


wait_until = wait_for


async def start_nodes(
    stack: contextlib.AsyncExitStack, configs: list[NodeConfig], *, timeout: float = 20.0
) -> list[Node]:
    """A node per config in this process (closed with ``stack``), once all see each other."""
    nodes = [
        await stack.enter_async_context(Node.from_config(c.home / "config.toml")) for c in configs
    ]
    await wait_until(
        lambda: all(len(n.transport.peers()) >= len(nodes) - 1 for n in nodes), timeout
    )
    return nodes


def pool_sizes_at_probe(node: Node) -> list[int]:
    """Make ``node`` swallow a consensus message ``b"probe"`` (never stepped into its
    replica) and note its pool size each time one is handled: how many admissions a
    consensus frame waited behind. Other events go through as before."""
    seen: list[int] = []
    feed = node._feed

    def spy(event):  # type: ignore[no-untyped-def]
        if type(event).__name__ == "MessageReceived" and event.message == b"probe":
            seen.append(len(node.pool))
            return None
        return feed(event)

    node._feed = spy  # type: ignore[method-assign]
    return seen
