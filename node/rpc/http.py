"""A small HTTP/1.1 server on asyncio streams for the JSON-RPC door.

Theory of operation. Each connection is one task that reads a request head (bounded by
``max_header`` bytes and ``idle_timeout`` seconds), then a ``Content-Length`` body
(bounded by ``max_body`` bytes and ``read_timeout`` seconds), answers, and loops while
the connection is keep-alive; pipelined requests are therefore answered in order.
Anything the server cannot frame (garbage, chunked or missing length, oversized head or
body, a bad version) gets one error response carrying a JSON-RPC error object and the
connection is closed, because the rest of the byte stream can no longer be trusted; so
is every other non-2xx answer (404, 405, a 503 /health): one rule, and a client never has
to guess whether a connection survived an error. No input can raise out of a connection
task: the listener keeps accepting whatever one client sends.

A response is written in chunks of ``WRITE_CHUNK`` bytes, draining between them, so the
transport never buffers more than about one chunk; a client that takes nothing for
``write_timeout`` seconds is cut off. At ``max_connections``, a new connection does not
get refused while others merely wait: the connection that has made the least progress
is closed to make room -- first those that never completed a request head (oldest
first: a slowloris), then idle keep-alive ones, then slow bodies, then stalled writes.
Only when every connection is busy running a request does a newcomer get 503.

Routes: ``POST /`` JSON-RPC, ``GET /metrics`` Prometheus text, ``GET /health`` JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from node.rpc import metrics as prom
from node.rpc.errors import ErrorCode, RpcError
from node.rpc.jsonrpc import Dispatcher, encode, error_response

log = logging.getLogger("ledgerlab.rpc.http")

DEFAULT_MAX_BODY = 8 * 1024 * 1024
DEFAULT_MAX_HEADER = 32 * 1024
LINGER_SECONDS = 2.0  # after an error answer: how long to drain the client's input
LINGER_BYTES = 1 << 20
"""What a lingering close discards at most; after a 413, the announced body too (up to
twice ``max_body``): a client that sends its body before it reads, as most do, would
otherwise meet a reset instead of the 413."""
HEAD_END = b"\r\n\r\n"
WRITE_CHUNK = 1 << 18  # bytes handed to the transport before each drain

# What a connection is doing, in the order it is evicted at the connection limit (the
# lowest first; a connection running a request, _BUSY, is never evicted).
_CLOSING = 0  # answered an error; lingering before the close
_HEAD_FIRST = 1  # waiting for its first request head
_HEAD_NEXT = 2  # keep-alive: waiting for its next request head
_BODY = 3  # reading a request body
_WRITE = 4  # writing an answer the client is slow to take
_BUSY = 5  # running a request
MetricsProvider = Callable[[], Iterable[prom.Metric]]

_REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}
_JSON = "application/json"


class _Reject(Exception):
    """A request we answer with ``status`` and then close the connection."""

    def __init__(self, status: int, code: int, message: str, *, unread: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.unread = unread
        """Body bytes the client announced and has not sent yet (they are discarded)."""


def _head(
    status: int,
    length: int,
    *,
    content_type: str = _JSON,
    keep_alive: bool = True,
    extra: str = "",
) -> bytes:
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
    if status != 204:
        head += f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n"
    if not keep_alive:
        head += "Connection: close\r\n"
    return (head + extra + "\r\n").encode("latin-1")


def _error_body(code: int, message: str) -> bytes:
    return encode(error_response(None, RpcError(code, message)))


class _Conn:
    """One connection's task and what it is doing since when (for eviction)."""

    __slots__ = ("since", "state", "task", "writer")

    def __init__(self, task: asyncio.Task[Any], writer: asyncio.StreamWriter, now: float) -> None:
        self.task = task
        self.writer = writer
        self.state = _HEAD_FIRST
        self.since = now


