"""An in-process cluster: N nodes of one genesis on a memory hub, each restartable.

Used by the tests, the block-sync benchmark and anyone who wants a whole chain inside
one Python process (no sockets, no files). Each node keeps its in-memory store across
:meth:`MemoryCluster.stop` and :meth:`MemoryCluster.start`, which is what a restart from
disk looks like to the node.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from consensus.crypto import KeyPair
from node.ledger.genesis import GenesisConfig
from node.runtime import Node
from node.runtime.config import NodeConfig
from node.transport import MemoryHub
from storage.backends import open_store


class MemoryCluster:
    """Sealers (and observers) of one genesis on a :class:`MemoryHub`, restartable.

    Each node keeps its in-memory store across :meth:`stop`/:meth:`start`, which is what
    a restart from disk looks like to the node. ``free`` nodes have keys in neither
    genesis list (what ``ledgerlab add-node`` makes): they are not started with the
    cluster; :meth:`start` one after (or before) governance adds it as an observer.
    """

    def __init__(
        self,
        n: int = 4,
        *,
        observers: int = 0,
        free: int = 0,
        seed: int = 1,
        tick_ms: int = 20,
        seal_max_wait_ms: int = 20,
        rpc: bool = False,
        byzantine: Mapping[int, str] | None = None,
        clocks: Mapping[int, Callable[[], float]] | None = None,
        **genesis_kw: Any,
    ) -> None:
        """``byzantine``: node index -> a Byzantine test mode (node/runtime/byzantine.py);
        ``clocks``: node index -> its wall clock (default ``time.time``)."""
        rng = random.Random(seed)
        self.keys = [KeyPair.generate(rng) for _ in range(n + observers + free)]
        self.members = n + observers  # nodes 0 .. members-1 start with the cluster
        self.genesis = GenesisConfig(
            sealers=tuple(k.public_key for k in self.keys[:n]),
            observers=tuple(k.public_key for k in self.keys[n : self.members]),
            **genesis_kw,
        )
        self.hub = MemoryHub()
        self.kvs = [open_store(None) for _ in self.keys]
        self.tick_ms = tick_ms
        self.seal_max_wait_ms = seal_max_wait_ms
        self.rpc = rpc
        self.nodes: list[Node | None] = [None] * len(self.keys)
        self.byzantine = dict(byzantine or {})
        self.clocks = dict(clocks or {})

    async def start(self, i: int) -> Node:
        cfg = NodeConfig(
            home=Path("."),
            name=f"node{i}",
            transport="memory",
            tick_ms=self.tick_ms,
            seal_max_wait_ms=self.seal_max_wait_ms,
            rpc_listen="127.0.0.1:0",
            byzantine=self.byzantine.get(i),
        )
        node = Node(
            config=cfg,
            genesis=self.genesis,
            keypair=self.keys[i],
            kv=self.kvs[i],
            hub=self.hub,
            rpc=self.rpc,
            clock=self.clocks.get(i, time.time),
        )
        await node.__aenter__()
        self.nodes[i] = node
        return node

    async def stop(self, i: int) -> None:
        node, self.nodes[i] = self.nodes[i], None
        if node is not None:
            await node.__aexit__(None, None, None)

    def node(self, i: int) -> Node:
        """Node ``i``; it must be running."""
        node = self.nodes[i]
        if node is None:
            raise RuntimeError(f"node{i} is stopped")
        return node

    def running(self) -> list[Node]:
        return [n for n in self.nodes if n is not None]

    async def __aenter__(self) -> MemoryCluster:
        for i in range(self.members):
            await self.start(i)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for i in range(len(self.keys)):
            await self.stop(i)


async def wait_for(
    predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.02
) -> None:
    """Poll ``predicate`` until it holds; ``TimeoutError`` after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(interval)
