"""A fault-injecting TCP proxy: the chaos runner's netem.

Every byte between two nodes (or between a node and the MQTT broker) goes through a
:class:`Link`. A link has two *flows*, one per direction of data, each with its own
:class:`FlowFaults`: delay and jitter, TCP-style loss (a lost segment costs a
retransmission timeout, so loss shows as late bytes, never as missing ones: the bytes are
TLS records and a missing byte would only ever be a reset), a rate limit, a per-chunk
reset probability, and a cut. A cut link is a *blackhole* (bytes wait in the proxy, new
connections are accepted but not forwarded, as in a real partition where segments are
retransmitted until someone times out: on heal the held bytes go through, in order, to
the connections the nodes have not given up on; a connection attempt that waited is
reset) or a *reset* (every connection through it is reset at once and new ones are reset
on arrival).

A link is served by one or more :class:`Listener` s (a loopback port each). For a TCP
pair both nodes dial, each through its own listener (``i -> j`` and ``j -> i``), and the
transport keeps one of the two connections (the lower node id's, node/transport/tcp.py
``_register``): that is why faults belong to the pair, not to a listener, so a cut
really cuts the pair both ways whichever connection survived.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

HOST = "127.0.0.1"
CHUNK = 64 * 1024
HELD_LIMIT = 8 * 1024 * 1024  # bytes a flow holds before it stops reading (backpressure)
RTO = 0.2  # Linux's minimum retransmission timeout: what one lost segment costs


@dataclass(frozen=True, slots=True)
class FlowFaults:
    """What happens to the bytes of one direction of a link."""

    delay: float = 0.0  # seconds, one way
    jitter: float = 0.0  # seconds, uniform in [-jitter, +jitter] (order is kept)
    loss: float = 0.0  # probability a chunk waits one more RTO (doubling while lost again)
    rate: float = 0.0  # bytes per second, 0 = unlimited
    reset: float = 0.0  # probability a chunk resets the connection
    cut: bool = False  # nothing passes

    @property
    def degraded(self) -> bool:
        return bool(self.delay or self.jitter or self.loss or self.rate or self.reset)


CLEAR = FlowFaults()


class Link:
    """Faults of one pair of endpoints ``a`` and ``b`` and the connections through it."""

    def __init__(self, a: str, b: str, *, seed: int = 0) -> None:
        self.a, self.b = a, b
        self.flows: dict[tuple[str, str], FlowFaults] = {(a, b): CLEAR, (b, a): CLEAR}
        self.mode = "blackhole"
        self.pipes: set[Pipe] = set()
        self.changed = asyncio.Event()
        self.rng = random.Random(seed)
        self.bytes = {(a, b): 0, (b, a): 0}

    @property
    def name(self) -> str:
        return f"{self.a}<->{self.b}"

    def flow(self, src: str, dst: str) -> FlowFaults:
        return self.flows[(src, dst)]

    @property
    def cut(self) -> bool:
        return any(f.cut for f in self.flows.values())

    def set_faults(self, faults: FlowFaults, direction: tuple[str, str] | None = None) -> None:
        """Replace the faults of one direction (or both); cut state is kept."""
        for key in [direction] if direction else list(self.flows):
            self.flows[key] = replace(faults, cut=self.flows[key].cut)
        self._wake()

    def clear_faults(self) -> None:
        self.set_faults(CLEAR)

    def cut_off(self, mode: str = "blackhole", direction: tuple[str, str] | None = None) -> None:
        if mode not in ("blackhole", "reset"):
            raise ValueError(f"cut mode must be blackhole or reset, got {mode!r}")
        self.mode = mode
        for key in [direction] if direction else list(self.flows):
            self.flows[key] = replace(self.flows[key], cut=True)
        if mode == "reset":
            self.reset_all()
        self._wake()

    def heal(self) -> None:
        """Let bytes through again: what a blackhole held is delivered, in order."""
        for key in self.flows:
            self.flows[key] = replace(self.flows[key], cut=False)
        self._wake()

    def reset_all(self) -> None:
        for pipe in list(self.pipes):
            pipe.abort()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def until_open(self) -> None:
        while self.cut:
            await self.changed.wait()


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a dropped path or a peer crash looks."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Pipe:
    """One proxied connection: two pumps, one per direction."""

    def __init__(
        self,
        link: Link,
        src: str,
        dst: str,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.link = link
        self.client, self.server = client, server
        self.closed = asyncio.Event()
        self._pumps = (
            _Pump(self, client[0], server[1], (src, dst)),
            _Pump(self, server[0], client[1], (dst, src)),
        )

    async def run(self) -> None:
        self.link.pipes.add(self)
        tasks = [asyncio.ensure_future(p.run()) for p in self._pumps]
        try:
            await self.closed.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.link.pipes.discard(self)
            for _, w in (self.client, self.server):
                w.transport.abort()

    def abort(self) -> None:
        for _, w in (self.client, self.server):
            _rst(w)
        self.closed.set()

    def finish(self) -> None:
        """One side closed: close the other (FIN), then stop."""
        for _, w in (self.client, self.server):
            with contextlib.suppress(OSError, RuntimeError):
                w.close()
        self.closed.set()


class _Pump:
    """Reads one side, schedules each chunk by the flow's faults, writes it in order."""

    def __init__(
        self,
        pipe: Pipe,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: tuple[str, str],
    ) -> None:
        self.pipe, self.reader, self.writer, self.direction = pipe, reader, writer, direction
        self.queue: deque[tuple[float, bytes]] = deque()
        self.queued = 0
        self.ready = asyncio.Event()
        self.room = asyncio.Event()
        self.last_due = 0.0
        self.rate_due = 0.0
        self.lost_in_row = 0
        self.eof = False

    async def run(self) -> None:
        writer_task = asyncio.ensure_future(self._deliver())
        try:
            await self._read()
            await writer_task
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            self.pipe.abort()
        finally:
            writer_task.cancel()
        self.pipe.finish()

    async def _read(self) -> None:
        while True:
            while self.queued > HELD_LIMIT:
                self.room.clear()
                await self.room.wait()
            chunk = await self.reader.read(CHUNK)
            if not chunk:
                self.eof = True
                self.ready.set()
                return
            faults = self.pipe.link.flow(*self.direction)
            if faults.reset and self.pipe.link.rng.random() < faults.reset:
                self.pipe.abort()
                return
            self.queue.append((self._due(faults, len(chunk)), chunk))
            self.queued += len(chunk)
            self.ready.set()

    def _due(self, faults: FlowFaults, size: int) -> float:
        """When this chunk may leave: delay, jitter and loss, in order, under the rate."""
        now = time.monotonic()
        rng = self.pipe.link.rng
        due = now + faults.delay
        if faults.jitter:
            due += rng.uniform(-faults.jitter, faults.jitter)
        if faults.loss and rng.random() < faults.loss:
            self.lost_in_row += 1
            due += RTO * 2 ** min(self.lost_in_row - 1, 6)
        else:
            self.lost_in_row = 0
        if faults.rate:
            self.rate_due = max(self.rate_due, now) + size / faults.rate
            due = max(due, self.rate_due)
        self.last_due = max(self.last_due, due)
        return self.last_due

    async def _deliver(self) -> None:
        link = self.pipe.link
        while True:
            while not self.queue:
                if self.eof:
                    with contextlib.suppress(OSError, RuntimeError):
                        self.writer.write_eof()
                    return
                self.ready.clear()
                await self.ready.wait()
            if link.flow(*self.direction).cut:
                await link.changed.wait()
                continue
            due, chunk = self.queue[0]
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue  # faults may have changed meanwhile (a cut)
            self.queue.popleft()
            self.queued -= len(chunk)
            self.room.set()
            link.bytes[self.direction] += len(chunk)
            self.writer.write(chunk)
            await self.writer.drain()


class Listener:
    """A loopback port that forwards what ``src`` sends to ``target`` through ``link``."""

    def __init__(
        self, link: Link, src: str, dst: str, target: Callable[[], tuple[str, int]]
    ) -> None:
        self.link, self.src, self.dst, self.target = link, src, dst, target
        self.server: asyncio.Server | None = None
        self.port = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.accepted = 0

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._accept, HOST, port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.accepted += 1
        try:
            await self._forward(reader, writer)
        except (OSError, ConnectionError):
            _rst(writer)
        except asyncio.CancelledError:  # the listener closes: end quietly, the socket too
            _rst(writer)
        finally:
            self.tasks.discard(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = self.link
        if link.cut and link.mode == "reset":
            _rst(writer)
            return
        if link.cut:  # a SYN into a partition: it goes nowhere until the heal resets it
            await link.until_open()
            _rst(writer)
            return
        host, port = self.target()
        try:
            server = await asyncio.wait_for(asyncio.open_connection(host, port), 5.0)
        except (OSError, TimeoutError):
            _rst(writer)  # like the real peer: connection refused
            return
        await Pipe(link, self.src, self.dst, (reader, writer), server).run()
