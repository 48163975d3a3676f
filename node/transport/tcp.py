"""TCP + mutual TLS transport: the P2P port of a ledgerlab node.

Theory of operation
-------------------
Every node listens on its P2P port and dials the configured peer addresses, retrying
with exponential back-off and jitter. A connection is admitted in three steps:

1. TLS 1.3, both sides presenting a certificate that chains to *this chain's* CA through
   an agency (see node/transport/pki.py); OpenSSL checks the chain.
2. The peer's node id is read from the certificate's binding extension (whose proof is
   checked), and must be in the allowed set (sealers + observers) and not blacklisted.
3. Both sides send a HELLO frame (node id, genesis hash, boot nonce); a node id that
   differs from the certificate's or a different genesis hash refuses the peer, with a
   CLOSE frame that tells the other side why.

Then DATA frames flow both ways. Wire format of every frame (docs/p2p.md)::

    u32 big-endian payload length | u8 frame type | payload

Only one connection per node pair survives: the one dialled by the lower node id, unless
the peer has restarted (new boot nonce), in which case the newest connection wins. Writes
are queued per connection and flushed by one writer task in a single ``write`` per
wake-up, so many small frames cost one syscall; the reader parses whole chunks. Frames
the node marks urgent (:meth:`Transport.deliver_first`: its consensus messages) skip
that queue: they are written to the socket inside :meth:`TcpTransport.send`, ahead of
queued gossip, because the writer task runs only when the event loop comes round to it,
and a leader that executes its own proposal right after broadcasting it would otherwise
hold the PrePrepare for the whole execution. A peer
that breaks the framing (garbage, oversized frame, unknown type) is disconnected and
counted; nothing it sends can raise out of its connection task.

Unauthenticated connections are bounded: at most ``max_pending_handshakes`` accepted
sockets may be waiting for or running their TLS handshake. When a new one arrives at the
limit, room is made by dropping the pending one that has made the least progress -- the
oldest that has not sent a byte, else the oldest one at least ``handshake_grace`` old
(the accept loop waits for one to be) -- never the newcomer: a member's mTLS handshake
completes in milliseconds on a LAN (one round trip after its ClientHello), so holding
sockets open cannot starve it, whereas refusing newcomers would let a few idle
connections lock every peer out. A socket must also send its first bytes (the
ClientHello) within ``client_hello_timeout``.
Failed inbound handshakes are logged as one summary line per ``failure_log_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import ssl
import struct
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from consensus.codec import DecodeError, expect_bytes, expect_int, expect_list, pack, unpack
from node.transport.base import Transport
from node.transport.pki import CertificateError, NodeIdentity, ca_subject, peer_node_id
from node.transport.settings import (
    FAILURE_LOG_INTERVAL,
    MIN_TCP_FRAME,
    TcpSettings,
    parse_hostport,
    with_overrides,
)

log = logging.getLogger("ledgerlab.transport.tcp")

PROTOCOL_VERSION = 1
FRAME_HELLO = 1
FRAME_DATA = 2
FRAME_CLOSE = 3
FRAME_PING = 4
_HEADER = struct.Struct(">IB")
HEADER_SIZE = _HEADER.size
_HELLO_MAX = MIN_TCP_FRAME  # a HELLO fits any allowed max_frame_size
_READ_CHUNK = 256 * 1024


def describe(exc: BaseException) -> str:
    """``Type: message``, or just ``Type`` when the message is empty (TimeoutError())."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ProtocolViolation(Exception):
    """A remote peer broke the framing rules; carries the counter reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class Refused(Exception):
    """Admission refused (certificate, membership, genesis); carries the counter reason."""

    def __init__(self, reason: str, detail: str, *, told: bool = False) -> None:
        super().__init__(detail)
        self.reason = reason
        self.told = told  # a CLOSE frame explaining the refusal was queued for the peer


class HandshakeFailed(Exception):
    """An accepted socket did not complete TLS; carries the counter reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class FailureLog:
    """Failed inbound handshakes, logged as at most one line per ``interval`` seconds.

    An isolated failure is logged at once with its address and reason; failures within
    ``interval`` of the last line are only counted, and one summary line (counts by
    reason, the last address and reason) follows when the interval ends. So a flood of
    connections writes a line every ``interval`` instead of one per connection.
    """

    def __init__(self, interval: float = FAILURE_LOG_INTERVAL) -> None:
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self._last: tuple[str, str, str] = ("", "", "")
        self._last_line = -float("inf")
        self._window_start = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, reason: str, where: str, detail: str) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self.counts:
            self._window_start = now
        self.counts[reason] += 1
        self._last = (where, reason, detail)
        if self._timer is not None:
            return
        wait = self._last_line + self.interval - now
        if wait <= 0:
            self.flush()
        else:
            self._timer = loop.call_later(wait, self.flush)

    def flush(self) -> None:
        self._timer = None
        if not self.counts:
            return
        where, reason, detail = self._last
        total = self.counts.total()
        if total == 1:
            log.info("inbound handshake from %s failed (%s): %s", where, reason, detail)
        else:
            level = logging.WARNING if self.counts["too_many_handshakes"] else logging.INFO
            log.log(
                level,
                "%d inbound handshakes failed in the last %.1f s (%s); last from %s (%s): %s",
                total,
                max(asyncio.get_running_loop().time() - self._window_start, 0.0),
                ", ".join(f"{r} {n}" for r, n in self.counts.most_common()),
                where,
                reason,
                detail,
            )
        self.counts.clear()
        with contextlib.suppress(RuntimeError):
            self._last_line = asyncio.get_running_loop().time()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.flush()


