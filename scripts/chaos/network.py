"""The chaos cluster's wiring: one proxied :class:`~scripts.chaos.proxy.Link` per pair.

TCP: node ``i``'s config lists, for every other node ``j``, the address of the
listener ``i -> j`` (which forwards to ``j``'s real P2P port); ``j`` dials ``i`` through
its own listener ``j -> i``. Both listeners share the pair's link, so a cut stops the
pair whichever of the two connections the transport kept.

MQTT: node ``i``'s broker URL is its own listener ``i -> broker``; the link is the
node's path to the broker, so cutting it isolates the node from everyone. A partition
into groups keeps the largest group on the broker and isolates each other node (two
isolated nodes cannot talk to each other either: the broker is their only path).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from scripts.chaos.proxy import CLEAR, FlowFaults, Link, Listener

BROKER = "broker"
FRAME = 64 * 1024  # bytes: a large consensus frame, for the delay a rate limit adds


def name(index: int) -> str:
    return f"node{index}"


class Network:
    """Links and listeners of one chaos cluster; node indices outside, names inside."""

    def __init__(self, transport: str, *, seed: int = 0) -> None:
        self.transport = transport
        self.seed = seed
        self.links: dict[frozenset[str], Link] = {}
        self.listeners: dict[tuple[str, str], Listener] = {}
        self.targets: dict[str, tuple[str, int]] = {}  # endpoint -> real address
        self.broker_up = True

    # -- wiring -------------------------------------------------------------------------

    def _link(self, a: str, b: str) -> Link:
        key = frozenset((a, b))
        if key not in self.links:
            self.links[key] = Link(a, b, seed=self.seed * 1000 + len(self.links))
        return self.links[key]

    async def _listener(self, src: str, dst: str) -> Listener:
        listener = Listener(self._link(src, dst), src, dst, lambda: self.targets[dst])
        await listener.start()
        self.listeners[(src, dst)] = listener
        return listener

    async def add_tcp_node(self, index: int, p2p: str, peers: Iterable[int]) -> None:
        """Wire node ``index`` (real P2P address ``p2p``) to ``peers``, both ways."""
        me = name(index)
        host, _, port = p2p.rpartition(":")
        self.targets[me] = (host, int(port))
        for j in peers:
            for key in ((me, name(j)), (name(j), me)):
                if key not in self.listeners:
                    await self._listener(*key)

    def dial_address(self, src: int, dst: int) -> str:
        """Where node ``src`` dials node ``dst``: its listener ``src -> dst``."""
        return self.listeners[(name(src), name(dst))].address

    async def add_mqtt_node(self, index: int, broker: tuple[str, int]) -> str:
        """Wire node ``index`` to the broker; the broker URL it should use."""
        self.targets[BROKER] = broker
        listener = await self._listener(name(index), BROKER)
        return f"mqtt://{listener.address}"

    async def close(self) -> None:
        for listener in self.listeners.values():
            await listener.close()

    # -- faults -------------------------------------------------------------------------

    def pair(self, a: int, b: int) -> list[Link]:
        """The links that carry ``a``'s traffic to ``b``."""
        if self.transport == "tcp":
            link = self.links.get(frozenset((name(a), name(b))))
            return [link] if link else []
        return [x for i in (a, b) if (x := self.links.get(frozenset((name(i), BROKER))))]

    def node_links(self, index: int) -> list[Link]:
        return [link for key, link in self.links.items() if name(index) in key]

    def partition(self, groups: Sequence[Sequence[int]], mode: str) -> list[Link]:
        """Cut every link between groups (MQTT: isolate all but the largest group)."""
        cut: list[Link] = []
        if self.transport == "tcp":
            for ga, gb in itertools.combinations(groups, 2):
                for a in ga:
                    for b in gb:
                        cut += self.pair(a, b)
        else:
            keep = max(groups, key=len)
            for group in groups:
                if group is not keep:
                    for i in group:
                        cut += self.node_links(i)
        for link in cut:
            link.cut_off(mode)
        return cut

    def degrade(self, pairs: Iterable[tuple[int, int]] | None, faults: FlowFaults) -> list[Link]:
        links = self._select(pairs)
        for link in links:
            link.set_faults(faults)
        return links

    def _select(self, pairs: Iterable[tuple[int, int]] | None) -> list[Link]:
        if pairs is None:
            return list(self.links.values())
        out: dict[int, Link] = {}
        for a, b in pairs:  # MQTT: the first node's path to the broker
            for link in self.pair(a, b) if self.transport == "tcp" else self.node_links(a):
                out[id(link)] = link
        return list(out.values())

    def heal(self, links: Iterable[Link] | None = None) -> None:
        for link in self.links.values() if links is None else links:
            link.heal()

    def restore(self, links: Iterable[Link] | None = None) -> None:
        """Heal and clear every fault of ``links`` (default: all)."""
        for link in self.links.values() if links is None else links:
            link.set_faults(CLEAR)
            link.heal()

    # -- what the checker's quorum model needs ------------------------------------------

    def can_talk(self, a: int, b: int) -> bool:
        if self.transport == "mqtt" and not self.broker_up:
            return False
        return not any(link.cut for link in self.pair(a, b))

    def worst_delay(self) -> float:
        """The largest one-way delay on any link now (seconds): delay plus jitter, plus the
        time a rate limit takes to pass a 64 KiB frame (a block of a hundred transfers)."""
        return max(
            (
                f.delay + f.jitter + (FRAME / f.rate if f.rate else 0.0)
                for link in self.links.values()
                for f in link.flows.values()
            ),
            default=0.0,
        )

    def degraded(self) -> bool:
        return any(f.degraded for link in self.links.values() for f in link.flows.values())
