"""What every transport offers the node runtime: best-effort frames between node ids.

A transport moves opaque ``bytes`` between nodes named by their node id (128 hex chars,
the consensus public key). It never interprets a frame: PBFT, gossip and sync all sit
above it and tolerate loss, duplication and reordering, so delivery is best-effort and
``send``/``broadcast`` never block -- a frame that cannot be queued is dropped and
counted. Inbound frames come out of one async stream of ``(peer_id, data)``.

Each transport is an async context manager: entering starts its loops, leaving stops
them and closes every connection; afterwards the inbound stream ends.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

if TYPE_CHECKING:
    from consensus.crypto import KeyPair

DEFAULT_INBOX_CAPACITY = 100_000


class Identity(Protocol):
    """Who this node is, as far as a transport needs: its id and consensus key. TCP needs
    more (certificates: :class:`node.transport.pki.NodeIdentity`); MQTT and memory do not."""

    @property
    def node_id(self) -> str: ...

    @property
    def consensus(self) -> KeyPair: ...


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """An identity without certificates, for transports that need none (MQTT, memory)."""

    node_id: str
    consensus: KeyPair

    @classmethod
    def of(cls, key: KeyPair) -> KeyIdentity:
        return cls(key.public_key.hex(), key)


class TransportError(Exception):
    """Base class for transport failures that the caller can act on."""


class TransportClosed(TransportError):
    """The transport has been closed; no more frames will arrive."""


@dataclass(slots=True)
class TransportStats:
    """Counters for metrics. ``dropped`` counts frames, ``disconnects`` connections/peers.

    Reasons are short snake_case strings (``not_connected``, ``frame_too_large``,
    ``genesis_mismatch``, ``bad_signature`` ...), listed in docs/p2p.md.
    """

    connects: int = 0
    """Links established: peer connections (TCP), broker sessions (MQTT)."""
    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    disconnects: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, object]:
        """A plain copy, safe to render while the transport keeps counting."""
        return {
            "connects": self.connects,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "dropped": dict(self.dropped),
            "disconnects": dict(self.disconnects),
        }


class Inbox:
    """Unbounded-by-construction FIFO of inbound frames with a soft ``capacity``.

    Cheaper than ``asyncio.Queue`` for the many-frames-per-wakeup pattern: producers
    append without awaiting; a TCP reader checks :meth:`over_capacity` and awaits
    :meth:`wait_for_space` (back-pressure into the socket); MQTT and memory producers drop.

    Frames that :attr:`urgent_if` marks go to a second FIFO that is always served first
    (the node marks consensus messages, so a vote never queues behind a backlog of
    gossiped transactions); both count against ``capacity``.
    """

    __slots__ = ("_closed", "_getter", "_items", "_space", "_urgent", "capacity", "urgent_if")

    def __init__(self, capacity: int = DEFAULT_INBOX_CAPACITY) -> None:
        self.capacity = capacity
        self.urgent_if: Callable[[bytes], bool] | None = None
        self._items: deque[tuple[str, bytes]] = deque()
        self._urgent: deque[tuple[str, bytes]] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._space: asyncio.Future[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._items) + len(self._urgent)

    def over_capacity(self) -> bool:
        return len(self._items) + len(self._urgent) >= self.capacity

    def put(self, peer_id: str, data: bytes) -> None:
        if self._closed:
            return
        urgent_if = self.urgent_if
        if urgent_if is not None and urgent_if(data):
            self._urgent.append((peer_id, data))
        else:
            self._items.append((peer_id, data))
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    async def wait_for_space(self) -> None:
        while len(self) >= self.capacity and not self._closed:
            self._space = asyncio.get_running_loop().create_future()
            try:
                await self._space
            finally:
                self._space = None

    def _release_space(self) -> None:
        space = self._space
        if space is not None and not space.done() and len(self) < self.capacity:
            space.set_result(None)

    async def get(self) -> tuple[str, bytes]:
        while not (self._urgent or self._items):
            if self._closed:
                raise TransportClosed("transport closed")
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        item = self._urgent.popleft() if self._urgent else self._items.popleft()
        self._release_space()
        return item

    def get_many(self, limit: int) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for items in (self._urgent, self._items):
            n = min(limit - len(out), len(items))
            out += [items.popleft() for _ in range(n)]
        self._release_space()
        return out

    def get_urgent(self, limit: int) -> list[tuple[str, bytes]]:
        """Up to ``limit`` urgent frames already here, without waiting."""
        urgent = self._urgent
        out = [urgent.popleft() for _ in range(min(limit, len(urgent)))]
        self._release_space()
        return out

    def close(self) -> None:
        self._closed = True
        for fut in (self._getter, self._space):
            if fut is not None and not fut.done():
                fut.set_result(None)


class Transport(ABC):
    """The interface the node runtime programs against (memory, TCP, MQTT)."""

    node_id: str
    stats: TransportStats

    def __init__(self, node_id: str, *, inbox_capacity: int = DEFAULT_INBOX_CAPACITY) -> None:
        self.node_id = node_id
        self.stats = TransportStats()
        self._inbox = Inbox(inbox_capacity)
        self._peers_changed = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------

    @abstractmethod
    async def start(self) -> None:
        """Start listening/connecting; returns once the transport can be used."""

    @abstractmethod
    async def close(self) -> None:
        """Stop every loop and connection; idempotent. Ends the inbound stream."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- outbound ----------------------------------------------------------------

    @abstractmethod
    def send(self, peer_id: str, data: bytes) -> bool:
        """Queue ``data`` for ``peer_id``; never blocks. False (and counted) if dropped."""

    @abstractmethod
    def broadcast(self, data: bytes) -> int:
        """Queue ``data`` for every connected peer; returns how many it was queued for."""

    def backlog(self) -> int:
        """Bytes accepted by ``send``/``broadcast`` but not yet handed to the network.

        Producers that can wait (gossip, block sync, benchmarks) pause while it is large,
        instead of running into the per-peer limit where frames are dropped.
        """
        return 0

    @abstractmethod
    def set_members(self, allowed: Iterable[str] | None, blacklist: Iterable[str] = ()) -> None:
        """Replace the admitted node ids (after a sealer/observer change); peers that are
        no longer admitted are disconnected or ignored from now on."""

    @abstractmethod
    def peers(self) -> frozenset[str]:
        """Node ids currently reachable (connected, handshaken, admitted)."""

    def heard_within(self, seconds: float) -> frozenset[str]:
        """The :meth:`peers` a frame (data, ping or heartbeat) arrived from within the
        last ``seconds`` (monotonic clock).

        A connection can outlive its peer's ability to speak: a frozen (SIGSTOPped)
        process keeps its sockets open, and the kernel keeps acknowledging, until the
        idle timeout drops it. What must know who is alive *now* (the admission quorum
        check, stall reports) asks this instead. A transport that does not time its
        peers answers :meth:`peers`.
        """
        return self.peers()

    # -- inbound -----------------------------------------------------------------

    async def recv(self) -> tuple[str, bytes]:
        """The next inbound ``(peer_id, data)``; raises :class:`TransportClosed` at the end."""
        return await self._inbox.get()

    def recv_nowait_many(self, limit: int = 1024) -> list[tuple[str, bytes]]:
        """Up to ``limit`` frames already received, without waiting (batch consumers)."""
        return self._inbox.get_many(limit)

    def deliver_first(self, urgent: Callable[[bytes], bool]) -> None:
        """Frames ``urgent`` marks are delivered before every other waiting frame (in
        arrival order among themselves); the node marks its consensus messages. A
        transport that queues its writes (TCP) also sends such frames at once, ahead of
        what it has queued, so a vote leaves when it is cast and not after whatever its
        node does next (executing a block)."""
        self._inbox.urgent_if = urgent

    def recv_urgent_nowait(self, limit: int = 1024) -> list[tuple[str, bytes]]:
        """Up to ``limit`` urgent frames already received (:meth:`deliver_first`)."""
        return self._inbox.get_urgent(limit)

    def queued(self) -> int:
        """Frames received and not yet taken, urgent or not."""
        return len(self._inbox)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> tuple[str, bytes]:
        try:
            return await self._inbox.get()
        except TransportClosed:
            raise StopAsyncIteration from None

    # -- helpers -----------------------------------------------------------------

    def _notify_peers_changed(self) -> None:
        self._peers_changed.set()
        self._peers_changed = asyncio.Event()

    async def peers_change(self) -> None:
        """Return once :meth:`peers` may have changed (a link came up or went down)."""
        await self._peers_changed.wait()

    async def wait_for_peers(self, peer_ids: Iterable[str], timeout: float | None = None) -> None:
        """Wait until every id in ``peer_ids`` is connected; ``TimeoutError`` after ``timeout``."""
        wanted = frozenset(peer_ids)
        async with asyncio.timeout(timeout):
            while not wanted <= self.peers():
                await self.peers_change()
