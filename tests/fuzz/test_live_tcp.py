"""A running 4-sealer chain over TCP + mutual TLS, fuzzed through its real sockets:

* the P2P port, as the (certified, never started) observer: mutated HELLOs, then after a
  good HELLO, streams of frames whose headers lie (lengths over the limit, unknown
  types, a second HELLO, CLOSE, truncation) and DATA frames whose payloads are mutated
  node messages. Every connection ends in a counted disconnect reason of docs/p2p.md,
  never ``internal_error``; the sealers stay connected to each other.
* the RPC port: JSON-RPC requests with mutated params (raw transactions flipped, cut,
  re-encoded; call arguments at the limits; hex that is not hex) and mutated HTTP
  requests, answered by the node's real backend. Every answer is well-formed JSON-RPC
  over HTTP/1.1 (or a clean close), and the node still answers a valid request.

At the end a transfer commits on every node, heads agree, no node counted an internal
error, and every committed transaction is a validly signed one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus.crypto import hash32
from node.ledger.block import Block
from node.ledger.tx import SignedTransaction
from node.runtime import Node, wire
from node.transport.pki import load_node
from tests.fuzz.live import LoopThread, internal_errors, wait
from tests.fuzz.support import fuzz, mutated_bytes, mutated_tree, time_limit
from tests.rpc.test_fuzz import check_response, split_responses
from tests.runtime.cluster import tcp_chain, transfer
from tests.runtime.test_cluster_tcp import free_base

pytestmark = pytest.mark.timeout(time_limit(300))

N = 4
# docs/p2p.md section 5: how a connection may end; internal_error would be a bug of ours
REASONS = {
    "tls_handshake", "no_client_hello", "bad_certificate", "self_connection", "blacklisted",
    "not_member", "hello_mismatch", "genesis_mismatch", "version_mismatch", "bad_hello",
    "refused_by_peer", "handshake_failed", "frame_too_large", "unknown_frame_type",
    "protocol", "duplicate", "replaced", "eof", "closed_by_peer", "idle_timeout",
    "connection_error", "write_error", "shutdown", "too_many_handshakes", "closed",
}  # fmt: skip


class Chain:
    def __init__(self, loop: LoopThread, root: Path) -> None:
        self.loop = loop
        base = free_base(N + 1)
        genesis, configs = tcp_chain(root, N, base, observers=1)
        self.genesis_hash = genesis.block().hash
        self.nodes: list[Node] = []

        async def start() -> None:
            for cfg in configs[:N]:
                self.nodes.append(await loop.aenter(Node.from_config(cfg.home / "config.toml")))

        loop.call(start, timeout=60)
        self.spy = load_node(configs[N].home / "conf")  # the observer's identity is ours
        self.p2p_ports = [int(c.p2p_listen.rsplit(":", 1)[1]) for c in configs[:N]]
        self.rpc_ports = [n.rpc_server.port for n in self.nodes if n.rpc_server is not None]
        wait(self.meshed, 30, "the sealers to connect")
        self.sent: set[bytes] = set()
        for k in range(2):  # a few blocks to copy frames and transactions from
            self.submit([transfer(500 + 5 * k + j, head=self.head()) for j in range(5)])
            wait(lambda k=k: self.count() >= 5 * (k + 1), 60, "the first blocks")

    def do(self, fn: Any) -> Any:
        return self.loop.do(fn)

    def meshed(self) -> bool:
        return self.do(lambda: all(len(n.transport.peers()) >= N - 1 for n in self.nodes))

    def head(self) -> int:
        return int(self.do(lambda: self.nodes[0].chain.head.number))

    def count(self) -> int:
        return int(self.do(lambda: min(n.chain.store.total_tx_count() for n in self.nodes)))

    def submit(self, raws: list[bytes]) -> None:
        self.sent |= {hash32(r) for r in raws}
        assert all(isinstance(x, bytes) for x in self.do(lambda: self.nodes[0].submit(raws)))

    def disconnects(self, i: int) -> dict[str, int]:
        return dict(self.do(lambda: self.nodes[i].transport.stats.disconnects))

    def healthy(self) -> None:
        for n in self.nodes:
            assert self.do(lambda n=n: internal_errors(n)) == 0, n.supervisor.errors
            assert n.dropped["handler_error"] == 0
        for i in range(N):
            assert set(self.disconnects(i)) <= REASONS, self.disconnects(i)


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    with LoopThread() as loop, tempfile.TemporaryDirectory(prefix="ledgerlab-fuzz-") as tmp:
        yield Chain(loop, Path(tmp))


# -- P2P ---------------------------------------------------------------------------------------


def frame(kind: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + bytes([kind]) + payload


def p2p_session(chain: Chain, port: int, data: bytes, *, wait_s: float = 0.05) -> bytes:
    """TLS as the observer, send ``data``, read what comes back for a moment, close."""
    ctx = chain.spy.client_context()
    got = b""
    with contextlib.suppress(OSError):
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        with ctx.wrap_socket(raw, server_hostname="node") as s:
            with contextlib.suppress(OSError):
                s.sendall(data)
            s.settimeout(wait_s)
            with contextlib.suppress(OSError, ssl.SSLError):
                while chunk := s.recv(65536):
                    got += chunk
    return got


def hello_payload(chain: Chain, **over: Any) -> bytes:
    fields = {"version": 1, "node_id": bytes.fromhex(chain.spy.node_id),
              "genesis": chain.genesis_hash, "boot": os.urandom(8)}  # fmt: skip
    fields.update(over)
    return msgpack.packb(list(fields.values()), use_bin_type=True)


@st.composite
def hellos(draw: st.DrawFn, chain: Chain) -> bytes:
    good = hello_payload(chain, boot=b"\x00" * 8)
    how = draw(st.sampled_from(["tree", "tree", "bytes", "header", "type"]))
    if how == "tree":
        return frame(1, draw(mutated_tree(good)))
    if how == "bytes":
        return frame(1, draw(mutated_bytes(good)))
    if how == "type":
        return frame(draw(st.integers(0, 255)), good)
    length = draw(st.sampled_from([0, 1023, 1024, 1025, 2**24, 2**32 - 1]))
    return length.to_bytes(4, "big") + b"\x01" + good


@pytest.mark.timeout(time_limit(180))
@fuzz(100)
@given(st.data())
def test_mutated_hellos_end_in_a_counted_refusal(chain: Chain, data: st.DataObject) -> None:
    target = data.draw(st.integers(0, N - 1))
    before = sum(chain.disconnects(target).values())
    p2p_session(chain, chain.p2p_ports[target], data.draw(hellos(chain)))
    wait(lambda: sum(chain.disconnects(target).values()) > before, 10, "a counted disconnect")
    chain.healthy()


def _node_messages(chain: Chain) -> list[bytes]:
    block = chain.do(lambda: chain.nodes[0].chain.store.block_by_number(1))
    tx = Block.decode(block).transactions[0]
    head = chain.do(lambda: chain.nodes[0].chain.head)
    return [
        wire.encode(wire.Txs((tx,))),
        wire.encode(wire.TxRequest(1, (hash32(tx),))),
        wire.encode(wire.TxResponse(1, (tx,))),
        wire.encode(wire.Status(head.number, head.block_hash, chain.genesis_hash)),
        wire.encode(wire.BlockRequest(0, 2)),
        wire.encode(wire.BlockResponse((block,))),
    ]


@st.composite
def streams(draw: st.DrawFn, messages: list[bytes]) -> bytes:
    """What follows a good HELLO: frames, some of them lying about themselves."""
    out = b""
    for _ in range(draw(st.integers(1, 6))):
        msg = draw(st.sampled_from(messages))
        how = draw(st.sampled_from(["data", "data", "data", "raw", "type", "length", "hello",
                                    "close", "ping", "cut"]))  # fmt: skip
        if how == "data":
            body = msg[1:]
            payload = msg[:1] + draw(mutated_tree(body) | mutated_bytes(body) | st.just(body))
            out += frame(2, payload)
        elif how == "raw":
            out += draw(st.binary(min_size=1, max_size=64))
        elif how == "type":
            out += frame(draw(st.sampled_from([0, 5, 9, 200, 255])), msg)
        elif how == "length":
            out += draw(st.sampled_from([2**24 + 1, 2**32 - 1])).to_bytes(4, "big") + b"\x02"
        elif how == "hello":
            out += frame(1, b"\x90")
        elif how == "close":
            out += frame(3, draw(st.binary(max_size=300)))
        elif how == "ping":
            out += frame(4, draw(st.binary(max_size=8)))
        else:
            out += frame(2, msg)[: draw(st.integers(1, len(msg) + 4))]
    return out


@pytest.mark.timeout(time_limit(180))
@fuzz(100)
@given(st.data())
def test_frame_streams_after_a_good_hello_are_read_or_cut_off(
    chain: Chain, data: st.DataObject
) -> None:
    target = data.draw(st.integers(0, N - 1))
    stream = data.draw(streams(_node_messages(chain)))
    before = chain.disconnects(target)
    p2p_session(chain, chain.p2p_ports[target], frame(1, hello_payload(chain)) + stream)
    wait(
        lambda: sum(chain.disconnects(target).values()) > sum(before.values()),
        10,
        "the connection's end to be counted",
    )
    chain.healthy()


# -- RPC ---------------------------------------------------------------------------------------


def rpc_exchange(port: int, data: bytes) -> bytes:
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def post(body: bytes) -> bytes:
    return b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body


def hexed(b: bytes) -> str:
    return "0x" + b.hex()


def request(method: str, params: list[Any], rid: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


_arg = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "a" * 256, "a" * 257, "é" * 128, "\ud800"]),
    st.integers(-(2**257), 2**257),
    st.sampled_from([0, 2**256 - 1, 2**256, -1, 2**64]),
    st.floats(allow_nan=False),
    st.none(),
    st.booleans(),
    st.lists(st.integers(0, 3), max_size=2),
)


@st.composite
def rpc_bodies(draw: st.DrawFn, tx: bytes) -> bytes:
    how = draw(st.sampled_from(["raw_tx", "raw_tx", "call", "params", "http"]))
    if how == "raw_tx":
        raw = draw(mutated_bytes(tx) | mutated_tree(tx) | st.just(tx))
        extra = draw(st.sampled_from([[], [{"force": True}], [{"force": 1}], [{"x": 1}], [5]]))
        body = request("sendRawTransaction", ["group0", hexed(raw), *extra])
    elif how == "call":
        body = request("call", ["group0", {
            "to": draw(st.sampled_from(["0x5002", "0x1000", "0x1003", "0x", "0x" + "ff" * 21])),
            "method": draw(st.sampled_from(["userBalance", "userTransfer", "setValueByKey",
                                            "addSealer", "getSealerList", "nope"])),
            "args": draw(st.lists(_arg, max_size=4)),
            **({"from": hexed(draw(st.binary(max_size=22)))} if draw(st.booleans()) else {}),
        }])  # fmt: skip
    elif how == "params":
        method = draw(st.sampled_from(["getBlockByNumber", "getBlockByHash", "getTransactionByHash",
                                       "getTransactionReceipt", "getSystemConfigByKey",
                                       "getBlockHashByNumber", "getSealerList"]))  # fmt: skip
        params = draw(st.lists(_arg | st.binary(max_size=40).map(hexed), max_size=3))
        body = request(method, [draw(st.sampled_from(["group0", 0, "group9", None])), *params])
    else:
        head = post(json.dumps(request("getBlockNumber", ["group0"])).encode())
        return draw(mutated_bytes(head))
    text = json.dumps(body, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    return post(text)


@pytest.mark.timeout(time_limit(180))
@fuzz(120)
@given(st.data())
def test_rpc_bodies_get_well_formed_answers_from_a_running_node(
    chain: Chain, data: st.DataObject
) -> None:
    block = chain.do(lambda: chain.nodes[0].chain.store.block_by_number(1))
    tx = Block.decode(block).transactions[0]
    port = chain.rpc_ports[data.draw(st.integers(0, N - 1))]
    split_responses(rpc_exchange(port, data.draw(rpc_bodies(tx))))
    ok = post(json.dumps(request("getBlockNumber", ["group0"], rid=9)).encode())
    ((status, _, answer),) = split_responses(rpc_exchange(port, ok))
    assert status == 200
    check_response(json.loads(answer))
    chain.healthy()


# -- afterwards --------------------------------------------------------------------------------


def test_the_chain_still_commits_and_holds_only_signed_transactions(chain: Chain) -> None:
    wait(chain.meshed, 30, "the sealers to be connected to each other again")
    raw = transfer(90_000, head=chain.head(), nonce=f"last-{secrets.token_hex(8)}")
    chain.submit([raw])
    wait(
        lambda: chain.do(lambda: all(n.chain.store.tx_location(hash32(raw)) for n in chain.nodes)),
        60,
        "a fresh transfer to commit everywhere",
    )
    wait(lambda: chain.do(lambda: len({n.chain.head for n in chain.nodes}) == 1), 30, "one head")
    chain.healthy()

    def committed() -> list[bytes]:
        c = chain.nodes[0].chain
        return [t for n in range(1, c.head.number + 1) for t in c.block(n).transactions]

    txs = chain.do(committed)
    for t in txs:
        SignedTransaction.decode(t).recover_sender()
    assert chain.sent <= {hash32(t) for t in txs}