@dataclass(eq=False, slots=True)
class _Pending:
    """An accepted socket that has not completed its TLS handshake yet."""

    sock: socket.socket
    where: str
    accepted: float  # loop time
    task: asyncio.Task[None] | None = None
    running: bool = False  # its task has started (and cleans up after itself)
    progressed: bool = False  # its first bytes (the ClientHello) arrived
    evicted: bool = False


def _peek(sock: socket.socket) -> bool | None:
    """True when bytes wait on ``sock``, False at EOF, None when nothing arrived yet."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except (BlockingIOError, InterruptedError):
        return None


def _raise_if_cancelling(task: asyncio.Task[Any] | None) -> None:
    """Re-raise a cancellation that was swallowed: on Python 3.11 ``asyncio.wait_for``
    returns (or raises) the inner result when the cancel lands just as the inner call
    finishes, so a dial loop whose TLS handshake failed at the moment of ``close()`` went
    on dialling, and ``close()`` never returned."""
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def parse_address(address: str | tuple[str, int]) -> tuple[str, int]:
    """A peer address to dial: :func:`node.transport.settings.parse_hostport`, port 1..65535."""
    return parse_hostport(address, what="peer address")


def encode_frame(frame_type: int, payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), frame_type) + payload


@dataclass(eq=False, slots=True)
class _Conn:
    peer_id: str
    outbound: bool
    boot: bytes
    writer: asyncio.StreamWriter
    address: str
    out: list[bytes] = field(default_factory=list)
    out_bytes: int = 0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_reason: str | None = None
    heard: float = field(default_factory=time.monotonic)
    """Monotonic time the last bytes came in (the handshake, then any frame, PINGs too)."""

    def dialer(self, local_id: str) -> str:
        return local_id if self.outbound else self.peer_id

    def enqueue(self, frame_type: int, payload: bytes) -> None:
        self.out.append(_HEADER.pack(len(payload), frame_type))
        self.out.append(payload)
        self.out_bytes += HEADER_SIZE + len(payload)
        self.wake.set()

    def shut(self, reason: str) -> None:
        """Stop this connection now (idempotent); the tasks notice via ``closed``."""
        if self.close_reason is None:
            self.close_reason = reason
        self.closed.set()
        self.wake.set()
        self.writer.transport.abort()


class TcpTransport(Transport):
    """Mutual-TLS TCP transport; see the module docstring for the protocol.

    Args:
        identity: this node's certificate material (``node.transport.pki.load_node``).
        genesis_hash: hash of the genesis block; peers with another one are refused.
        settings: every tuning option (:class:`node.transport.settings.TcpSettings`:
            listen address, peers, timeouts, limits; each field documented there).
        allowed: node ids admitted (sealers + observers); ``None`` admits any node id
            certified by this chain (FISCO BCOS's behaviour without a whitelist).
        blacklist: node ids refused even when certified and allowed.
        **overrides: fields of ``settings`` to replace, by name (tests, scripts):
            ``TcpTransport(identity=..., genesis_hash=..., peers=["127.0.0.1:30301"])``.
    """

    def __init__(
        self,
        *,
        identity: NodeIdentity,
        genesis_hash: bytes,
        settings: TcpSettings | None = None,
        allowed: Iterable[str] | None = None,
        blacklist: Iterable[str] = (),
        **overrides: Any,
    ) -> None:
        s = with_overrides(settings or TcpSettings(), overrides, "TcpTransport")
        super().__init__(identity.node_id, inbox_capacity=s.inbox_capacity)
        self.settings = s
        self.identity = identity
        self.genesis_hash = bytes(genesis_hash)
        self.listen_host = s.listen_host
        self._listen_port = s.listen_port
        self.peer_addresses = s.addresses()
        self.allowed = frozenset(allowed) if allowed is not None else None
        self.blacklist = frozenset(blacklist)
        self.max_frame_size = s.max_frame_size
        self.backoff_initial = s.backoff_initial
        self.backoff_max = s.backoff_max
        self.handshake_timeout = s.handshake_timeout
        self.ping_interval = s.ping_interval
        self.idle_timeout = s.idle_timeout
        self.send_buffer_limit = s.send_buffer_limit
        self.max_pending_handshakes = s.max_pending_handshakes
        self.client_hello_timeout = min(s.client_hello_timeout, s.handshake_timeout)
        self.handshake_grace = s.handshake_grace
        self.boot = os.urandom(8)
        self._server_ctx = identity.server_context()
        self._client_ctx = identity.client_context()
        self._ca_subject = ca_subject(identity)
        self._conns: dict[str, _Conn] = {}
        self._addr_peer: dict[tuple[str, int], str] = {}
        self._pending: dict[_Pending, None] = {}  # oldest first
        self._failures = FailureLog(s.failure_log_interval)
        self._listener: socket.socket | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._main: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._rng = random.Random()

    # -- lifecycle ---------------------------------------------------------------

    @property
    def listen_port(self) -> int:
        return self._listen_port

    async def start(self) -> None:
        if self._main is not None:
            raise RuntimeError("transport already started")
        self._ready = asyncio.get_running_loop().create_future()
        self._main = asyncio.create_task(self._run(), name=f"tcp-{self.node_id[:8]}")
        await asyncio.wait({self._main, self._ready}, return_when=asyncio.FIRST_COMPLETED)
        if self._main.done():
            try:
                self._main.result()
            except BaseExceptionGroup as group:  # the TaskGroup wraps the listen failure
                raise group.exceptions[0] from None

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                family = socket.AF_INET6 if ":" in self.listen_host else socket.AF_INET
                self._listener = socket.create_server(
                    (self.listen_host, self._listen_port), family=family, backlog=128
                )
                self._listener.setblocking(False)
                self._listen_port = self._listener.getsockname()[1]
                tg.create_task(
                    self._accept_loop(self._listener), name=f"tcp-accept-{self.node_id[:8]}"
                )
                for addr in self.peer_addresses:
                    tg.create_task(self._dial_loop(addr), name=f"tcp-dial-{addr[0]}:{addr[1]}")
                log.info(
                    "%s listening on %s:%d", self.node_id[:8], self.listen_host, self.listen_port
                )
                assert self._ready is not None
                self._ready.set_result(None)
                await asyncio.Event().wait()  # until cancelled by close()
        finally:
            self._tg = None
            if self._listener is not None:
                self._listener.close()
            for entry in list(self._pending):  # tasks cancelled before they ever ran
                if not entry.running:
                    entry.sock.close()
            self._pending.clear()
            self._failures.close()
            for conn in list(self._conns.values()):
                conn.shut("shutdown")
            self._conns.clear()
            self._inbox.close()

    async def close(self) -> None:
        main = self._main
        if main is None or main.done():
            self._inbox.close()
            return
        for conn in list(self._conns.values()):
            conn.shut("shutdown")
        main.cancel()
        await asyncio.gather(main, return_exceptions=True)

    def add_peer(self, address: str | tuple[str, int]) -> None:
        """Dial one more peer address (now if running, else from :meth:`start`)."""
        addr = parse_address(address)
        if addr in self.peer_addresses:
            return
        self.peer_addresses.append(addr)
        if self._tg is not None:
            self._tg.create_task(self._dial_loop(addr), name=f"tcp-dial-{addr[0]}:{addr[1]}")

    # -- outbound API ------------------------------------------------------------

    def peers(self) -> frozenset[str]:
        return frozenset(self._conns)

    def heard_within(self, seconds: float) -> frozenset[str]:
        """Connected peers whose last bytes arrived within ``seconds``: a frozen peer's
        socket stays open (its kernel still acknowledges) until ``idle_timeout``."""
        cutoff = time.monotonic() - seconds
        return frozenset(p for p, c in self._conns.items() if c.heard >= cutoff)

    def set_members(self, allowed: Iterable[str] | None, blacklist: Iterable[str] = ()) -> None:
        self.allowed = frozenset(allowed) if allowed is not None else None
        self.blacklist = frozenset(blacklist)
        for peer_id, conn in list(self._conns.items()):
            if peer_id in self.blacklist:
                conn.shut("blacklisted")
            elif self.allowed is not None and peer_id not in self.allowed:
                conn.shut("not_member")

    def backlog(self) -> int:
        return sum(
            c.out_bytes + c.writer.transport.get_write_buffer_size() for c in self._conns.values()
        )

    def send(self, peer_id: str, data: bytes) -> bool:
        conn = self._conns.get(peer_id)
        stats = self.stats
        if conn is None:
            stats.dropped["not_connected"] += 1
            return False
        if len(data) > self.max_frame_size:
            stats.dropped["frame_too_large"] += 1
            return False
        # one limit per peer, on every byte not yet taken by the socket: the queue and
        # what the transport buffers (consensus frames are written past the queue)
        if conn.out_bytes + conn.writer.transport.get_write_buffer_size() > self.send_buffer_limit:
            stats.dropped["send_buffer_full"] += 1
            return False
        urgent = self._inbox.urgent_if
        if urgent is not None and urgent(data):
            if not self._write_now(conn, data):
                return False
        else:
            conn.enqueue(FRAME_DATA, data)
        stats.frames_out += 1
        stats.bytes_out += len(data)
        return True

    def broadcast(self, data: bytes) -> int:
        return sum(self.send(p, data) for p in list(self._conns))

    def _write_now(self, conn: _Conn, data: bytes) -> bool:
        """Write an urgent frame to ``conn``'s socket now. Frames are written whole, so it
        may overtake queued frames but never splits one."""
        stats = self.stats
        if conn.closed.is_set():
            stats.dropped["not_connected"] += 1
            return False
        try:
            conn.writer.write(_HEADER.pack(len(data), FRAME_DATA) + data)
        except (OSError, RuntimeError) as exc:  # the socket is going: as a failed write
            log.debug("peer %s write failed: %s", conn.peer_id[:8], exc)
            conn.shut(conn.close_reason or "write_error")
            stats.dropped["not_connected"] += 1
            return False
        return True

    # -- connection setup --------------------------------------------------------

    async def _accept_loop(self, listener: socket.socket) -> None:
        """Accept raw sockets; TLS wraps each one before a single byte is read from it."""
        loop = asyncio.get_running_loop()
        tg = self._tg
        assert tg is not None
        while True:
            try:
                conn, peer = await self._accept(listener)
            except OSError as exc:  # e.g. out of file descriptors: keep listening
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            try:
                await self._make_room()
            except BaseException:  # cancelled by close() while waiting
                conn.close()
                raise
            where = f"{peer[0]}:{peer[1]}"
            entry = _Pending(sock=conn, where=where, accepted=loop.time())
            self._pending[entry] = None
            entry.task = tg.create_task(self._inbound(entry), name=f"tcp-in-{where}")
            # accept does not yield while connections are queued: let the pending
            # handshakes (and their clients' ClientHellos) move between two accepts
            await asyncio.sleep(0)

    @staticmethod
    async def _accept(listener: socket.socket) -> tuple[socket.socket, tuple[str, int]]:
        """``loop.sock_accept``, except that a socket accepted as the loop is cancelled is
        not lost: nothing is awaited between the ``accept`` call and our return."""
        loop = asyncio.get_running_loop()
        fd = listener.fileno()
        while True:
            try:
                conn, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                readable = loop.create_future()
                loop.add_reader(fd, _set_done, readable)
                try:
                    await readable
                finally:
                    loop.remove_reader(fd)
                continue
            conn.setblocking(False)
            return conn, peer

    async def _make_room(self) -> None:
        """Drop pending handshakes until a new one fits (module docstring). One that has
        sent its ClientHello is only dropped once ``handshake_grace`` old: until then
        the accept loop waits and newcomers queue in the listen backlog, which bounds
        how fast a flood can churn the slots and guarantees every TLS handshake that
        much time."""
        loop = asyncio.get_running_loop()
        while len(self._pending) >= self.max_pending_handshakes:
            victim = self._least_advanced()
            wait = victim.accepted + self.handshake_grace - loop.time() if victim.progressed else 0
            if wait > 0:
                await asyncio.sleep(wait)
                continue  # a handshake may have completed meanwhile
            self._evict(victim, loop.time())

    def _least_advanced(self) -> _Pending:
        """The pending handshake to drop for a newcomer: the oldest without a byte yet,
        else the oldest. Sockets not yet marked are peeked at (nothing is consumed)."""
        for entry in self._pending:
            if entry.progressed:
                continue
            try:
                state = _peek(entry.sock)
            except OSError:
                return entry
            if state is None or state is False:
                return entry
            entry.progressed = True  # its task notices the bytes on its next wake-up
        return next(iter(self._pending))

    def _evict(self, entry: _Pending, now: float) -> None:
        del self._pending[entry]
        entry.evicted = True
        self.stats.disconnects["too_many_handshakes"] += 1
        self._failures.add(
            "too_many_handshakes",
            entry.where,
            f"dropped for a newer connection ({self.max_pending_handshakes} handshakes pending;"
            f" this one {now - entry.accepted:.3f} s old, "
            f"{'TLS under way' if entry.progressed else 'no ClientHello yet'})",
        )
        assert entry.task is not None
        entry.task.cancel()
        if not entry.running:  # a task cancelled before it starts runs none of its code
            entry.sock.close()

    async def _inbound(self, entry: _Pending) -> None:
        entry.running = True
        conn, where = entry.sock, entry.where
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_READ_CHUNK, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            await self._client_hello(entry)
            remaining = self.handshake_timeout - (loop.time() - entry.accepted)
            try:
                transport, _ = await loop.connect_accepted_socket(
                    lambda: protocol,
                    conn,
                    ssl=self._server_ctx,
                    ssl_handshake_timeout=max(remaining, 0.01),
                )
            except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as exc:
                raise HandshakeFailed("tls_handshake", describe(exc)) from None
        except HandshakeFailed as exc:
            self.stats.disconnects[exc.reason] += 1
            self._failures.add(exc.reason, where, exc.detail)
            conn.close()
            return
        except asyncio.CancelledError:
            conn.close()
            if not entry.evicted:  # the transport is closing
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            return  # counted and logged by _evict
        finally:
            self._pending.pop(entry, None)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        try:
            await self._serve(reader, writer, outbound=False, where=where)
        except Exception:  # our bug: lose the connection, never the node
            self.stats.disconnects["internal_error"] += 1
            log.exception("connection %s failed", where)
            writer.transport.abort()

    async def _client_hello(self, entry: _Pending) -> None:
        """Wait until the first bytes arrive on the raw socket, without reading them
        (uvloop would lose them for TLS), or raise ``HandshakeFailed``."""
        loop = asyncio.get_running_loop()
        sock = entry.sock
        deadline = entry.accepted + self.client_hello_timeout
        while True:
            try:
                state = _peek(sock)
            except OSError as exc:
                raise HandshakeFailed("no_client_hello", describe(exc)) from None
            if state is False:
                raise HandshakeFailed("no_client_hello", "closed before sending a ClientHello")
            if state:
                entry.progressed = True
                return
            readable = loop.create_future()
            fd = sock.fileno()
            loop.add_reader(fd, _set_done, readable)
            try:
                async with asyncio.timeout_at(deadline):
                    await readable
            except TimeoutError:
                raise HandshakeFailed(
                    "no_client_hello",
                    f"no ClientHello within {self.client_hello_timeout:g} s",
                ) from None
            finally:
                loop.remove_reader(fd)

    async def _dial_loop(self, addr: tuple[str, int]) -> None:
        where = f"{addr[0]}:{addr[1]}"
        delay = self.backoff_initial
        task = asyncio.current_task()
        while True:
            _raise_if_cancelling(task)
            known = self._addr_peer.get(addr)
            conn = self._conns.get(known) if known else None
            if conn is not None:
                await conn.closed.wait()
                delay = self.backoff_initial
                await asyncio.sleep(self._rng.uniform(0, self.backoff_initial))
                continue
            established = False
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(
                        addr[0],
                        addr[1],
                        ssl=self._client_ctx,
                        ssl_handshake_timeout=self.handshake_timeout,
                    ),
                    self.handshake_timeout * 2,
                )
            except (OSError, TimeoutError, ssl.SSLError, ConnectionError) as exc:
                log.debug("dial %s failed: %s", where, describe(exc))
            else:
                try:
                    established = await self._serve(
                        reader, writer, outbound=True, where=where, addr=addr
                    )
                except Exception:  # our bug: lose the connection, never the node
                    self.stats.disconnects["internal_error"] += 1
                    log.exception("connection %s failed", where)
                    writer.transport.abort()
            if established:
                delay = self.backoff_initial
            _raise_if_cancelling(task)
            await asyncio.sleep(delay * self._rng.uniform(0.5, 1.5))
            delay = min(delay * 2, self.backoff_max)

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        outbound: bool,
        where: str,
        addr: tuple[str, int] | None = None,
    ) -> bool:
        """Admit and run one connection; True if it got past the handshake."""
        buf = bytearray()
        try:
            peer_id, boot = await asyncio.wait_for(
                self._handshake(reader, writer, buf, where), self.handshake_timeout
            )
        except Refused as exc:
            self.stats.disconnects[exc.reason] += 1
            if exc.told:  # let the CLOSE frame (and TLS close_notify) leave first
                writer.close()
                with contextlib.suppress(OSError, TimeoutError, ssl.SSLError, ConnectionError):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)
            writer.transport.abort()
            return False
        except ProtocolViolation as exc:
            self.stats.disconnects[exc.reason] += 1
            log.warning("dropping connection %s during handshake: %s", where, exc)
            writer.transport.abort()
            return False
        except (
            OSError,
            TimeoutError,
            ssl.SSLError,
            ConnectionError,
            asyncio.IncompleteReadError,
        ) as exc:
            self.stats.disconnects["handshake_failed"] += 1
            log.info("handshake with %s failed: %s", where, exc or type(exc).__name__)
            writer.transport.abort()
            return False
        if addr is not None:
            self._addr_peer[addr] = peer_id
        conn = _Conn(peer_id=peer_id, outbound=outbound, boot=boot, writer=writer, address=where)
        if not self._register(conn):
            self.stats.disconnects["duplicate"] += 1
            writer.transport.abort()
            return True
        try:
            await self._run_conn(conn, reader, buf)
        finally:
            conn.shut(conn.close_reason or "closed")
            if self._conns.get(peer_id) is conn:
                del self._conns[peer_id]
                self._notify_peers_changed()
                log.info("peer %s (%s) disconnected: %s", peer_id[:8], where, conn.close_reason)
            self.stats.disconnects[conn.close_reason or "closed"] += 1
        return True

    async def _handshake(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        buf: bytearray,
        where: str,
    ) -> tuple[str, bytes]:
        ssl_obj = writer.get_extra_info("ssl_object")
        der = ssl_obj.getpeercert(binary_form=True) if ssl_obj is not None else None
        try:
            peer_id = peer_node_id(der, self._ca_subject)
        except CertificateError as exc:
            log.warning("refusing %s: %s", where, exc)
            raise Refused("bad_certificate", str(exc)) from None
        if peer_id == self.node_id:
            raise Refused("self_connection", "connected to ourselves")
        if peer_id in self.blacklist:
            log.warning("refusing %s: node %s is blacklisted", where, peer_id[:16])
            self._refuse_frame(writer, "you are blacklisted")
            raise Refused("blacklisted", peer_id, told=True)
        if self.allowed is not None and peer_id not in self.allowed:
            log.warning("refusing %s: node %s is not a member of this group", where, peer_id[:16])
            self._refuse_frame(writer, "not a member of this group")
            raise Refused("not_member", peer_id, told=True)
        hello = pack([PROTOCOL_VERSION, bytes.fromhex(self.node_id), self.genesis_hash, self.boot])
        writer.write(encode_frame(FRAME_HELLO, hello))
        frame_type, payload = await self._read_one(reader, buf, _HELLO_MAX)
        if frame_type == FRAME_CLOSE:
            reason = payload.decode("utf-8", "replace")[:200]
            log.warning("peer %s (%s) refused us: %s", peer_id[:16], where, reason)
            raise Refused("refused_by_peer", reason)
        if frame_type != FRAME_HELLO:
            raise ProtocolViolation("protocol", f"expected HELLO, got frame type {frame_type}")
        try:
            fields = expect_list(unpack(payload, max_size=_HELLO_MAX), 4, "hello")
            expect_int(fields[0], "hello.version")
            claimed = expect_bytes(fields[1], "hello.node_id", size=64).hex()
            genesis = expect_bytes(fields[2], "hello.genesis", max_len=64)
            boot = expect_bytes(fields[3], "hello.boot", size=8)
        except DecodeError as exc:
            raise ProtocolViolation("bad_hello", str(exc)) from None
        if fields[0] != PROTOCOL_VERSION:
            self._refuse_frame(writer, f"protocol version {fields[0]} unsupported")
            raise Refused("version_mismatch", f"version {fields[0]}", told=True)
        if claimed != peer_id:
            self._refuse_frame(writer, "HELLO node id differs from certificate")
            raise Refused("hello_mismatch", "HELLO node id differs from certificate", told=True)
        if genesis != self.genesis_hash:
            log.error(
                "refusing peer %s (%s): genesis mismatch: ours %s, theirs %s",
                peer_id[:16],
                where,
                self.genesis_hash.hex(),
                genesis.hex(),
            )
            self._refuse_frame(
                writer,
                f"genesis mismatch: yours {genesis.hex()}, ours {self.genesis_hash.hex()}",
            )
            raise Refused("genesis_mismatch", genesis.hex(), told=True)
        return peer_id, boot

    @staticmethod
    def _refuse_frame(writer: asyncio.StreamWriter, reason: str) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            writer.write(encode_frame(FRAME_CLOSE, reason.encode()[:200]))

    async def _read_one(
        self, reader: asyncio.StreamReader, buf: bytearray, limit: int
    ) -> tuple[int, bytes]:
        while True:
            if len(buf) >= HEADER_SIZE:
                length, frame_type = _HEADER.unpack_from(buf, 0)
                if length > limit:
                    raise ProtocolViolation("frame_too_large", f"{length} > {limit}")
                if len(buf) >= HEADER_SIZE + length:
                    payload = bytes(buf[HEADER_SIZE : HEADER_SIZE + length])
                    del buf[: HEADER_SIZE + length]
                    return frame_type, payload
            chunk = await reader.read(_READ_CHUNK)
            if not chunk:
                raise ConnectionError("connection closed during handshake")
            buf += chunk

    def _register(self, conn: _Conn) -> bool:
        """Make ``conn`` the peer's connection, or refuse it as a duplicate."""
        existing = self._conns.get(conn.peer_id)
        if existing is not None:
            if existing.boot == conn.boot:
                preferred = min(self.node_id, conn.peer_id)
                if (
                    conn.dialer(self.node_id) != preferred
                    or existing.dialer(self.node_id) == preferred
                ):
                    return False
            existing.shut("replaced")
        self._conns[conn.peer_id] = conn
        self.stats.connects += 1
        self._notify_peers_changed()
        log.info(
            "peer %s connected (%s, %s)",
            conn.peer_id[:8],
            conn.address,
            "outbound" if conn.outbound else "inbound",
        )
        return True

    # -- connection loops --------------------------------------------------------

    async def _run_conn(self, conn: _Conn, reader: asyncio.StreamReader, buf: bytearray) -> None:
        tg = self._tg
        assert tg is not None
        write_loop = self._write_loop(conn)
        try:
            writer_task = tg.create_task(write_loop, name=f"tcp-w-{conn.peer_id[:8]}")
        except RuntimeError:  # the transport is closing: its TaskGroup takes no new tasks
            write_loop.close()
            conn.shut("shutdown")
            return
        try:
            if buf:
                self._parse(conn, buf)
            await self._read_loop(conn, reader, buf)
        except ProtocolViolation as exc:
            conn.close_reason = exc.reason
            log.warning("disconnecting peer %s (%s): %s", conn.peer_id[:8], conn.address, exc)
        except asyncio.IncompleteReadError:
            conn.close_reason = conn.close_reason or "eof"
        except TimeoutError:
            conn.close_reason = conn.close_reason or "idle_timeout"
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            conn.close_reason = conn.close_reason or "connection_error"
            log.debug("peer %s connection error: %s", conn.peer_id[:8], exc)
        finally:
            conn.shut(conn.close_reason or "eof")
            writer_task.cancel()

    async def _read_loop(self, conn: _Conn, reader: asyncio.StreamReader, buf: bytearray) -> None:
        inbox = self._inbox
        while not conn.closed.is_set():
            async with asyncio.timeout(self.idle_timeout):
                chunk = await reader.read(_READ_CHUNK)
            if not chunk:
                conn.close_reason = conn.close_reason or "eof"
                return
            conn.heard = time.monotonic()
            buf += chunk
            self._parse(conn, buf)
            if inbox.over_capacity():
                await inbox.wait_for_space()

    def _parse(self, conn: _Conn, buf: bytearray) -> None:
        """Deliver every complete frame in ``buf`` and drop them from it."""
        pos = 0
        end = len(buf)
        limit = self.max_frame_size
        unpack_header = _HEADER.unpack_from
        put = self._inbox.put
        peer = conn.peer_id
        frames = 0
        nbytes = 0
        try:
            while end - pos >= HEADER_SIZE:
                length, frame_type = unpack_header(buf, pos)
                if length > limit:
                    raise ProtocolViolation("frame_too_large", f"{length} bytes > {limit}")
                if frame_type > FRAME_PING or frame_type == 0:
                    raise ProtocolViolation("unknown_frame_type", f"type {frame_type}")
                stop = pos + HEADER_SIZE + length
                if stop > end:
                    break
                if frame_type == FRAME_DATA:
                    put(peer, bytes(buf[pos + HEADER_SIZE : stop]))
                    frames += 1
                    nbytes += length
                elif frame_type == FRAME_CLOSE:
                    reason = bytes(buf[pos + HEADER_SIZE : stop]).decode("utf-8", "replace")
                    log.warning("peer %s closed the connection: %s", peer[:8], reason[:200])
                    conn.close_reason = "closed_by_peer"
                    conn.closed.set()
                    pos = stop
                    break
                elif frame_type == FRAME_HELLO:
                    raise ProtocolViolation("protocol", "HELLO after handshake")
                pos = stop
        finally:
            del buf[:pos]
            self.stats.frames_in += frames
            self.stats.bytes_in += nbytes

    async def _write_loop(self, conn: _Conn) -> None:
        writer = conn.writer
        try:
            while not conn.closed.is_set():
                if not conn.out:
                    conn.wake.clear()
                    try:
                        async with asyncio.timeout(self.ping_interval):
                            await conn.wake.wait()
                    except TimeoutError:
                        conn.enqueue(FRAME_PING, b"")
                    if conn.closed.is_set():
                        return
                data = b"".join(conn.out)
                conn.out.clear()
                conn.out_bytes = 0
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError, ConnectionError, RuntimeError) as exc:
            log.debug("peer %s write failed: %s", conn.peer_id[:8], exc)
            conn.shut(conn.close_reason or "write_error")
        except Exception:  # our bug: lose the connection, never the node
            log.exception("peer %s writer failed", conn.peer_id[:8])
            conn.shut("internal_error")
