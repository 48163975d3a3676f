"""In-process transport: every node of a test cluster registers on one :class:`MemoryHub`.

Frames are handed over by reference (bytes are immutable), so a 4-node cluster runs in
one event loop with no sockets. Hooks shape the network for tests: ``latency(src, dst)``
returns seconds (frames with different delays may reorder, as on a real network),
``drop(src, dst, data)`` returns True to lose a frame, and :meth:`MemoryHub.partition`
splits nodes into groups that cannot reach each other until :meth:`MemoryHub.heal`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable

from node.transport.base import DEFAULT_INBOX_CAPACITY, Transport

LatencyHook = Callable[[str, str], float]
DropHook = Callable[[str, str, bytes], bool]


class MemoryHub:
    """The shared medium of an in-process cluster."""

    def __init__(self, *, latency: LatencyHook | None = None, drop: DropHook | None = None) -> None:
        self.latency = latency
        self.drop = drop
        self.lost: Counter[str] = Counter()
        self._nodes: dict[str, MemoryTransport] = {}
        self._group_of: dict[str, int] = {}

    def partition(self, *groups: Iterable[str]) -> None:
        """Only nodes in the same group reach each other; unlisted nodes are isolated."""
        self._group_of = {}
        for index, group in enumerate(groups):
            for node_id in group:
                self._group_of[node_id] = index
        self._changed()

    def heal(self) -> None:
        self._group_of = {}
        self._changed()

    def reachable(self, src: str, dst: str) -> bool:
        if src == dst or dst not in self._nodes or src not in self._nodes:
            return False
        if not self._group_of:
            return True
        g = self._group_of.get(src)
        return g is not None and g == self._group_of.get(dst)

    def _join(self, transport: MemoryTransport) -> None:
        if transport.node_id in self._nodes:
            raise ValueError(f"node {transport.node_id[:16]} already on this hub")
        self._nodes[transport.node_id] = transport
        self._changed()

    def _leave(self, transport: MemoryTransport) -> None:
        if self._nodes.get(transport.node_id) is transport:
            del self._nodes[transport.node_id]
            self._changed()

    def _changed(self) -> None:
        for t in self._nodes.values():
            t._notify_peers_changed()

    def _peers_of(self, node_id: str) -> frozenset[str]:
        return frozenset(n for n in self._nodes if self.reachable(node_id, n))

    def _transmit(self, src: str, dst: str, data: bytes) -> bool:
        if not self.reachable(src, dst):
            return False
        if self.drop is not None and self.drop(src, dst, data):
            self.lost["drop_hook"] += 1
            return True  # lost on the wire: the sender cannot tell
        delay = self.latency(src, dst) if self.latency is not None else 0.0
        target = self._nodes[dst]
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._arrive, src, dst, data)
        else:
            target._deliver(src, data)
        return True

    def _arrive(self, src: str, dst: str, data: bytes) -> None:
        target = self._nodes.get(dst)
        if target is None or not self.reachable(src, dst):
            self.lost["partitioned_in_flight"] += 1
            return
        target._deliver(src, data)


class MemoryTransport(Transport):
    """One node's view of a :class:`MemoryHub`; peers are the reachable hub members that
    admit each other (both allowed sets), as a TCP link needs both ends to accept it."""

    def __init__(
        self,
        hub: MemoryHub,
        node_id: str,
        *,
        allowed: Iterable[str] | None = None,
        inbox_capacity: int = DEFAULT_INBOX_CAPACITY,
    ) -> None:
        super().__init__(node_id, inbox_capacity=inbox_capacity)
        self.hub = hub
        self._allowed = frozenset(allowed) if allowed is not None else None
        self._blacklist: frozenset[str] = frozenset()
        self._running = False
        self._heard: dict[str, float] = {}  # peer -> monotonic time of its last frame

    def _admits(self, node_id: str) -> bool:
        if node_id in self._blacklist:
            return False
        return self._allowed is None or node_id in self._allowed

    async def start(self) -> None:
        self.hub._join(self)
        self._running = True

    async def close(self) -> None:
        if self._running:
            self._running = False
            self.hub._leave(self)
        self._inbox.close()

    def set_members(self, allowed: Iterable[str] | None, blacklist: Iterable[str] = ()) -> None:
        self._allowed = frozenset(allowed) if allowed is not None else None
        self._blacklist = frozenset(blacklist)
        if self._running:
            self.hub._changed()  # the other side's peers() may change too
        else:
            self._notify_peers_changed()

    def peers(self) -> frozenset[str]:
        if not self._running:
            return frozenset()
        nodes = self.hub._nodes
        me = self.node_id
        return frozenset(
            p for p in self.hub._peers_of(me) if self._admits(p) and nodes[p]._admits(me)
        )

    def heard_within(self, seconds: float) -> frozenset[str]:
        cutoff = time.monotonic() - seconds
        heard = self._heard
        return frozenset(p for p in self.peers() if heard.get(p, -1.0) >= cutoff)

    def send(self, peer_id: str, data: bytes) -> bool:
        if not self._running or not self._admits(peer_id):
            self.stats.dropped["not_connected"] += 1
            return False
        if not self.hub._transmit(self.node_id, peer_id, data):
            self.stats.dropped["not_connected"] += 1
            return False
        self.stats.frames_out += 1
        self.stats.bytes_out += len(data)
        return True

    def broadcast(self, data: bytes) -> int:
        return sum(self.send(p, data) for p in self.peers())

    def _deliver(self, src: str, data: bytes) -> None:
        if not self._admits(src):
            self.stats.dropped["not_member"] += 1
            return
        self._heard[src] = time.monotonic()  # alive, even if the frame is dropped below
        if self._inbox.over_capacity():
            self.stats.dropped["inbox_full"] += 1
            return
        self.stats.frames_in += 1
        self.stats.bytes_in += len(data)
        self._inbox.put(src, data)
