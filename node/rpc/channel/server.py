"""The channel server: FISCO BCOS 2.x's SDK port (TLS 1.2, framed JSON; docs/channel.md).

Theory of operation. Each connection is one reader task that takes a frame at a time: it
waits up to ``idle_timeout`` for the first byte of a header, then the rest of the header
and the body must arrive within ``read_timeout`` (a slowloris is cut off). A length below
the header or above ``max_frame`` gets an error frame and a close (the stream can no
longer be framed); every other bad frame (seq, body, type) gets an error frame and the
connection goes on. An RPC frame is answered through the node's JSON-RPC dispatcher, on
the request's seq, before the next frame is read, so a client that pipelines is answered
in order and one that sends faster than the node serves is slowed by TCP.

A ``sendRawTransaction`` the node accepted is watched: when a block holding it commits,
the runtime calls :meth:`ChannelServer.on_commit` and the pusher task sends the receipt
(type 0x1000) on the request's seq; when the pool drops it instead (another tx took
its nonce, its block limit passed) a failed receipt (status 0xf, 0x10). A tx answered
``10004 AlreadyKnown`` is watched too (the node had it by gossip). The pusher also
sends a block-number notify (0x1001) to the connections that asked for it. Pushes never
wait for a client: a connection whose unsent output passes ``max_write_buffer`` bytes is
aborted.

Admission. At most ``max_connections`` connections are served, counted from the TCP
accept (TLS handshakes included), and at most ``max_handshakes`` of them may still be in
the TLS handshake. A socket that has not authenticated (no client certificate yet) is
cheap to open and costs the node a slot, so it is the first to go: when either cap is
full the oldest such socket is closed to make room (one that has sent nothing yet before
one that has: an SDK sends its ClientHello at once), so pre-TLS sockets churn among
themselves and an SDK whose handshake is quick always gets in. Only when every slot is
authenticated is the one idle longest (if idle longer than ``read_timeout``) closed, else
the newcomer is closed before its TLS handshake.
No input can raise out of a connection task.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
import ssl
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from node.ledger.tx import tx_hash as raw_tx_hash
from node.ledger.tx import utf8_fits
from node.rpc import metrics as prom
from node.rpc.channel.frames import (
    CLOSES,
    DEFAULT_MAX_FRAME,
    HEADER_SIZE,
    ChannelCode,
    FrameError,
    FrameType,
    check_seq,
    encode_frame,
    parse_header,
)
from node.rpc.errors import ErrorCode
from node.rpc.fisco import FISCO_VERSION
from node.rpc.jsonrpc import Dispatcher, decode_body, dumps
from node.rpc.methods import METHODS

log = logging.getLogger("ledgerlab.rpc.channel")

PROTOCOL_MIN = 1
PROTOCOL_MAX = 3
MAX_TOPICS = 64
MAX_TOPIC_BYTES = 256
MAX_CLIENT_TYPE_BYTES = 256  # a handshake's clientType (the node only checks it)
PENDING_TTL = 900.0  # s: a watched tx not committed by then stops being watched
ZERO_SEQ = b"0" * 32  # the seq of block-number notifies
LINGER_SECONDS = 1.0  # after a closing error frame: how long to drain the client's input
LINGER_BYTES = 1 << 20


class _Conn:
    """One client connection: its writer, the receipts it waits for, what it asked for."""

    __slots__ = (
        "closed", "notify", "pending", "protocol", "since", "sock", "spoke", "task", "writer",
    )  # fmt: skip

    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock  # the accepted socket; the loop's TLS transport owns it once up
        self.writer: asyncio.StreamWriter | None = None  # once TLS is up
        self.task: asyncio.Task[Any] | None = None
        self.pending: dict[bytes, bytes] = {}  # seq -> tx hash waiting for its receipt
        self.notify = False  # wants block-number notifies
        self.protocol = 1  # channel protocol version: 1 until a handshake agrees on another
        self.since = now  # last frame received (or connect)
        self.spoke = False  # sent its first bytes (a TLS ClientHello, if a client)
        self.closed = False


class ChannelServer:
    """The channel listener of one node group; ``async with ChannelServer(...) as s:``."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        group: str,
        ssl_context: ssl.SSLContext,
        host: str = "127.0.0.1",
        port: int = 20800,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_connections: int = 256,
        max_handshakes: int = 64,
        max_pending: int = 20_000,
        max_write_buffer: int = 16 * 1024 * 1024,
        idle_timeout: float = 600.0,
        read_timeout: float = 30.0,
        write_timeout: float = 30.0,
        handshake_timeout: float = 5.0,
    ) -> None:
        """``port=0`` picks a free port (read it back from :attr:`port`)."""
        self.dispatcher = dispatcher
        self.group = group
        self.ssl_context = ssl_context
        self.host = host
        self._port = port
        self.max_frame = max_frame
        self.max_connections = max_connections
        self.max_handshakes = min(max_handshakes, max_connections)
        self.max_pending = max_pending
        self.max_write_buffer = max_write_buffer
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.handshake_timeout = handshake_timeout
        self._listener: socket.socket | None = None
        self._accepter: asyncio.Task[None] | None = None
        self._conns: dict[asyncio.Task[Any], _Conn] = {}
        self._handshaking: dict[asyncio.Task[Any], _Conn] = {}  # oldest first, pre-TLS
        # tx hash -> who waits (connection, seq, since); two clients may send one tx
        self._watch: dict[bytes, list[tuple[_Conn, bytes, float]]] = {}
        self._commits: deque[tuple[int, Sequence[bytes], Sequence[tuple[bytes, str]]]] = deque()
        self._wake = asyncio.Event()
        self._pusher: asyncio.Task[None] | None = None
        self._last_sweep = time.monotonic()
        self.stats: Counter[str] = Counter()
        """frames_in, frames_out, connections, receipts_pushed, notifies, and each error
        code's name (``frame_too_large``...), ``evicted``, ``handshake_evicted``,
        ``refused``, ``tls_failed``, ``accept_failed``, ``slow_reader``, ``timeout``,
        ``write_timeout``; ``receipts_failed`` (a watched tx dropped)."""

    @property
    def port(self) -> int:
        if self._listener is None:
            return self._port
        return int(self._listener.getsockname()[1])

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    async def __aenter__(self) -> ChannelServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._listener is not None:
            raise RuntimeError("channel server already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.create_server((self.host, self._port), family=family, backlog=128)
        listener.setblocking(False)
        self._listener = listener
        self._accepter = asyncio.create_task(self._accept_loop(), name="channel-accept")
        self._pusher = asyncio.create_task(self._push_loop(), name="channel-pusher")

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        tasks = [t for t in (self._accepter, self._pusher) if t is not None]
        self._accepter = self._pusher = None
        tasks += list(self._conns)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if listener is not None:
            listener.close()

    def metrics(self) -> list[prom.Metric]:
        """The channel's families for the node's ``/metrics`` (docs/node.md, Metrics)."""
        st = self.stats
        errors = {c.name.lower(): st[c.name.lower()] for c in ChannelCode if c}
        errors.update(
            {
                k: st[k]
                for k in (
                    "timeout",
                    "write_timeout",
                    "evicted",
                    "handshake_evicted",
                    "refused",
                    "tls_failed",
                    "accept_failed",
                    "slow_reader",
                )
            }
        )
        return [
            prom.gauge(
                "ledgerlab_channel_connections_open", "Open channel connections.", len(self._conns)
            ),
            prom.counter(
                "ledgerlab_channel_connections_total",
                "Channel connections accepted (after TLS).",
                st["connections"],
            ),
            prom.labelled(
                "ledgerlab_channel_frames_total",
                "counter",
                "Channel frames, by direction.",
                "direction",
                {"in": st["frames_in"], "out": st["frames_out"]},
            ),
            prom.counter(
                "ledgerlab_channel_receipts_pushed_total",
                "Receipts pushed (type 0x1000) at commit.",
                st["receipts_pushed"],
            ),
            prom.counter(
                "ledgerlab_channel_receipts_failed_total",
                "Failed receipts pushed (status 0xf, 0x10): a watched tx the pool dropped.",
                st["receipts_failed"],
            ),
            prom.gauge(
                "ledgerlab_channel_receipts_waiting",
                "Accepted channel transactions whose receipt is still to be pushed.",
                len(self._watch),
            ),
            prom.labelled(
                "ledgerlab_channel_errors_total",
                "counter",
                "Channel error frames by code name, and connections cut off (timeout, "
                "evicted, slow_reader).",
                "reason",
                errors,
            ),
        ]

    # -- the runtime's side ------------------------------------------------------------

    def on_commit(
        self,
        number: int,
        tx_hashes: Sequence[bytes],
        dropped: Sequence[tuple[bytes, str]] = (),
    ) -> None:
        """A block committed (called by the runtime; cheap, never raises, never waits).

        ``dropped``: the transactions the node's pool dropped at this commit without
        committing them, each with the FISCO txpool name of why (``NonceCheckFail``,
        ``BlockLimitCheckFail``): their watchers get a failed receipt push."""
        self._commits.append((number, tx_hashes, dropped))
        self._wake.set()

    # -- connections -------------------------------------------------------------------

    async def _accept_loop(self) -> None:
        """Accept TCP connections and count them before any TLS work (the module's
        Admission): no number of sockets costs more than ``max_connections`` connections
        and ``max_handshakes`` handshakes."""
        loop = asyncio.get_running_loop()
        assert self._listener is not None
        while True:
            try:
                sock, _ = await loop.sock_accept(self._listener)
            except OSError:  # out of file descriptors, say: count, wait, go on
                self.stats["accept_failed"] += 1
                await asyncio.sleep(0.1)
                continue
            if len(self._handshaking) >= self.max_handshakes:
                self._evict_handshake()
            elif len(self._conns) >= self.max_connections and not (
                self._evict_handshake() or self._evict()
            ):
                self.stats["refused"] += 1
                sock.close()
                continue
            conn = _Conn(sock, time.monotonic())
            conn.task = loop.create_task(self._serve(conn))
            conn.task.add_done_callback(functools.partial(_close_unserved, conn))
            self._conns[conn.task] = conn
            self._handshaking[conn.task] = conn

    async def _serve(self, conn: _Conn) -> None:
        task = conn.task
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            try:
                async with asyncio.timeout(self.handshake_timeout + 1):
                    async with asyncio.timeout(self.handshake_timeout):
                        await _readable(conn.sock)
                    conn.spoke = True
                    tls, _ = await loop.connect_accepted_socket(
                        lambda: protocol,
                        conn.sock,
                        ssl=self.ssl_context,
                        ssl_handshake_timeout=self.handshake_timeout,
                    )
            except (OSError, TimeoutError, EOFError):  # ssl.SSLError is an OSError
                self.stats["tls_failed"] += 1
                return
            if task is not None:
                self._handshaking.pop(task, None)
            conn.writer = asyncio.StreamWriter(tls, protocol, reader, loop)
            self.stats["connections"] += 1
            while await self._one_frame(reader, conn):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except TimeoutError:
            self.stats["timeout"] += 1
        except asyncio.CancelledError:
            pass  # close() or an eviction
        except Exception as exc:  # a bug of ours: count it, drop this connection only
            self.dispatcher.internal_error(exc)
        finally:
            self._drop(conn)
            if task is not None:
                self._conns.pop(task, None)
                self._handshaking.pop(task, None)
            with contextlib.suppress(Exception):
                if conn.writer is None:  # no TLS transport took the socket over
                    if conn.sock.fileno() != -1:
                        conn.sock.close()
                elif conn.closed:
                    conn.writer.transport.abort()
                else:
                    conn.writer.close()

    def _evict_handshake(self) -> bool:
        """Close the oldest socket still in its TLS handshake that has sent nothing yet,
        else the oldest in its handshake, if any (an SDK sends its ClientHello at once)."""
        silent = (t for t, c in self._handshaking.items() if not c.spoke)
        task = next(silent, None) or next(iter(self._handshaking), None)
        if task is None:
            return False
        del self._handshaking[task]
        self._conns.pop(task, None)
        task.cancel()
        self.stats["handshake_evicted"] += 1
        return True

    def _evict(self) -> bool:
        """Close the connection idle longest, if idle longer than ``read_timeout``."""
        now = time.monotonic()
        victim = min(self._conns.values(), key=lambda c: c.since, default=None)
        if victim is None or now - victim.since < self.read_timeout or victim.task is None:
            return False
        self.stats["evicted"] += 1
        self._conns.pop(victim.task, None)
        victim.task.cancel()
        return True

    def _drop(self, conn: _Conn) -> None:
        for seq, tx_hash in conn.pending.items():
            watchers = self._watch.get(tx_hash)
            if watchers is not None:
                watchers[:] = [w for w in watchers if w[0] is not conn or w[1] != seq]
                if not watchers:
                    del self._watch[tx_hash]
        conn.pending.clear()

    def _unwatch(self, tx_hash: bytes) -> list[tuple[_Conn, bytes, float]]:
        """End every watch of ``tx_hash``; the watchers still connected."""
        watchers = self._watch.pop(tx_hash, [])
        for conn, seq, _ in watchers:
            conn.pending.pop(seq, None)
        return [w for w in watchers if not w[0].closed]

    async def _one_frame(self, reader: asyncio.StreamReader, conn: _Conn) -> bool:
        """Read and answer one frame; False when the connection should close."""
        async with asyncio.timeout(self.idle_timeout):
            first = await reader.readexactly(1)
        async with asyncio.timeout(self.read_timeout):
            head = first + await reader.readexactly(HEADER_SIZE - 1)
            try:
                header = parse_header(head, max_frame=self.max_frame)
            except FrameError as exc:
                kind, seq = int.from_bytes(head[4:6], "big"), head[6:38]
                self._error(conn, kind, seq, exc.code, exc.message)
                await self._drain(conn)
                await _linger(reader)
                return False
            body = await reader.readexactly(header.body_size)
        conn.since = time.monotonic()
        self.stats["frames_in"] += 1
        try:
            check_seq(header.seq)
            await self._handle(conn, header.type, header.seq, body)
        except FrameError as exc:
            self._error(conn, header.type, header.seq, exc.code, exc.message)
            if exc.code in CLOSES:
                await self._drain(conn)
                return False
        await self._drain(conn)
        return not conn.closed

    async def _handle(self, conn: _Conn, kind: int, seq: bytes, body: bytes) -> None:
        if kind == FrameType.RPC:
            await self._rpc(conn, seq, body)
        elif kind == FrameType.HEARTBEAT:
            value = _json(body) if body.strip() else {}  # empty: python-sdk's heartbeat
            reply: Any
            if type(value) is dict:
                reply = {"heartBeat": "1"}
            elif (type(value) is int and value == 0) or value == "0":
                reply = 1
            else:
                raise FrameError(
                    ChannelCode.BAD_BODY,
                    'a heartbeat body is empty, a JSON object ({"heartBeat": "0"}), 0 or "0"',
                )
            self._send(conn, kind, seq, dumps(reply).encode("ascii"))
        elif kind == FrameType.HANDSHAKE:
            agreed = self._handshake(_json(body))
            self._send(conn, kind, seq, dumps(agreed).encode("ascii"))
            conn.protocol = agreed["protocol"]
            conn.notify = True
        elif kind == FrameType.TOPIC_REPORT:
            topics = _json(body)
            if (
                type(topics) is not list
                or len(topics) > MAX_TOPICS
                or not all(type(t) is str and utf8_fits(t, MAX_TOPIC_BYTES) for t in topics)
            ):
                raise FrameError(
                    ChannelCode.BAD_BODY,
                    f"a topic report is a JSON array of at most {MAX_TOPICS} strings",
                )
            conn.notify = f"_block_notify_{self.group}" in topics
        else:
            raise FrameError(ChannelCode.UNKNOWN_TYPE, f"frame type 0x{kind:x} is not served")

    def _handshake(self, hello: Any) -> dict[str, Any]:
        if type(hello) is not dict:
            raise FrameError(ChannelCode.BAD_BODY, "a handshake is a JSON object")
        client_type = hello.get("clientType", "")
        if type(client_type) is not str or not utf8_fits(client_type, MAX_CLIENT_TYPE_BYTES):
            raise FrameError(
                ChannelCode.BAD_BODY,
                "clientType, when given, is a string of at most "
                f"{MAX_CLIENT_TYPE_BYTES} UTF-8 bytes",
            )
        low, high = hello.get("minimumSupport"), hello.get("maximumSupport")
        if type(low) is not int or type(high) is not int or low > high:
            raise FrameError(
                ChannelCode.BAD_BODY,
                "minimumSupport and maximumSupport must be integers, min <= max",
            )
        if high < PROTOCOL_MIN or low > PROTOCOL_MAX:
            raise FrameError(
                ChannelCode.BAD_BODY,
                f"no common protocol version: the node speaks {PROTOCOL_MIN}..{PROTOCOL_MAX}",
            )
        return {"protocol": min(high, PROTOCOL_MAX), "nodeVersion": FISCO_VERSION}

    async def _rpc(self, conn: _Conn, seq: bytes, body: bytes) -> None:
        message = _json(body)
        watch = type(message) is dict and message.get("method") == "sendRawTransaction"
        if watch and "id" in message:
            if seq in conn.pending:
                raise FrameError(ChannelCode.BAD_SEQ, "this seq already waits for a receipt")
            if len(conn.pending) >= self.max_pending:
                raise FrameError(
                    ChannelCode.TOO_MANY_PENDING,
                    f"this connection already waits for {self.max_pending} receipts",
                )
        out = await self.dispatcher.respond(message)
        if out is None:  # notifications only: JSON-RPC answers nothing
            return
        self._send(conn, FrameType.RPC, seq, out)
        if watch and "id" in message:
            tx_hash = _watched_hash(message, out)
            if tx_hash is not None:
                self._register(conn, seq, tx_hash)

    def _register(self, conn: _Conn, seq: bytes, tx_hash: bytes) -> None:
        conn.pending[seq] = tx_hash
        self._watch.setdefault(tx_hash, []).append((conn, seq, time.monotonic()))
        receipt = self._receipt(tx_hash)
        if receipt is not None:  # committed already (a fast chain): push it now
            for watcher, wseq, _ in self._unwatch(tx_hash):
                self._push_receipt(watcher, wseq, receipt)

    # -- pushes ------------------------------------------------------------------------

    async def _push_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._commits:
                number, hashes, dropped = self._commits.popleft()
                try:
                    self._pushes(number, hashes, dropped)
                except Exception as exc:  # a bug of ours: counted, the loop goes on
                    self.dispatcher.internal_error(exc)
                await asyncio.sleep(0)

    def _pushes(
        self, number: int, hashes: Sequence[bytes], dropped: Sequence[tuple[bytes, str]]
    ) -> None:
        if self._watch:
            for tx_hash in hashes:
                if tx_hash not in self._watch:
                    continue
                receipt = self._receipt(tx_hash)
                for conn, seq, _ in self._unwatch(tx_hash):
                    if receipt is not None:
                        self._push_receipt(conn, seq, receipt)
            for tx_hash, why in dropped:
                if tx_hash in self._watch:
                    failed = _failed_receipt(tx_hash, why, number)
                    for conn, seq, _ in self._unwatch(tx_hash):
                        self._send(conn, FrameType.TX_RECEIPT, seq, failed)
                        self.stats["receipts_failed"] += 1
        # Protocol 1 (no handshake: python-sdk) takes "group,number", later ones JSON;
        # SDKs listen for it on the seq of 32 ASCII zeros.
        group: Any = int(self.group) if self.group.isdigit() else self.group
        v1 = f"{self.group},{number}".encode()
        json_note = dumps({"groupID": group, "blockNumber": number}).encode("ascii")
        for conn in list(self._conns.values()):
            if conn.notify:
                note = v1 if conn.protocol == 1 else json_note
                self._send(conn, FrameType.BLOCK_NOTIFY, ZERO_SEQ, note)
                self.stats["notifies"] += 1
        now = time.monotonic()
        if now - self._last_sweep > 60.0:
            self._last_sweep = now
            for tx_hash, watchers in list(self._watch.items()):
                if now - watchers[0][2] > PENDING_TTL:
                    self._unwatch(tx_hash)

    def _receipt(self, tx_hash: bytes) -> bytes | None:
        """The receipt as getTransactionReceipt renders it (JSON), None if not committed."""
        handler = METHODS["getTransactionReceipt"].handler
        assert handler is not None
        value = handler(self.dispatcher.default_backend, ["0x" + tx_hash.hex()])
        return None if value is None else dumps(value).encode("ascii")

    def _push_receipt(self, conn: _Conn, seq: bytes, receipt: bytes) -> None:
        self._send(conn, FrameType.TX_RECEIPT, seq, receipt)
        self.stats["receipts_pushed"] += 1

    # -- output ------------------------------------------------------------------------

    def _send(self, conn: _Conn, kind: int, seq: bytes, body: bytes, result: int = 0) -> None:
        """Queue one frame (one write: SDKs expect a frame to start a TLS record)."""
        if conn.closed or conn.writer is None:
            return
        transport = conn.writer.transport
        if transport.is_closing():
            conn.closed = True
            return
        conn.writer.write(encode_frame(kind, seq, body, result))
        self.stats["frames_out"] += 1
        if transport.get_write_buffer_size() > self.max_write_buffer:
            self.stats["slow_reader"] += 1
            conn.closed = True
            transport.abort()
            if conn.task is not None:
                conn.task.cancel()

    def _error(self, conn: _Conn, kind: int, seq: bytes, code: ChannelCode, message: str) -> None:
        self.stats[code.name.lower()] += 1
        error = {"jsonrpc": "2.0", "id": None, "error": {"code": int(code), "message": message}}
        self._send(conn, kind, seq, dumps(error).encode("ascii"), int(code))

    async def _drain(self, conn: _Conn) -> None:
        """Wait for the reply to leave; a client that reads nothing for ``write_timeout``
        is cut off (counted as ``write_timeout``, not the reader's ``timeout``)."""
        if conn.closed or conn.writer is None or not conn.writer.transport.get_write_buffer_size():
            return
        try:
            async with asyncio.timeout(self.write_timeout):
                await conn.writer.drain()
        except TimeoutError:
            self.stats["write_timeout"] += 1
            conn.closed = True


DROPPED_STATUS = {"NonceCheckFail": "0xf", "BlockLimitCheckFail": "0x10"}
"""FISCO BCOS 2.x receipt status (TransactionException) of a tx its pool dropped."""

DROPPED_MESSAGE = {
    "NonceCheckFail": "another transaction with this nonce (randomid) committed",
    "BlockLimitCheckFail": "its block limit passed before it was included",
}


def _failed_receipt(tx_hash: bytes, why: str, number: int) -> bytes:
    """The push for a watched transaction that will never commit: a receipt-shaped body
    whose ``status`` is FISCO's code for why (Caliper and the SDKs read ``status``)."""
    body = {
        "transactionHash": "0x" + tx_hash.hex(),
        "status": DROPPED_STATUS.get(why, "0x1"),
        "output": "0x",
        "message": f"{why}: {DROPPED_MESSAGE.get(why, 'dropped from the pool')} "
        f"(at block {number}); the transaction will not commit",
    }
    return dumps(body).encode("ascii")


def _watched_hash(request: dict[str, Any], reply: bytes) -> bytes | None:
    """The hash to watch after a sendRawTransaction: the one the reply gives, or, for
    ``10004 AlreadyKnown`` (this node had the tx already, by gossip say), the request's
    own, so the client still gets the receipt when it commits."""
    with contextlib.suppress(ValueError, TypeError, AttributeError, IndexError, KeyError):
        answer = json.loads(reply)
        result = answer.get("result")
        if type(result) is str and len(result) == 66 and result.startswith("0x"):
            return bytes.fromhex(result[2:])
        if answer["error"]["code"] == ErrorCode.AlreadyKnown:
            raw = request["params"][1]
            if type(raw) is str and raw[:2] in ("0x", "0X"):
                return raw_tx_hash(bytes.fromhex(raw[2:]))
    return None


async def _readable(sock: socket.socket) -> None:
    """Until ``sock`` has input (or EOF): the client's first bytes, before any TLS work."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    fd = sock.fileno()
    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _close_unserved(conn: _Conn, _task: object) -> None:
    """Close the socket of a task cancelled before it ran (an eviction right after the
    accept): its ``finally`` never ran, and no transport took the socket over."""
    if conn.writer is None and conn.sock.fileno() != -1:
        with contextlib.suppress(OSError):
            conn.sock.close()


async def _linger(reader: asyncio.StreamReader) -> None:
    """Discard what the client still sends, briefly, before closing: closing a socket
    with unread input makes the kernel reset it, which can destroy the error frame
    before the client reads it (a client still sending an oversized body, say)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(LINGER_SECONDS):
            discarded = 0
            while discarded < LINGER_BYTES:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                discarded += len(chunk)


def _json(body: bytes) -> Any:
    try:
        return decode_body(body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise FrameError(ChannelCode.BAD_BODY, "the body is not UTF-8 JSON") from None


__all__ = ["PROTOCOL_MAX", "PROTOCOL_MIN", "ChannelServer"]
