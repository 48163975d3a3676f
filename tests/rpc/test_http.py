"""The HTTP/1.1 door: framing, keep-alive, pipelining, limits, hostile bytes, shutdown."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from node.rpc import Dispatcher, ErrorCode, RpcServer
from node.rpc.client import AsyncRpcClient, RpcError
from tests.rpc.conftest import NOTIFY, raw_exchange, req
from tests.rpc.fakes import GROUP, Ledger, LedgerBackend

pytestmark = pytest.mark.asyncio


def post(payload: Any, *, headers: str = "", version: str = "HTTP/1.1") -> bytes:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return (
        f"POST / {version}\r\nHost: t\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    ).encode() + body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status, _ = lines[0].split(" ", 2)
    assert version == "HTTP/1.1"
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return int(status), headers, body


async def responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Every response in a byte stream the server wrote before closing."""
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    out = []
    while not reader.at_eof():
        out.append(await read_response(reader))
    return out


@asynccontextmanager
async def connection(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def still_serving(server: RpcServer) -> None:
    """A fresh connection gets a correct answer: the server survived what came before."""
    async with connection(server.port) as (reader, writer):
        writer.write(post(req("getBlockNumber", GROUP, id="alive")))
        status, _, body = await read_response(reader)
    assert status == 200
    assert json.loads(body) == {"jsonrpc": "2.0", "id": "alive", "result": "0x0"}


async def no_open_connections(server: RpcServer) -> None:
    """Wait (briefly) until the server has noticed every client hang up."""
    async with asyncio.timeout(2):
        while server.open_connections:
            await asyncio.sleep(0.01)


def rpc_error(body: bytes, code: int) -> None:
    answer = json.loads(body)
    assert answer["jsonrpc"] == "2.0" and answer["id"] is None
    assert answer["error"]["code"] == code


# -- the happy paths --------------------------------------------------------------------------


async def test_post_json_rpc(server: RpcServer) -> None:
    async with connection(server.port) as (reader, writer):
        writer.write(post(req("getClientVersion")))
        status, headers, body = await read_response(reader)
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["result"]["Chain Id"] == "chain0"
    assert "connection" not in headers  # keep-alive is the HTTP/1.1 default


async def test_keep_alive_many_requests_one_connection(server: RpcServer, ledger: Ledger) -> None:
    async with connection(server.port) as (reader, writer):
        for i in range(20):
            if i == 10:
                ledger.commit()
            writer.write(post(req("getBlockNumber", GROUP, id=i)))
            status, _, body = await read_response(reader)
            assert status == 200
            assert json.loads(body) == {"jsonrpc": "2.0", "id": i, "result": hex(i >= 10)}
    assert server.connections_total == 1


async def test_pipelined_requests_answered_in_order(server: RpcServer) -> None:
    async with connection(server.port) as (reader, writer):
        writer.write(
            post(req("getBlockNumber", GROUP, id=1))
            + b"\r\n"  # a stray blank line between requests is tolerated
            + get("/health")
            + post(req("nope", id=3))
            + post([req("getPbftView", GROUP, id=4), req("getPendingTxSize", GROUP, id=5)])
        )
        answers = [await read_response(reader) for _ in range(4)]
    assert json.loads(answers[0][2])["id"] == 1
    assert json.loads(answers[1][2])["status"] == "ok"
    assert json.loads(answers[2][2])["error"]["code"] == ErrorCode.MethodNotFound
    assert [a["id"] for a in json.loads(answers[3][2])] == [4, 5]


async def test_absolute_form_targets_and_queries(server: RpcServer) -> None:
    body = json.dumps(req("getBlockNumber", GROUP)).encode()
    async with connection(server.port) as (reader, writer):
        for target in (b"http://127.0.0.1:20200/", b"http://127.0.0.1:20200", b"/?x=1"):
            writer.write(b"POST " + target + b" HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(body))
            writer.write(body)
            assert (await read_response(reader))[0] == 200
        writer.write(b"GET http://h/health HTTP/1.1\r\n\r\n")
        assert (await read_response(reader))[0] == 200


async def test_notification_only_gets_204(server: RpcServer) -> None:
    async with connection(server.port) as (reader, writer):
        writer.write(post(req("getBlockNumber", GROUP, id=NOTIFY)))
        status, headers, body = await read_response(reader)
        assert status == 204 and body == b"" and "content-length" not in headers
        writer.write(post(req("getBlockNumber", GROUP)))  # connection still usable
        assert (await read_response(reader))[0] == 200


async def test_expect_100_continue(server: RpcServer) -> None:
    body = json.dumps(req("getBlockNumber", GROUP)).encode()
    async with connection(server.port) as (reader, writer):
        head = f"POST / HTTP/1.1\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
        writer.write(head.encode())
        interim = await reader.readuntil(b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        assert (await read_response(reader))[0] == 200


async def test_health(server: RpcServer, ledger: Ledger) -> None:
    ledger.commit()
    async with connection(server.port) as (reader, writer):
        writer.write(get("/health"))
        status, headers, body = await read_response(reader)
        assert status == 200 and json.loads(body) == {"status": "ok", "blockNumber": 1}
        assert "connection" not in headers  # a 2xx keeps the connection
        writer.write(get("/health"))
        assert (await read_response(reader))[0] == 200


async def test_unhealthy_503_closes_the_connection(ledger: Ledger) -> None:
    class Down(LedgerBackend):
        def block_number(self) -> int:
            raise RuntimeError("storage gone")

    async with RpcServer(Dispatcher({GROUP: Down(ledger)}), port=0) as server:
        data = await raw_exchange(server.port, get("/health") + get("/health"))
        ((status, headers, body),) = await responses(data)  # the second is not answered
    assert status == 503 and headers["connection"] == "close"
    assert json.loads(body) == {"status": "unavailable", "error": "RuntimeError"}


_SAMPLE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? '
    r"(-?[0-9.e+]+|NaN|[+-]Inf)$"
)


def check_exposition(text: str) -> dict[str, float]:
    """Validate Prometheus text format; samples by ``name{labels}``."""
    assert text.endswith("\n")
    samples: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "untyped")
            assert name not in typed, f"duplicate TYPE for {name}"
            typed.add(name)
            continue
        assert _SAMPLE.match(line), line
        key, value = line.rsplit(" ", 1)
        assert key.split("{")[0] in typed, f"{key} has no TYPE line"
        samples[key] = float(value)
    return samples


async def test_metrics(server: RpcServer, ledger: Ledger) -> None:
    ledger.commit()
    async with connection(server.port) as (reader, writer):
        writer.write(post(req("getBlockNumber", GROUP)))
        await read_response(reader)
        writer.write(post(req("junk", GROUP)))
        await read_response(reader)
        writer.write(get("/metrics"))
        status, headers, body = await read_response(reader)
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = check_exposition(body.decode())
    assert samples["ledgerlab_block_height"] == 1
    assert samples['ledgerlab_messages_in_total{type="prepare"}'] == 3
    assert samples['ledgerlab_rpc_calls_total{method="getBlockNumber"}'] == 1
    assert samples['ledgerlab_rpc_errors_total{code="-32601"}'] == 1
    assert samples['ledgerlab_http_responses_total{status="200"}'] >= 2
    assert samples["ledgerlab_http_connections_open"] == 1


async def test_metrics_provider_failure_still_serves(dispatcher: Dispatcher) -> None:
    def broken() -> list[Any]:
        raise RuntimeError("boom")

    server = RpcServer(dispatcher, port=0, metrics=broken)
    async with server, connection(server.port) as (reader, writer):
        writer.write(get("/metrics"))
        status, _, body = await read_response(reader)
    assert status == 200
    assert check_exposition(body.decode())["ledgerlab_metrics_provider_up"] == 0


# -- things the server refuses ----------------------------------------------------------------


async def test_oversized_body_413_and_connection_closed(dispatcher: Dispatcher) -> None:
    async with RpcServer(dispatcher, port=0, max_body=1000) as server:
        data = await raw_exchange(server.port, post(b"[" + b" " * 2000 + b"]"))
        ((status, headers, body),) = await responses(data)
        assert status == 413 and headers["connection"] == "close"
        rpc_error(body, ErrorCode.RequestTooLarge)
        # A body exactly at the limit is fine.
        payload = json.dumps(req("getBlockNumber", GROUP)).encode()
        payload += b" " * (1000 - len(payload))
        data = await raw_exchange(server.port, post(payload))
        assert (await responses(data))[0][0] == 200
        # With Expect: 100-continue the refusal comes before the body is sent.
        async with connection(server.port) as (reader, writer):
            writer.write(b"POST / HTTP/1.1\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
            status, _, _ = await read_response(reader)
            assert status == 413
        await still_serving(server)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST / HTTP/1.1\r\nHost: t\r\n\r\n{}", 411),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411),
        (b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", 400),
        # well formed but past any limit (and past int()'s 4300 digits): too large, not bad
        (b"POST / HTTP/1.1\r\nContent-Length: " + b"9" * 29 + b"\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400),
        (b"POST / HTTP/1.1\r\nContent-Length : 2\r\n\r\n{}", 400),
        (b"POST / HTTP/1.1\r\n folded: header\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"POST / HTTP/2.0\r\nContent-Length: 2\r\n\r\n{}", 505),
        (b"POST /\r\n\r\n", 400),
        (b"POST  / HTTP/1.1\r\n\r\n", 400),
        (b"\x00\xff\xfe garbage \x01\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: magic\r\n\r\n{}", 417),
        (b"GET /nothing HTTP/1.1\r\n\r\n", 404),
        (b"GET / HTTP/1.1\r\n\r\n", 404),
        (b"POST /other HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 404),
        (b"PUT / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 405),
        (b"HEAD / HTTP/1.1\r\n\r\n", 405),
    ],
)
async def test_bad_requests(server: RpcServer, request_bytes: bytes, status: int) -> None:
    # Every non-2xx answer closes the connection (docs/rpc.md): a request pipelined
    # behind it is not answered.
    data = await raw_exchange(server.port, request_bytes + post(req("getBlockNumber", GROUP)))
    ((first_status, headers, body),) = await responses(data)
    assert first_status == status and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] < 0  # every error body is a JSON-RPC error
    await still_serving(server)


async def test_an_oversized_body_sent_before_reading_still_gets_its_413(
    dispatcher: Dispatcher,
) -> None:
    # Most clients (Python's http.client, the project's RpcClient) send the whole body
    # before they read. Closing with most of an 8 MiB + 1 body unread made the kernel
    # reset the connection, and http.client saw a broken pipe instead of the 413.
    async with RpcServer(dispatcher, port=0) as server:
        body = b"[" + b" " * (server.max_body - 1) + b"]"

        def send_all_then_read() -> tuple[int, bytes]:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            try:
                conn.request("POST", "/", body=body)
                answer = conn.getresponse()
                return answer.status, answer.read()
            finally:
                conn.close()

        status, answer = await asyncio.to_thread(send_all_then_read)
        assert status == 413
        rpc_error(answer, ErrorCode.RequestTooLarge)
        # docs/rpc.md: the Python client raises RpcError for HTTP-level refusals too
        async with AsyncRpcClient("127.0.0.1", server.port, group=GROUP, timeout=10) as client:
            with pytest.raises(RpcError) as err:
                await client.post(body)
        assert err.value.code == ErrorCode.RequestTooLarge
        await still_serving(server)


async def test_the_head_limit_counts_every_byte_of_the_head(dispatcher: Dispatcher) -> None:
    # The request line, the headers and the blank line that ends them: max_header bytes.
    async with RpcServer(dispatcher, port=0, max_header=1024) as server:
        for size, status in ((1024, 200), (1025, 431)):
            start = b"GET /health HTTP/1.1\r\nX-Pad: "
            pad = size - len(start) - len(b"\r\n\r\n")
            head = start + b"a" * pad + b"\r\n\r\n"
            assert len(head) == size
            answers = await responses(await raw_exchange(server.port, head))
            assert [a[0] for a in answers] == [status], size


async def test_header_too_large_431(dispatcher: Dispatcher) -> None:
    async with RpcServer(dispatcher, port=0, max_header=1024) as server:
        data = await raw_exchange(
            server.port, b"POST / HTTP/1.1\r\nX-Big: " + b"a" * 4096 + b"\r\n\r\n"
        )
        ((status, _, body),) = await responses(data)
        assert status == 431
        rpc_error(body, ErrorCode.RequestTooLarge)
        await still_serving(server)


async def test_malformed_json_over_http(server: RpcServer) -> None:
    data = await raw_exchange(server.port, post(b'{"jsonrpc": "2.0", "method": '))
    ((status, _, body),) = await responses(data)
    assert status == 200  # JSON-RPC errors travel in a 200 answer
    rpc_error(body, ErrorCode.ParseError)


# -- hostile or broken connections ----------------------------------------------------------


async def test_garbage_without_terminator_then_eof(server: RpcServer) -> None:
    data = await raw_exchange(server.port, bytes(range(256)) * 4)
    if data:  # the server may answer 400 before closing; it must not hang or die
        assert (await responses(data))[0][0] == 400
    await still_serving(server)


async def test_half_closed_connection_still_gets_its_answer(server: RpcServer) -> None:
    data = await raw_exchange(
        server.port,
        post(req("getBlockNumber", GROUP, id=1)) + post(req("getPbftView", GROUP, id=2)),
    )
    answers = await responses(data)
    assert [json.loads(b)["id"] for _, _, b in answers] == [1, 2]
    await still_serving(server)


async def test_truncated_body_closes_quietly(server: RpcServer) -> None:
    data = await raw_exchange(server.port, b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n{}")
    assert data == b""
    await still_serving(server)


async def test_truncated_head_gets_400(server: RpcServer) -> None:
    data = await raw_exchange(server.port, b"POST / HTTP/1.1\r\nContent-Len")
    assert (await responses(data))[0][0] == 400
    await still_serving(server)


async def test_abrupt_reset_mid_request(server: RpcServer) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n[")
    await writer.drain()
    writer.transport.abort()
    await still_serving(server)
    await no_open_connections(server)


async def test_http10_and_connection_close(server: RpcServer) -> None:
    for request_bytes in (
        post(req("getBlockNumber", GROUP), version="HTTP/1.0"),
        post(req("getBlockNumber", GROUP), headers="Connection: close\r\n"),
    ):
        async with connection(server.port) as (reader, writer):
            writer.write(request_bytes)
            status, headers, _ = await read_response(reader)
            assert status == 200 and headers["connection"] == "close"
            assert await reader.read() == b""  # the server closed its side
    async with connection(server.port) as (reader, writer):
        writer.write(
            post(
                req("getBlockNumber", GROUP),
                version="HTTP/1.0",
                headers="Connection: keep-alive\r\n",
            )
        )
        await read_response(reader)
        writer.write(post(req("getBlockNumber", GROUP)))
        assert (await read_response(reader))[0] == 200


async def test_idle_and_slow_connections_time_out(dispatcher: Dispatcher) -> None:
    async with RpcServer(dispatcher, port=0, idle_timeout=0.2, read_timeout=0.2) as server:
        async with connection(server.port) as (reader, _):
            async with asyncio.timeout(2):
                assert await reader.read() == b""  # idle: closed without a word
        async with connection(server.port) as (reader, writer):
            writer.write(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345")
            async with asyncio.timeout(2):
                status, headers, _ = await read_response(reader)
            assert status == 408 and headers["connection"] == "close"
        await still_serving(server)


async def test_connection_limit(dispatcher: Dispatcher) -> None:
    """At the limit a newcomer is served: the oldest connection that never sent a request
    is closed to make room (tests/rpc/test_limits.py has the details)."""
    async with RpcServer(dispatcher, port=0, max_connections=2) as server:
        async with connection(server.port) as (oldest, _), connection(server.port):
            await asyncio.sleep(0.05)
            data = await raw_exchange(server.port, post(req("getBlockNumber", GROUP)))
            assert (await responses(data))[0][0] == 200
            async with asyncio.timeout(2):
                assert await oldest.read() == b""
            assert server.connections_evicted == 1
        await asyncio.sleep(0.05)
        await still_serving(server)


async def test_shutdown_closes_open_connections_and_tasks(dispatcher: Dispatcher) -> None:
    server = RpcServer(dispatcher, port=0)
    await server.start()
    port = server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(post(req("getBlockNumber", GROUP)))
    await read_response(reader)  # one served, connection now idle in keep-alive
    reader2, writer2 = await asyncio.open_connection("127.0.0.1", port)
    writer2.write(b"POST / HTTP/1.1\r\nContent-Length: 50\r\n\r\n{")  # mid-request
    await asyncio.sleep(0.05)
    assert server.open_connections == 2
    await server.close()
    assert server.open_connections == 0
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("rpc-conn-")]
    async with asyncio.timeout(2):
        assert await reader.read() == b""
        assert await reader2.read() == b""
    writer.close()
    writer2.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_serve_forever_in_a_task_group(dispatcher: Dispatcher) -> None:
    server = RpcServer(dispatcher, port=0)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(server.serve_forever(), name="rpc")
        while server.port == 0:
            await asyncio.sleep(0.01)
        await still_serving(server)
        task.cancel()
    assert server.open_connections == 0
