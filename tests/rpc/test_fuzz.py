"""Hypothesis: whatever arrives, only well-formed JSON-RPC answers or clean disconnects leave.

The dispatcher gets random JSON values, JSON-RPC-shaped requests with random params
(including hex strings that reach the real txpool) and random bytes. A live server gets
random bytes and mutated valid requests over real sockets, and must answer a valid
request after every example.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.rpc import Dispatcher
from node.rpc.methods import METHODS
from tests.rpc.conftest import ThreadedServer
from tests.rpc.fakes import GROUP, Ledger, LedgerBackend

FUZZ = settings(
    max_examples=int(os.environ.get("LEDGERLAB_FUZZ_EXAMPLES", "150")),  # raise for a soak
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- strategies ------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
params = (
    json_values
    | st.binary(max_size=80).map(lambda b: "0x" + b.hex())
    | st.sampled_from([GROUP, "latest", "earliest", "0x5002", "0x", "tx_count_limit", 0, 1])
    | st.integers(min_value=-2, max_value=2**70)
    | st.fixed_dictionaries(
        {"to": st.sampled_from(["0x5002", "0x1000", "0x", 5])},
        optional={
            "data": st.binary(max_size=40).map(lambda b: "0x" + b.hex()),
            "method": st.text(max_size=10),
            "args": st.lists(scalars, max_size=3),
        },
    )
)
requests = st.fixed_dictionaries(
    {
        "jsonrpc": st.sampled_from(["2.0", "2.0", "2.0", "1.0", 2]),
        "method": st.sampled_from(sorted(METHODS)) | st.text(max_size=12),
    },
    optional={
        "id": scalars,
        "params": st.lists(params, max_size=4).map(lambda p: [GROUP, *p])
        | st.lists(params, max_size=4)
        | json_values,
    },
)
messages = requests | st.lists(requests | json_values, max_size=6) | json_values


def check_response(response: Any) -> None:
    assert isinstance(response, dict), response
    assert response.get("jsonrpc") == "2.0"
    assert "id" in response
    assert ("result" in response) != ("error" in response), response
    if "error" in response:
        error = response["error"]
        assert set(error) <= {"code", "message", "data"}
        assert type(error["code"]) is int
        assert isinstance(error["message"], str) and error["message"]


def check_answer(message: Any, answer: Any) -> None:
    """``answer`` is what the dispatcher returned for the decoded ``message``."""
    if answer is None:  # only notifications (or a batch of them) may go unanswered
        items = message if isinstance(message, list) else [message]
        assert items and all(isinstance(m, dict) and "id" not in m for m in items)
        return
    if isinstance(message, list) and message:
        assert isinstance(answer, list) and 0 < len(answer) <= len(message)
        for response in answer:
            check_response(response)
    else:
        check_response(answer)
        if isinstance(message, dict) and "id" in message and "result" in answer:
            assert answer["id"] == message["id"]


_ledger = Ledger()
_dispatcher = Dispatcher({GROUP: LedgerBackend(_ledger)})
_loop = asyncio.new_event_loop()


@FUZZ
@given(messages)
def test_dispatcher_answers_any_json_value_well_formed(message: Any) -> None:
    answer = _loop.run_until_complete(_dispatcher.handle(message))
    check_answer(message, answer)
    out = _loop.run_until_complete(_dispatcher.handle_bytes(json.dumps(message).encode()))
    if out is not None:
        check_answer(message, json.loads(out))


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=100).map(str.encode))
def test_dispatcher_answers_any_bytes_well_formed(body: bytes) -> None:
    out = _loop.run_until_complete(_dispatcher.handle_bytes(body))
    if out is None:
        return  # a body that happened to be an all-notification batch
    decoded = json.loads(out)
    for response in decoded if isinstance(decoded, list) else [decoded]:
        check_response(response)


# -- a live server over real sockets -----------------------------------------------------------


@pytest.fixture(scope="module")
def live_port() -> Iterator[int]:
    with ThreadedServer(idle_timeout=2, read_timeout=2) as running:
        yield running.port


def exchange(port: int, data: bytes) -> bytes:
    """Send, half-close, read to EOF. A reset counts as a disconnect."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server refused early and closed
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def split_responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Parse a stream of HTTP/1.1 responses strictly; AssertionError if anything is off."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"unterminated response head: {data[:80]!r}"
        lines = head.decode("latin-1").split("\r\n")
        version, status, _ = lines[0].split(" ", 2)
        assert version == "HTTP/1.1" and status.isdigit()
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            assert colon
            headers[name.lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        assert len(rest) >= length
        body, data = rest[:length], rest[length:]
        if int(status) == 100:
            continue
        if headers.get("content-type") == "application/json":
            decoded = json.loads(body)
            if isinstance(decoded, dict) and "jsonrpc" not in decoded:
                assert decoded["status"] == "ok"  # GET /health
            else:
                for response in decoded if isinstance(decoded, list) else [decoded]:
                    check_response(response)
        out.append((int(status), headers, body))
    return out


def assert_alive(port: int) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 9, "method": "getBlockNumber", "params": [GROUP]})
    request = f"POST / HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode()
    ((status, _, answer),) = split_responses(exchange(port, request))
    assert status == 200 and json.loads(answer)["id"] == 9


VALID = [
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 63\r\n\r\n"
    b'{"jsonrpc":"2.0","id":1,"method":"getBlockNumber","params":[1]}',
    b"GET /metrics HTTP/1.1\r\n\r\n",
    b"GET /health HTTP/1.0\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n[]",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)) * draw(st.integers(1, 3)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            del data[pos:]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=2000) | mutated())
def test_server_survives_random_and_mutated_bytes(live_port: int, data: bytes) -> None:
    split_responses(exchange(live_port, data))
    assert_alive(live_port)