class RpcServer:
    """The node's HTTP JSON-RPC listener; ``async with RpcServer(...) as server:``."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        host: str = "127.0.0.1",
        port: int = 20200,
        metrics: MetricsProvider | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        max_header: int = DEFAULT_MAX_HEADER,
        idle_timeout: float = 60.0,
        read_timeout: float = 30.0,
        write_timeout: float = 30.0,
        max_connections: int = 512,
    ) -> None:
        """``port=0`` picks a free port (read it back from :attr:`port`)."""
        self.dispatcher = dispatcher
        self.host = host
        self._port = port
        self._metrics = metrics
        self.max_body = max_body
        self.max_header = max_header
        self.idle_timeout = idle_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._conns: dict[asyncio.Task[Any], _Conn] = {}  # open, not evicted
        self._tasks: set[asyncio.Task[Any]] = set()  # every connection task still running
        self._closing = False
        self._seq = 0
        # Counters for /metrics.
        self.connections_total = 0
        self.connections_evicted = 0
        self.responses: dict[int, int] = {}
        self.bytes_in = 0
        self.bytes_out = 0

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def open_connections(self) -> int:
        return len(self._conns)

    async def __aenter__(self) -> RpcServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already started")
        self._closing = False
        self._server = await asyncio.start_server(
            self._serve,
            self.host,
            self._port,
            limit=self.max_header - len(HEAD_END),  # readuntil's limit leaves out the end
            reuse_address=True,
        )

    async def close(self) -> None:
        """Stop listening, cancel every connection task and wait for them to finish."""
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def serve_forever(self) -> None:
        """Run until cancelled (for a runtime that puts the server in its TaskGroup)."""
        if self._server is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    # -- connections -------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._seq += 1
        task.set_name(f"rpc-conn-{self._seq}")
        conn = _Conn(task, writer, time.monotonic())
        self._conns[task] = conn
        self._tasks.add(task)
        self.connections_total += 1
        try:
            if self._closing:
                return
            if len(self._conns) > self.max_connections and not self._evict(conn):
                await self._reject(
                    reader,
                    writer,
                    conn,
                    _Reject(503, ErrorCode.InternalError, "too many connections"),
                )
                return
            while await self._one_request(reader, writer, conn):
                pass
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only close(), an eviction (or loop teardown) cancels this leaf task. Ending
            # it normally keeps asyncio's stream callback from logging it as an error.
            pass
        except Exception as exc:
            self.dispatcher.internal_error(exc)
        finally:
            self._conns.pop(task, None)
            self._tasks.discard(task)
            if self._closing or conn.state == _WRITE:  # a write the client does not take
                writer.transport.abort()
            else:
                writer.close()

    def _evict(self, newcomer: _Conn) -> bool:
        """Close the connection that has made the least progress to make room for
        ``newcomer``; False if every other connection is running a request."""
        victim: _Conn | None = None
        for conn in self._conns.values():
            if conn is newcomer or conn.state == _BUSY:
                continue
            if victim is None or (conn.state, conn.since) < (victim.state, victim.since):
                victim = conn
        if victim is None:
            return False
        del self._conns[victim.task]
        self.connections_evicted += 1
        victim.state = _WRITE if victim.state == _WRITE else _CLOSING
        victim.task.cancel()  # its finally closes (a stalled write: aborts) the socket
        return True

    async def _drain(self, writer: asyncio.StreamWriter, conn: _Conn) -> None:
        """Wait until the transport's buffer is below its high-water mark, but not for
        longer than ``write_timeout`` (a client that takes nothing is cut off)."""
        conn.since = time.monotonic()
        async with asyncio.timeout(self.write_timeout):
            await writer.drain()

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        conn: _Conn,
        status: int,
        body: bytes,
        *,
        content_type: str = _JSON,
        keep_alive: bool = True,
        extra: str = "",
    ) -> None:
        head = _head(
            status, len(body), content_type=content_type, keep_alive=keep_alive, extra=extra
        )
        self.responses[status] = self.responses.get(status, 0) + 1
        self.bytes_out += len(head) + len(body)
        previous = conn.state
        conn.state = _WRITE
        transport = writer.transport
        if len(body) <= WRITE_CHUNK:
            writer.write(head + body)
        else:  # a chunk at a time: the transport never buffers the whole answer
            writer.write(head)
            view = memoryview(body)
            for start in range(0, len(body), WRITE_CHUNK):
                writer.write(view[start : start + WRITE_CHUNK])
                if transport.get_write_buffer_size():
                    await self._drain(writer, conn)
        if transport.get_write_buffer_size():  # else the kernel took it all: nothing to wait for
            await self._drain(writer, conn)
        conn.state = previous

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: _Conn
    ) -> bool:
        """Serve one request; False when the connection should close."""
        if conn.state != _HEAD_FIRST:
            conn.state = _HEAD_NEXT
            conn.since = time.monotonic()
        try:
            async with asyncio.timeout(self.idle_timeout):
                head = await reader.readuntil(HEAD_END)
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():  # the peer stopped mid-request
                await self._reject(
                    reader, writer, conn, _Reject(400, ErrorCode.InvalidRequest, "truncated")
                )
            return False
        except asyncio.LimitOverrunError:
            await self._reject(
                reader,
                writer,
                conn,
                _Reject(431, ErrorCode.RequestTooLarge, "request head too large"),
            )
            return False
        except TimeoutError:
            return False
        self.bytes_in += len(head)
        head = head.lstrip(b"\r\n")
        if not head:  # stray blank lines between pipelined requests
            return True
        try:
            method, target, keep_alive, length, expect = self._parse_head(head)
            if length > self.max_body:
                raise _Reject(
                    413,
                    ErrorCode.RequestTooLarge,
                    f"request body of {length} bytes exceeds the {self.max_body}-byte limit",
                    unread=0 if expect else length,
                )
            if expect:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = b""
            if length:
                conn.state = _BODY
                conn.since = time.monotonic()
                async with asyncio.timeout(self.read_timeout):
                    body = await reader.readexactly(length)
                self.bytes_in += length
        except _Reject as rej:
            await self._reject(reader, writer, conn, rej)
            return False
        except asyncio.IncompleteReadError:
            return False
        except TimeoutError:
            await self._reject(
                reader, writer, conn, _Reject(408, ErrorCode.InvalidRequest, "body too slow")
            )
            return False
        conn.state = _BUSY
        return await self._route(reader, writer, conn, method, target, body, keep_alive)

    async def _reject(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: _Conn,
        rej: _Reject,
        *,
        extra: str = "",
    ) -> None:
        """Answer with a JSON-RPC error object, then close gracefully."""
        await self._close_with(
            reader,
            writer,
            conn,
            rej.status,
            _error_body(rej.code, rej.message),
            extra=extra,
            linger_bytes=max(LINGER_BYTES, min(rej.unread, 2 * self.max_body)),
        )

    async def _close_with(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: _Conn,
        status: int,
        body: bytes,
        *,
        extra: str = "",
        linger_bytes: int = LINGER_BYTES,
    ) -> None:
        """Send a last (non-2xx) answer, then close gracefully.

        Closing a socket with unread input makes the kernel send a reset, which can
        destroy the answer before the client reads it (a client still sending an
        oversized body, or requests pipelined behind this one, say). So, like nginx's
        lingering close, we half-close and discard what still arrives for a short,
        bounded while.
        """
        with contextlib.suppress(ConnectionError):
            await self._send(writer, conn, status, body, keep_alive=False, extra=extra)
        conn.state = _CLOSING
        conn.since = time.monotonic()
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
            async with asyncio.timeout(LINGER_SECONDS):
                discarded = 0
                while discarded < linger_bytes:
                    chunk = await reader.read(65536)
                    if not chunk:
                        break
                    discarded += len(chunk)

    def _parse_head(self, head: bytes) -> tuple[bytes, bytes, bool, int, bool]:
        """(method, target, keep_alive, content_length, expect_100) or :class:`_Reject`."""
        bad = ErrorCode.InvalidRequest
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[0].isalpha() or not parts[1]:
            raise _Reject(400, bad, "malformed request line")
        method, target, version = parts
        if version == b"HTTP/1.1":
            keep_alive = True
        elif version == b"HTTP/1.0":
            keep_alive = False
        elif version.startswith(b"HTTP/"):
            raise _Reject(505, bad, "only HTTP/1.0 and HTTP/1.1 are supported")
        else:
            raise _Reject(400, bad, "malformed request line")
        length: int | None = None
        expect = False
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name[-1:] in (b" ", b"\t") or name[:1] in (b" ", b"\t"):
                raise _Reject(400, bad, "malformed header line")
            name = name.lower()
            value = value.strip(b" \t")
            if name == b"content-length":
                if not value.isdigit():
                    raise _Reject(400, bad, "invalid Content-Length")
                digits = value.lstrip(b"0") or b"0"
                if len(digits) > 18:  # well formed, past any limit (and int()'s 4300 digits)
                    raise _Reject(
                        413,
                        ErrorCode.RequestTooLarge,
                        f"a Content-Length of {len(digits)} digits exceeds the "
                        f"{self.max_body}-byte limit",
                    )
                n = int(digits)
                if length is not None and length != n:
                    raise _Reject(400, bad, "conflicting Content-Length headers")
                length = n
            elif name == b"transfer-encoding":
                raise _Reject(411, bad, "chunked bodies are not supported; send Content-Length")
            elif name == b"connection":
                tokens = {t.strip().lower() for t in value.split(b",")}
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = True
            elif name == b"expect":
                if value.lower() != b"100-continue":
                    raise _Reject(417, bad, "unsupported Expect")
                expect = version == b"HTTP/1.1"
        if length is None:
            if method == b"POST":
                raise _Reject(411, bad, "POST needs a Content-Length")
            length = 0
        return method, target, keep_alive, length, expect and length > 0

    async def _route(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        conn: _Conn,
        method: bytes,
        target: bytes,
        body: bytes,
        keep_alive: bool,
    ) -> bool:
        path = target.split(b"?", 1)[0]
        if path[:7].lower() == b"http://":  # absolute-form target: keep only the path
            parts = path.split(b"/", 3)
            path = b"/" + (parts[3] if len(parts) > 3 else b"")
        if method == b"POST" and path == b"/":
            out = await self.dispatcher.handle_bytes(body)
            if out is None:
                await self._send(writer, conn, 204, b"", keep_alive=keep_alive)
            else:
                await self._send(writer, conn, 200, out, keep_alive=keep_alive)
            return keep_alive
        if method == b"GET" and path == b"/metrics":
            text = self.render_metrics()
            await self._send(
                writer,
                conn,
                200,
                text.encode("utf-8"),
                content_type=prom.CONTENT_TYPE,
                keep_alive=keep_alive,
            )
            return keep_alive
        if method == b"GET" and path == b"/health":
            status, health = self._health()
            if status == 200:
                await self._send(writer, conn, 200, encode(health), keep_alive=keep_alive)
                return keep_alive
            await self._close_with(reader, writer, conn, status, encode(health))
            return False
        # Every non-2xx answer closes the connection (docs/rpc.md, HTTP).
        if method == b"POST":
            rej = _Reject(404, ErrorCode.MethodNotFound, "JSON-RPC is served at POST /")
        elif method == b"GET":
            rej = _Reject(
                404, ErrorCode.MethodNotFound, "no such path; try POST /, /metrics, /health"
            )
        else:  # HEAD, PUT, ...
            rej = _Reject(405, ErrorCode.InvalidRequest, "use POST / for JSON-RPC")
        extra = "Allow: GET, POST\r\n" if rej.status == 405 else ""
        await self._reject(reader, writer, conn, rej, extra=extra)
        return False

    def _health(self) -> tuple[int, dict[str, Any]]:
        try:
            number = self.dispatcher.default_backend.block_number()
        except Exception as exc:
            return 503, {"status": "unavailable", "error": type(exc).__name__}
        return 200, {"status": "ok", "blockNumber": number}

    def render_metrics(self) -> str:
        """The /metrics body: the provider's metrics followed by the RPC server's own."""
        families: list[prom.Metric] = []
        if self._metrics is not None:
            try:
                families.extend(self._metrics())
            except Exception:
                log.exception("metrics provider failed")
                families.append(
                    prom.gauge("ledgerlab_metrics_provider_up", "1 if the provider worked", 0)
                )
        st = self.dispatcher.stats
        families += [
            prom.labelled(
                "ledgerlab_rpc_calls_total",
                "counter",
                "JSON-RPC calls by method",
                "method",
                st.calls,
            ),
            prom.labelled(
                "ledgerlab_rpc_errors_total",
                "counter",
                "JSON-RPC errors by code",
                "code",
                {str(k): v for k, v in st.errors.items()},
            ),
            prom.counter("ledgerlab_rpc_requests_total", "JSON-RPC request objects", st.requests),
            prom.counter("ledgerlab_rpc_batches_total", "JSON-RPC batch requests", st.batches),
            prom.counter(
                "ledgerlab_rpc_txs_accepted_total",
                "raw txs accepted by the txpool",
                st.txs_submitted,
            ),
            prom.counter(
                "ledgerlab_rpc_txs_rejected_total",
                "raw txs rejected by the txpool",
                st.txs_rejected,
            ),
            prom.labelled(
                "ledgerlab_http_responses_total",
                "counter",
                "HTTP responses by status",
                "status",
                {str(k): v for k, v in self.responses.items()},
            ),
            prom.counter(
                "ledgerlab_http_connections_total",
                "HTTP connections accepted",
                self.connections_total,
            ),
            prom.counter(
                "ledgerlab_http_connections_evicted_total",
                "HTTP connections closed at the connection limit to make room for a new one",
                self.connections_evicted,
            ),
            prom.gauge(
                "ledgerlab_http_connections_open", "open HTTP connections", len(self._conns)
            ),
            prom.counter("ledgerlab_http_received_bytes_total", "bytes received", self.bytes_in),
            prom.counter("ledgerlab_http_sent_bytes_total", "bytes sent", self.bytes_out),
        ]
        return prom.render(families)
