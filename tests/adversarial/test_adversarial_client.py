"""An adversarial client against a live 4-node chain (real processes, TCP + mutual TLS).

Written as an outside integrator would, from docs/ only: rpc.md (JSON-RPC, error codes),
wire-format.md (transactions byte by byte, DagTransfer codes) and p2p.md (the P2P port).
Every case ends with :meth:`LiveChain.assert_live`: a fresh transfer commits on every node
within 2 x consensus_timeout and every node has the same head hash and state root. A bad
input must get the typed error the docs promise and change nothing.

One chain serves the module (node txpools capped at :data:`POOL`, docs/node.md
``[txpool] capacity``); a case that breaks it is reported as failed and the next case
gets a fresh chain.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from tests.adversarial.harness import (
    ALREADY_IN_CHAIN,
    ALREADY_KNOWN,
    BATCH_TOO_LARGE,
    BLOCK_LIMIT_CHECK_FAIL,
    CHAIN,
    DAG,
    GROUP,
    GROUP_NOT_FOUND,
    INVALID_CHAIN_ID,
    INVALID_GROUP_ID,
    INVALID_PARAMS,
    INVALID_REQUEST,
    INVALID_SIGNATURE,
    MALFORMED,
    MAX_ARG_BYTES,
    MAX_ARGS,
    MAX_NAME_BYTES,
    MAX_TX_SIZE,
    METHOD_NOT_FOUND,
    NONCE_CHECK_FAIL,
    PARSE_ERROR,
    QUARANTINED,
    REQUEST_TOO_LARGE,
    TXPOOL_CODES,
    TXPOOL_IS_FULL,
    ChainKeeper,
    LiveChain,
    Sent,
    background_load,
    hash32,
    send_at_once,
    sign_body,
    u256,
    wait_for,
)

pytestmark = pytest.mark.slow

POOL = 200
UINT256_MAX = 2**256 - 1
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# DagTransfer / precompile receipt statuses (docs/wire-format.md)
OK = 0
PRECOMPILED_ERROR = 21
CALL_ADDRESS_ERROR = 26
UNKNOWN_FUNCTION = -50100
INVALID_AMOUNT = -51401
USER_NOT_EXIST = -51402
USER_ALREADY_EXIST = -51403
INSUFFICIENT_BALANCE = -51404
BALANCE_OVERFLOW = -51405
# docs/rpc.md
BLOCK_HASH_NOT_FOUND = -40003
BLOCK_NUMBER_NOT_FOUND = -40004
INVALID_SYSTEM_CONFIG = -40008


@pytest.fixture(scope="module")
def keeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainKeeper]:
    k = ChainKeeper(tmp_path_factory.mktemp("adversarial"), txpool_capacity=POOL)
    try:
        yield k
    finally:
        k.close()


@pytest.fixture
def chain(keeper: ChainKeeper) -> LiveChain:
    return keeper.healthy()


# -- helpers ---------------------------------------------------------------------------


def code_of(answer: dict[str, Any]) -> Any:
    return answer.get("error", {}).get("code") if isinstance(answer, dict) else None


def status_of(receipt: dict[str, Any]) -> int:
    return int(receipt["status"], 16)


def assert_refused(chain: LiveChain, answer: dict[str, Any], code: int, what: str) -> None:
    assert code_of(answer) == code, f"{what}: expected error {code}, got {answer}"
    error = answer["error"]
    assert isinstance(error.get("message"), str) and error["message"], answer
    if code in TXPOOL_CODES:  # docs/rpc.md: txpool rejections carry data.reason/status
        assert error.get("data", {}).get("status") == hex(code), answer


def assert_nowhere(chain: LiveChain, hashes: list[str]) -> None:
    """None of ``hashes`` is pending or committed on any node."""
    for i in range(chain.n):
        for h in hashes:
            assert chain.result(i, "getTransactionByHash", h) is None, (i, h)


def assert_unchanged(chain: LiveChain, before: tuple[int, str, str]) -> None:
    """Refused inputs only: every node still has exactly the head it had before."""
    for i in range(chain.n):
        assert chain.head(i) == before, (i, chain.head(i), before)
        assert int(chain.result(i, "getPendingTxSize"), 16) == 0, i


def utf8_name(char: str, size: int, tag: str, *, straddle: bool = False) -> str:
    """An ASCII ``tag`` then ``char`` repeated, padded with ASCII to exactly ``size``
    UTF-8 bytes; ``straddle`` puts a single ``char`` last, across the byte boundary."""
    width = len(char.encode())
    room = size - len(tag)
    if straddle:
        name = tag + "a" * (room - width) + char
    else:
        name = tag + char * (room // width) + "a" * (room % width)
    assert len(name.encode()) == size, (name, size)
    return name


def raw_body(key: Any, fields: list[Any]) -> bytes:
    """Hand-packed signed transaction; ``fields`` are packed as given (may be invalid)."""
    return sign_body(key, fields)


def fields(chain: LiveChain, method: str, args: list[Any], **over: Any) -> list[Any]:
    f = {
        "version": 0, "chain_id": CHAIN, "group_id": GROUP, "nonce": secrets.token_hex(16),
        "block_limit": chain.height(0) + 500, "to": DAG, "method": method, "args": args,
    }  # fmt: skip
    f.update(over)
    return list(f.values())


# -- conflicting nonces -----------------------------------------------------------------


@pytest.mark.parametrize("ways", [2, 4], ids=["two pairs", "four ways"])
def test_same_nonce_to_different_nodes_at_once(chain: LiveChain, ways: int) -> None:
    nonce = secrets.token_hex(16)
    rivals = [chain.tx("userSave", [f"r{k}{nonce[:6]}", 3 + k], nonce=nonce) for k in range(ways)]
    answers = send_at_once(chain, *rivals)
    for i, a in answers.items():
        mine = rivals[i % ways]
        # its own tx, or already known by gossip, or the rival got there first
        held = a.get("result") == mine.hash or code_of(a) == ALREADY_KNOWN
        assert held or code_of(a) == NONCE_CHECK_FAIL, (i, a)
    budget = 2 * chain.consensus_timeout()
    chain.assert_live(f"after one nonce went {ways} ways to the nodes at once")

    def one_committed() -> bool:
        got = [t for t in rivals if all(chain.receipt(i, t.hash) for i in range(chain.n))]
        assert len(got) <= 1, "two transactions of one nonce committed"
        return len(got) == 1

    wait_for(one_committed, budget, "exactly one of the same-nonce pair to commit", chain)


# -- DagTransfer names at every UTF-8 byte boundary --------------------------------------


@pytest.mark.parametrize("char", ["é", "€", "😀"], ids=["2-byte", "3-byte", "4-byte"])
def test_user_names_at_the_byte_limit(chain: LiveChain, char: str) -> None:
    limit = MAX_ARG_BYTES
    tag = secrets.token_hex(2)
    fits = [utf8_name(char, limit - 1, tag + "a"), utf8_name(char, limit, tag + "b"),
            utf8_name(char, limit, tag + "c", straddle=True)]  # fmt: skip
    over = [utf8_name(char, limit + 1, tag + "d"),
            utf8_name(char, limit + 1, tag + "e", straddle=True)]  # fmt: skip
    before = chain.assert_same_head()

    refused: list[str] = []
    for name in over:
        for method, args in (
            ("userAdd", [name, 5]),
            ("userSave", [name, 5]),
            ("userDraw", [name, 1]),
            ("userTransfer", [fits[0], name, 1]),
            ("userTransfer", [name, fits[0], 1]),
        ):
            tx = chain.tx(method, args)
            assert_refused(
                chain, chain.send(1, tx), MALFORMED, f"{method} of {len(name.encode())} B"
            )
            refused.append(tx.hash)
        # the read-only door has the same limit: an out-of-range param
        answer = chain.rpc(2, "call", {"to": "0x5002", "method": "userBalance", "args": [name]})
        assert_refused(chain, answer, INVALID_PARAMS, "call userBalance over the limit")
    assert_unchanged(chain, before)
    assert_nowhere(chain, refused)

    txs = [chain.tx("userAdd", [name, 5]) for name in fits]
    for k, tx in enumerate(txs):
        chain.send_ok(k % chain.n, tx)
    receipts = chain.wait_committed([t.hash for t in txs], 2 * chain.consensus_timeout(), "names")
    assert [status_of(r) for r in receipts.values()] == [OK] * len(txs), receipts
    for i in range(chain.n):
        for name in fits:
            assert chain.balance(i, name) == (0, 5), (i, len(name.encode()))
    chain.assert_live(f"after {char!r} names at {limit - 1}..{limit + 1} bytes")


@pytest.mark.parametrize("field", ["nonce", "method", "chain_id", "group_id"])
def test_name_fields_at_the_byte_limit(chain: LiveChain, field: str) -> None:
    limit = MAX_NAME_BYTES
    index = {"chain_id": 1, "group_id": 2, "nonce": 3, "method": 6}[field]
    accepted, refused = [], []
    before = chain.assert_same_head()
    over_txs = []
    for char in ("é", "€", "😀"):
        tag = secrets.token_hex(2)
        for size in (limit - 1, limit, limit + 1):
            value = utf8_name(char, size, tag + str(size % 10))
            f = fields(chain, "userSave", [f"u{tag}", u256(1)])
            f[index] = value
            tx = Sent(raw_body(chain.key, f), f[3])
            (accepted if size <= limit else over_txs).append(tx)
    for tx in over_txs:  # over the limit: never decodes
        assert_refused(chain, chain.send(0, tx), MALFORMED, f"{field} over {limit} bytes")
        refused.append(tx.hash)
    if field in ("chain_id", "group_id"):  # within the limit but not ours
        code = INVALID_CHAIN_ID if field == "chain_id" else INVALID_GROUP_ID
        for tx in accepted:
            assert_refused(chain, chain.send(1, tx), code, f"foreign {field}")
            refused.append(tx.hash)
        accepted = []
    assert_unchanged(chain, before)
    assert_nowhere(chain, refused)
    for k, tx in enumerate(accepted):
        chain.send_ok(k % chain.n, tx)
    receipts = chain.wait_committed(
        [t.hash for t in accepted], 2 * chain.consensus_timeout(), f"{field} at the limit"
    )
    want = UNKNOWN_FUNCTION if field == "method" else OK
    assert [status_of(r) for r in receipts.values()] == [want] * len(accepted), receipts
    chain.assert_live(f"after {field} values at {limit - 1}..{limit + 1} bytes")


# -- argument count, types and size -----------------------------------------------------


def test_maximal_and_excess_arguments(chain: LiveChain) -> None:
    big = "€" * (MAX_ARG_BYTES // 3) + "a" * (MAX_ARG_BYTES % 3)
    assert len(big.encode()) == MAX_ARG_BYTES
    before = chain.assert_same_head()
    refused = []
    bad = {
        f"{MAX_ARGS + 1} args": [big] * (MAX_ARGS + 1),
        "a float": ["u", 1.5],
        "nil": ["u", None],
        "a bool": ["u", True],
        "a map": ["u", {"a": 1}],
        "a msgpack int amount": ["u", 5],
        "a negative int": ["u", -1],
        "a 31-byte amount": ["u", bytes(31)],
        "a 33-byte amount (2**256)": ["u", (2**256).to_bytes(33, "big")],
        "an empty bin": ["u", b""],
        "a nested list": ["u", [u256(1)]],
    }
    for what, args in bad.items():
        tx = Sent(raw_body(chain.key, fields(chain, "userSave", args)), "")
        assert_refused(chain, chain.send(0, tx), MALFORMED, what)
        refused.append(tx.hash)
    # a raw transaction over the size limit
    pad = "p" * (MAX_TX_SIZE + 100)
    tx = Sent(raw_body(chain.key, fields(chain, "userSave", [pad, u256(1)])), "")
    assert len(tx.raw) > MAX_TX_SIZE
    assert_refused(chain, chain.send(0, tx), MALFORMED, "a transaction over the size limit")
    refused.append(tx.hash)
    assert_unchanged(chain, before)
    assert_nowhere(chain, refused)

    # 16 arguments of the maximal size: admitted, executed, refused by the precompile
    maximal = chain.tx("userAdd", [big] * MAX_ARGS)
    assert len(maximal.raw) <= MAX_TX_SIZE
    chain.send_ok(1, maximal)
    rc = chain.wait_committed([maximal.hash], 2 * chain.consensus_timeout(), "16 args")
    assert status_of(rc[maximal.hash]) == PRECOMPILED_ERROR, rc
    chain.assert_live("after maximal and excess arguments")


# -- amounts at the uint256 boundaries ---------------------------------------------------


def test_boundary_amounts(chain: LiveChain) -> None:
    tag = secrets.token_hex(3)
    zero, one, top = f"zero{tag}", f"one{tag}", f"top{tag}"
    budget = 2 * chain.consensus_timeout()
    steps: list[tuple[str, list[Any], int]] = [
        ("userAdd", [zero, 0], OK),
        ("userAdd", [one, 1], OK),
        ("userAdd", [top, UINT256_MAX], OK),
        ("userAdd", [one, 5], USER_ALREADY_EXIST),
        ("userSave", [top, 1], BALANCE_OVERFLOW),
        ("userTransfer", [one, top, 1], BALANCE_OVERFLOW),
        ("userSave", [one, 0], INVALID_AMOUNT),
        ("userDraw", [one, 0], INVALID_AMOUNT),
        ("userTransfer", [one, zero, 0], INVALID_AMOUNT),
        ("userDraw", [one, 2], INSUFFICIENT_BALANCE),
        ("userTransfer", [zero, one, 1], INSUFFICIENT_BALANCE),
        ("userDraw", [f"nobody{tag}", 1], USER_NOT_EXIST),
        ("userTransfer", [one, one, 1], OK),
        ("userDraw", [top, UINT256_MAX], OK),
        ("userSave", [top, UINT256_MAX], OK),
    ]
    txs = [chain.tx(m, a) for m, a, _ in steps]
    answers = chain.send_batch(0, [t.raw for t in txs])  # one batch: arrival order kept
    assert [a.get("result") for a in answers] == [t.hash for t in txs], answers
    receipts = chain.wait_committed([t.hash for t in txs], budget, "boundary amounts")
    got = [(m, status_of(receipts[t.hash])) for (m, _, _), t in zip(steps, txs, strict=True)]
    assert got == [(m, want) for m, _, want in steps], got
    for i in range(chain.n):
        assert chain.balance(i, zero) == (0, 0)
        assert chain.balance(i, one) == (0, 1)
        assert chain.balance(i, top) == (0, UINT256_MAX)
    chain.assert_live("after boundary amounts")


# -- replays ------------------------------------------------------------------------------


def test_replays_of_committed_and_in_flight_txs_while_blocks_commit(chain: LiveChain) -> None:
    budget = 2 * chain.consensus_timeout()
    total_before = int(chain.result(0, "getTotalTransactionCount")["txSum"], 16)
    with background_load(chain) as accepted:
        t = chain.tx("userSave", [f"replay{secrets.token_hex(3)}", 1])
        chain.send_ok(0, t)
        first = chain.wait_committed([t.hash], budget, "the original")[t.hash]
        twin = chain.tx("userSave", ["someone-else", 2], nonce=t.nonce)  # same nonce, new body
        deadline = time.monotonic() + 3.0
        rounds = 0
        while time.monotonic() < deadline:
            for i in range(chain.n):
                assert_refused(chain, chain.send(i, t), ALREADY_IN_CHAIN, f"replay to node{i}")
                assert_refused(chain, chain.send(i, twin), NONCE_CHECK_FAIL, f"twin to node{i}")
            rounds += 1
        # replays of a tx still in flight: the same hash, AlreadyKnown, then AlreadyInChain
        u = chain.tx("userSave", [f"inflight{secrets.token_hex(3)}", 1])
        chain.send_ok(1, u)
        seen: set[int] = set()
        deadline = time.monotonic() + budget
        while len(seen) < chain.n and time.monotonic() < deadline:
            for i in range(chain.n):
                committed = chain.receipt(i, u.hash) is not None
                answer = chain.send(i, u)
                if committed:
                    assert_refused(chain, answer, ALREADY_IN_CHAIN, f"in-flight replay, node{i}")
                    seen.add(i)
                else:
                    assert answer.get("result") == u.hash or code_of(answer) in (
                        ALREADY_KNOWN, ALREADY_IN_CHAIN,
                    ), answer  # fmt: skip
        assert len(seen) == chain.n, f"the in-flight tx committed only on {seen}"
    chain.wait_committed(list(accepted), budget, "the background load")
    for i in range(chain.n):
        rc = chain.receipt(i, t.hash)
        assert rc is not None and rc["blockNumber"] == first["blockNumber"], (i, rc)
        assert chain.result(i, "getTransactionByHash", twin.hash) is None
    total = int(chain.result(0, "getTotalTransactionCount")["txSum"], 16)
    assert total - total_before == len(accepted) + 2, "a replay was committed twice"
    assert rounds > 0
    chain.assert_live("after replays while blocks committed")


# -- bursts over the txpool capacity ---------------------------------------------------


def committed_totals(chain: LiveChain) -> list[int]:
    """Each node's count of committed txs (nodes may be a block apart)."""
    return [int(chain.result(i, "getTotalTransactionCount")["txSum"], 16) for i in range(chain.n)]


def burst(chain: LiveChain, i: int, count: int, answers: dict[int, list[Any]]) -> list[Sent]:
    head = chain.height(0)
    txs = [chain.tx("userSave", [f"burst{i}-{k % 30}", 1], head=head) for k in range(count)]
    answers[i] = chain.send_batch(i, [t.raw for t in txs])
    return txs


def check_burst(
    chain: LiveChain, txs: list[Sent], answers: list[Any], drained: int
) -> list[str]:
    """The admitted hashes; every other answer must be TxPoolIsFull. A batch is admitted
    a slice at a time, so blocks that commit meanwhile make room: the pool never holds
    more than POOL, so a burst gets at most POOL plus what ``drained`` (txs committed
    while it was admitted) took out."""
    ok = [t.hash for t, a in zip(txs, answers, strict=True) if a.get("result") == t.hash]
    for a in answers:
        if "result" not in a:
            assert_refused(chain, a, TXPOOL_IS_FULL, "a transaction over the pool limit")
    assert len(ok) <= POOL + drained, (len(ok), drained)
    return ok


def test_burst_over_the_pool_limit_to_one_node(chain: LiveChain) -> None:
    answers: dict[int, list[Any]] = {}
    before = min(committed_totals(chain))
    txs = burst(chain, 0, 3 * POOL, answers)
    ok = check_burst(chain, txs, answers[0], max(committed_totals(chain)) - before)
    assert 0 < len(ok) < len(txs), len(ok)
    chain.wait_committed(ok, 2 * chain.consensus_timeout(), "the admitted part of the burst")
    refused = [t.hash for t in txs if t.hash not in set(ok)]
    assert_nowhere(chain, random.sample(refused, 20))
    chain.assert_live("after a burst over the pool limit to node0")


def test_bursts_over_the_pool_limit_to_every_node_at_once(chain: LiveChain) -> None:
    answers: dict[int, list[Any]] = {}
    sent: dict[int, list[Sent]] = {}

    def run(i: int) -> None:
        sent[i] = burst(chain, i, 2 * POOL, answers)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(chain.n)]
    before = min(committed_totals(chain))
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    drained = max(committed_totals(chain)) - before
    ok: list[str] = []
    for i in range(chain.n):  # a node's pool may be full of its peers' gossip already
        ok += check_burst(chain, sent[i], answers[i], drained)
    assert 0 < len(ok) < sum(len(t) for t in sent.values()), len(ok)
    # every admitted transaction commits (FISCO: it stays until committed or expired)
    chain.wait_committed(ok, 4 * chain.consensus_timeout(), f"{len(ok)} admitted burst txs")
    chain.assert_live("after bursts over the pool limit to every node at once")


# -- garbage on the JSON-RPC door ---------------------------------------------------------


def http_exchange(port: int, data: bytes, *, stream: bytes = b"", timeout: float = 10.0) -> Any:
    """Send raw bytes (``stream`` from a second thread, so a server that answers
    early is seen); ``(status, headers, JSON body)`` of the answer, or None if none."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(data)
        if stream:

            def feed() -> None:
                with contextlib.suppress(OSError):
                    sock.sendall(stream)

            threading.Thread(target=feed, daemon=True).start()
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                return None if not buf else _parse(buf)
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return _parse(head + b"\r\n\r\n" + body)
    finally:
        sock.close()


def _parse(buf: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return status, headers, strict_json(body) if body else None


def strict_json(body: bytes) -> Any:
    """The answer must itself be strict JSON (no NaN/Infinity)."""

    def bad(name: str) -> Any:
        raise AssertionError(f"non-JSON constant {name} in an answer")

    return json.loads(body, parse_constant=bad)


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def rq(method: Any, params: Any = None, **kw: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        d["params"] = params
    d.update(kw)
    return d


J = json.dumps
BLOCK = "getBlockByNumber"
SEND = "sendRawTransaction"
CALL_ARGS = {"to": "0x5002", "method": "userBalance"}
# (case id, body, expected JSON-RPC error code)
JSON_CASES: list[tuple[str, bytes, int | tuple[int, int]]] = [
    ("truncated JSON", b'{"jsonrpc":"2.0","id":1,"method":"getBlockNumber"', PARSE_ERROR),
    ("not UTF-8", b'{"jsonrpc":"2.0","id":1,"method":"\xff\xfe","params":[]}', PARSE_ERROR),
    ("BOM", b"\xef\xbb\xbf" + J(rq("getBlockNumber", [GROUP])).encode(), PARSE_ERROR),
    ("NaN", b'{"jsonrpc":"2.0","id":1,"method":"getBlockNumber","params":[NaN]}', PARSE_ERROR),
    ("Infinity id", b'{"jsonrpc":"2.0","id":Infinity,"method":"getBlockNumber"}', PARSE_ERROR),
    ("empty body", b"", PARSE_ERROR),
    ("empty batch", b"[]", INVALID_REQUEST),
    ("a string", b'"getBlockNumber"', INVALID_REQUEST),
    ("jsonrpc 1.0", J(rq("getBlockNumber", [GROUP], jsonrpc="1.0")).encode(), INVALID_REQUEST),
    ("method a number", J(rq(5, [GROUP])).encode(), INVALID_REQUEST),
    ("id an object", J(rq("getBlockNumber", [GROUP], id={"a": 1})).encode(), INVALID_REQUEST),
    ("params a string", J(rq("getBlockNumber", "group0")).encode(), INVALID_REQUEST),
    ("named params", J(rq("getBlockNumber", {"group": GROUP})).encode(), INVALID_PARAMS),
    ("unknown method", J(rq("eth_sendTransaction", [GROUP])).encode(), METHOD_NOT_FOUND),
    ("no params", J(rq("getBlockNumber")).encode(), INVALID_PARAMS),
    ("group true", J(rq("getBlockNumber", [True])).encode(), INVALID_PARAMS),
    ("group a float", J(rq("getBlockNumber", [1.5])).encode(), INVALID_PARAMS),
    ("group 1e400", b'{"jsonrpc":"2.0","id":1,"method":"getBlockNumber","params":[1e400]}',
     INVALID_PARAMS),
    ("unknown group", J(rq("getBlockNumber", ["group9"])).encode(), GROUP_NOT_FOUND),
    ("group a lone surrogate", b'{"jsonrpc":"2.0","id":1,"method":"getBlockNumber",'
     b'"params":["\\ud800"]}', (GROUP_NOT_FOUND, INVALID_PARAMS)),
    ("block -1", J(rq(BLOCK, [GROUP, -1])).encode(), INVALID_PARAMS),
    ("block 2**63", J(rq(BLOCK, [GROUP, 2**63])).encode(), INVALID_PARAMS),
    ("block 2**64 hex", J(rq(BLOCK, [GROUP, hex(2**64)])).encode(), INVALID_PARAMS),
    ("block true", J(rq(BLOCK, [GROUP, True])).encode(), INVALID_PARAMS),
    ("block 1.0", J(rq(BLOCK, [GROUP, 1.0])).encode(), INVALID_PARAMS),
    ("block 5000 digits", f'{{"jsonrpc":"2.0","id":1,"method":"{BLOCK}",'
     f'"params":["group0",{"9" * 5000}]}}'.encode(), INVALID_PARAMS),
    ("id 1e400", b'{"jsonrpc":"2.0","id":1e400,"method":"getBlockNumber","params":["group0"]}',
     INVALID_REQUEST),
    ("flag 1", J(rq(BLOCK, [GROUP, "latest", 1])).encode(), INVALID_PARAMS),
    ("raw tx non-hex", J(rq(SEND, [GROUP, "0xzz"])).encode(), INVALID_PARAMS),
    ("raw tx no prefix", J(rq(SEND, [GROUP, "abcd"])).encode(), INVALID_PARAMS),
    ("raw tx odd length", J(rq(SEND, [GROUP, "0xabc"])).encode(), INVALID_PARAMS),
    ("raw tx with a space", J(rq(SEND, [GROUP, "0x ab"])).encode(), INVALID_PARAMS),
    ("raw tx a number", J(rq(SEND, [GROUP, 12])).encode(), INVALID_PARAMS),
    ("raw tx missing", J(rq(SEND, [GROUP])).encode(), INVALID_PARAMS),
    ("raw tx extra param", J(rq(SEND, [GROUP, "0x00", "0x00"])).encode(), INVALID_PARAMS),
    ("raw tx empty", J(rq(SEND, [GROUP, "0x"])).encode(), MALFORMED),
    ("raw tx one byte", J(rq(SEND, [GROUP, "0x99"])).encode(), MALFORMED),
    ("raw tx 16 KiB zeros", J(rq(SEND, [GROUP, "0x" + "00" * 16384])).encode(), MALFORMED),
    ("hash 31 bytes", J(rq("getTransactionByHash", [GROUP, "0x" + "ab" * 31])).encode(),
     INVALID_PARAMS),
    ("call not an object", J(rq("call", [GROUP, "0x5002"])).encode(), INVALID_PARAMS),
    ("call address 21 bytes", J(rq("call", [GROUP, {**CALL_ARGS, "to": "0x" + "11" * 21,
     "args": ["a"]}])).encode(), INVALID_PARAMS),
    ("call lone surrogate arg", b'{"jsonrpc":"2.0","id":1,"method":"call","params":["group0",'
     b'{"to":"0x5002","method":"userBalance","args":["\\udfff"]}]}', INVALID_PARAMS),
    ("call uint256 overflow", J(rq("call", [GROUP, {**CALL_ARGS, "method": "userSave",
     "args": ["a", 2**256]}])).encode(), INVALID_PARAMS),
    ("call negative", J(rq("call", [GROUP, {**CALL_ARGS, "method": "userSave",
     "args": ["a", -1]}])).encode(), INVALID_PARAMS),
    ("call float arg", J(rq("call", [GROUP, {**CALL_ARGS, "args": [1.5]}])).encode(),
     INVALID_PARAMS),
    ("call 17 args", J(rq("call", [GROUP, {**CALL_ARGS, "args": ["a"] * 17}])).encode(),
     INVALID_PARAMS),
    ("call data garbage", J(rq("call", [GROUP, {"to": "0x5002", "data": "0xc1c1"}])).encode(),
     INVALID_PARAMS),
    ("system config key 10 KB", J(rq("getSystemConfigByKey", [GROUP, "k" * 10000])).encode(),
     INVALID_PARAMS),
    ("batch over 20,000", b"[" + b",".join([b"1"] * 20_001) + b"]", BATCH_TOO_LARGE),
]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "code"), [c[1:] for c in JSON_CASES], ids=[c[0] for c in JSON_CASES]
)
def test_malformed_json_rpc(chain: LiveChain, body: bytes, code: int | tuple[int, int]) -> None:
    before = chain.assert_same_head()
    status, _, answer = http_exchange(chain.rpc_ports[0], post("/", body))
    assert status == 200, (status, answer)
    assert isinstance(answer, dict), answer
    assert answer.get("jsonrpc") == "2.0" and "result" not in answer, answer
    what = body[:80].decode(errors="replace")
    if code == INVALID_PARAMS:  # a request that parsed: its id is echoed
        assert answer.get("id") == 1, answer
    if isinstance(code, tuple):  # the docs allow either reading
        assert code_of(answer) in code, (what, answer)
    else:
        assert_refused(chain, answer, code, what)
    assert_unchanged(chain, before)
    chain.assert_live(f"after {body[:60]!r}")


def test_batch_abuse(chain: LiveChain) -> None:
    before = chain.assert_same_head()
    port = chain.rpc_ports[1]
    # items that are not requests, nested batches, notifications, duplicates, garbage txs
    good = rq("getBlockNumber", [GROUP], id=7)
    items: list[Any] = [1, "x", None, [good], {}, good, {"jsonrpc": "2.0", "method": "x"}]
    items += [rq(SEND, [GROUP, "0x" + secrets.token_hex(40)], id=100 + k) for k in range(2000)]
    status, _, answer = http_exchange(port, post("/", J(items).encode()), timeout=30)
    assert status == 200 and isinstance(answer, list), (status, str(answer)[:200])
    # the notification (no id) gets no answer; everything else in order
    assert len(answer) == len(items) - 1, len(answer)
    assert [code_of(a) for a in answer[:5]] == [INVALID_REQUEST] * 5, answer[:5]
    assert answer[5] == {"jsonrpc": "2.0", "id": 7, "result": hex(before[0])}, answer[5]
    assert {code_of(a) for a in answer[6:]} == {MALFORMED}, {code_of(a) for a in answer[6:]}
    # only notifications: 204, no body
    notes = [{"jsonrpc": "2.0", "method": "getBlockNumber", "params": [GROUP]}] * 1000
    status, _, answer = http_exchange(port, post("/", J(notes).encode()))
    assert (status, answer) == (204, None)
    # a batch of exactly 20,000 is served
    status, _, answer = http_exchange(
        port, post("/", J([rq("getPbftView", [GROUP], id=k) for k in range(20_000)]).encode()),
        timeout=60,
    )  # fmt: skip
    assert status == 200 and len(answer) == 20_000 and "result" in answer[-1]
    # deeply nested arrays: refused, not a crash
    deep = b"[" * 100_000 + b"]" * 100_000
    status, _, answer = http_exchange(port, post("/", deep))
    assert status in (200, 413), status
    assert code_of(answer) in (PARSE_ERROR, INVALID_REQUEST, REQUEST_TOO_LARGE), answer
    assert_unchanged(chain, before)
    chain.assert_live("after batch abuse")


HUGE = 8 * 1024 * 1024 + 1
# (case id, request bytes, body streamed afterwards, HTTP status, JSON-RPC code)
HTTP_CASES: list[tuple[str, bytes, bytes, int, int]] = [
    ("body over 8 MiB", f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {HUGE}\r\n\r\n".encode(),
     b"[" * HUGE, 413, REQUEST_TOO_LARGE),
    ("head over 32 KiB", b"POST / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 40_000
     + b"\r\nContent-Length: 2\r\n\r\n{}", b"", 431, REQUEST_TOO_LARGE),
    ("chunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
     b"\r\n", b"", 411, INVALID_REQUEST),
    ("no length", b"POST / HTTP/1.1\r\nHost: x\r\n\r\n{}", b"", 411, INVALID_REQUEST),
    ("bad length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n{}", b"", 400,
     INVALID_REQUEST),
    ("negative length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}", b"", 400,
     INVALID_REQUEST),
    ("conflicting lengths", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
     b"Content-Length: 3\r\n\r\n{}", b"", 400, INVALID_REQUEST),
    ("unknown path", post("/admin", b"{}"), b"", 404, METHOD_NOT_FOUND),
    ("PUT", b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", b"", 405,
     INVALID_REQUEST),
    ("HTTP/9.9", b"POST / HTTP/9.9\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", b"", 505,
     INVALID_REQUEST),
    ("Expect: teapot", b"POST / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 2\r\n"
     b"\r\n{}", b"", 417, INVALID_REQUEST),
    ("not HTTP", os.urandom(512).replace(b"\r\n", b"..") + b"\r\n\r\n", b"", 400,
     INVALID_REQUEST),
]  # fmt: skip


@pytest.mark.parametrize(
    ("request_bytes", "stream", "status", "code"),
    [c[1:] for c in HTTP_CASES],
    ids=[c[0] for c in HTTP_CASES],
)
def test_http_framing_abuse(
    chain: LiveChain, request_bytes: bytes, stream: bytes, status: int, code: int
) -> None:
    before = chain.assert_same_head()
    answer = http_exchange(chain.rpc_ports[2], request_bytes, stream=stream)
    assert answer is not None, "no HTTP answer at all"
    got_status, headers, body = answer
    assert got_status == status, (got_status, body)
    assert isinstance(body, dict) and body.get("id", "missing") is None, body
    assert_refused(chain, body, code, f"HTTP {status}")
    if status == 405:
        assert headers.get("allow") == "GET, POST", headers
    assert_unchanged(chain, before)
    chain.assert_live(f"after an HTTP {status} request")


def test_connection_flood_on_the_rpc_port(chain: LiveChain) -> None:
    before = chain.assert_same_head()
    port = chain.rpc_ports[3]
    idle = []
    try:
        for _ in range(520):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        answer = http_exchange(port, post("/", J(rq("getBlockNumber", [GROUP])).encode()))
        assert answer is not None, "no answer past the connection limit"
        status, _, body = answer
        # the idle connection that made the least progress is closed to make room
        assert status == 200 and "result" in body, (status, body)
    finally:
        for s in idle:
            s.close()
    wait_for(lambda: chain.height(3) >= before[0], 5.0, "node3's RPC door to serve again", chain)
    chain.assert_live("after a connection flood on the RPC port")


# -- garbage on the P2P port ---------------------------------------------------------------


def client_hello() -> bytes:
    """The bytes of a real TLS ClientHello (a memory BIO handshake that stops there)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="node")
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def drain(sock: socket.socket, seconds: float = 2.0) -> None:
    sock.settimeout(seconds)
    with contextlib.suppress(OSError):
        while sock.recv(65536):
            pass


def frame(kind: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + bytes([kind]) + payload


def tls_to(port: int, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="node")


def tls_client(cert_dir: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert_dir / "node.crt", cert_dir / "node.key")
    return ctx


def p2p_random_bytes(chain: LiveChain, tmp: Path) -> None:
    with socket.create_connection(("127.0.0.1", chain.p2p_ports[0]), timeout=5) as s:
        with contextlib.suppress(OSError):
            s.sendall(os.urandom(256 * 1024))
        drain(s)


def p2p_hello_then_garbage(chain: LiveChain, tmp: Path) -> None:
    with socket.create_connection(("127.0.0.1", chain.p2p_ports[1]), timeout=5) as s:
        s.sendall(client_hello())
        time.sleep(0.1)
        with contextlib.suppress(OSError):
            s.sendall(os.urandom(64 * 1024))
        drain(s)


def p2p_foreign_ca(chain: LiveChain, tmp: Path) -> None:
    from node.transport.pki import generate_agency, generate_chain_ca, generate_node

    generate_chain_ca(tmp / "ca", chain_name="evil")
    generate_agency(tmp / "ca", tmp / "agency")
    generate_node(tmp / "agency", tmp / "node", name="evil")
    with contextlib.suppress(OSError), tls_to(chain.p2p_ports[2], tls_client(tmp / "node")) as s:
        s.sendall(frame(1, os.urandom(100)) + os.urandom(4096))
        drain(s)


def p2p_not_a_member(chain: LiveChain, tmp: Path) -> None:
    """Certified by the chain's own agency, but in no genesis list."""
    from node.transport.pki import generate_node

    generate_node(chain.root / "agency", tmp / "node", name="intruder")
    with contextlib.suppress(OSError), tls_to(chain.p2p_ports[3], tls_client(tmp / "node")) as s:
        s.sendall(frame(2, os.urandom(1000)) + frame(7, b"") + os.urandom(512))
        drain(s)


def p2p_member_sends_garbage(chain: LiveChain, tmp: Path) -> None:
    """With node3's own credentials: a correct HELLO, then DATA frames that are garbage
    for the layer above, then a frame of an unknown type."""
    conf = chain.root / "node3" / "conf"
    node_id = bytes.fromhex((conf / "node.nodeid").read_text().strip())
    genesis = bytes.fromhex(chain.result(0, "getSyncStatus")["genesisHash"][2:])
    hello = msgpack.packb([1, node_id, genesis, os.urandom(8)], use_bin_type=True)
    junk = [
        os.urandom(64),
        b"",
        msgpack.packb([0, 1, 2, 3]),
        msgpack.packb([1, [os.urandom(32)] * 1000]),
        msgpack.packb([99, b"x"]),
        b"\x91" + b"\xdd\xff\xff\xff\xff",  # an array that claims 4 G items
    ]
    with contextlib.suppress(OSError), tls_to(chain.p2p_ports[0], tls_client(conf)) as s:
        s.sendall(frame(1, hello))
        time.sleep(0.2)
        for _ in range(20):
            s.sendall(b"".join(frame(2, j) for j in junk))
        s.sendall(frame(9, b"bye"))
        drain(s)


def p2p_half_open_flood(chain: LiveChain, tmp: Path) -> None:
    """100 connections that never finish a handshake, held while a transfer commits."""
    socks = []
    try:
        for port in chain.p2p_ports:
            for _ in range(25):
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        chain.assert_live("while 100 half-open connections sit on the P2P ports")
    finally:
        for s in socks:
            s.close()


P2P_CASES = {
    "random bytes": p2p_random_bytes,
    "TLS hello then garbage": p2p_hello_then_garbage,
    "certificate of another chain": p2p_foreign_ca,
    "agency-certified non-member": p2p_not_a_member,
    "member credentials, garbage frames": p2p_member_sends_garbage,
    "half-open flood": p2p_half_open_flood,
}


@pytest.mark.parametrize("case", list(P2P_CASES), ids=list(P2P_CASES))
def test_garbage_on_the_p2p_port(chain: LiveChain, case: str, tmp_path: Path) -> None:
    before = chain.assert_same_head()
    P2P_CASES[case](chain, tmp_path)
    if case != "half-open flood":
        assert_unchanged(chain, before)
    chain.wait_peers()
    chain.assert_live(f"after {case} on the P2P port")


# -- truncated and mutated transactions ----------------------------------------------------


def test_truncated_and_non_canonical_transactions(chain: LiveChain) -> None:
    before = chain.assert_same_head()
    good = chain.tx("userSave", [f"mut{secrets.token_hex(3)}", 7])
    raw = good.raw
    sig = raw[-65:]
    r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
    high_s = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([v ^ 1])
    f = fields(chain, "userSave", [f"mut{secrets.token_hex(3)}", u256(7)])
    body = msgpack.packb(f, use_bin_type=True)

    def resign(b: bytes) -> bytes:  # a body packed by hand, signed as it is
        assert b != body, "the mutation did not apply"
        return b"\x99" + b[1:] + b"\xc4\x41" + chain.key.sign(hash32(b))

    bl = f[4]
    cases: dict[str, tuple[bytes, int]] = {
        "trailing byte": (raw + b"\x00", MALFORMED),
        "unsigned body only": (body, MALFORMED),
        "array of 10": (b"\x9a" + raw[1:] + b"\xc0", MALFORMED),
        "version 1": (resign(msgpack.packb([1, *f[1:]], use_bin_type=True)), MALFORMED),
        "block_limit as uint32": (
            resign(body.replace(b"\xcd" + bl.to_bytes(2, "big"), b"\xce" + bl.to_bytes(4, "big"))),
            MALFORMED,
        ),
        "chain id as str8": (resign(body.replace(b"\xa6chain0", b"\xd9\x06chain0", 1)), MALFORMED),
        "to as bin16": (resign(body.replace(b"\xc4\x14" + DAG, b"\xc5\x00\x14" + DAG)), MALFORMED),
        "nonce not UTF-8": (resign(body.replace(f[3].encode(), b"\xff" * 32, 1)), MALFORMED),
        "to of 19 bytes": (resign(msgpack.packb([*f[:5], DAG[1:], *f[6:]], use_bin_type=True)),
                           MALFORMED),
        "signature 64 bytes": (raw[:-67] + b"\xc4\x40" + sig[:64], MALFORMED),
        "high-s signature": (raw[:-65] + high_s, INVALID_SIGNATURE),
        "v = 4": (raw[:-1] + b"\x04", INVALID_SIGNATURE),
        "r = 0": (raw[:-65] + bytes(32) + sig[32:], INVALID_SIGNATURE),
        "zero signature": (raw[:-65] + bytes(65), INVALID_SIGNATURE),
    }  # fmt: skip
    assert r and 0 < s <= SECP256K1_N // 2
    refused = []
    for what, (bad, code) in cases.items():
        assert_refused(chain, chain.send(0, bad), code, what)
        refused.append("0x" + hash32(bad).hex())
    prefixes = [raw[:k] for k in range(len(raw))]
    answers = chain.send_batch(1, prefixes)
    assert {code_of(a) for a in answers} == {MALFORMED}, {code_of(a) for a in answers}
    refused += ["0x" + hash32(p).hex() for p in prefixes]
    assert_unchanged(chain, before)
    assert_nowhere(chain, refused)
    # the original is still fine afterwards
    chain.send_ok(2, good)
    chain.wait_committed([good.hash], 2 * chain.consensus_timeout(), "the unmutated original")
    chain.assert_live("after truncated and non-canonical transactions")


def test_random_bit_flips_of_a_valid_transaction(chain: LiveChain) -> None:
    """A flipped bit may still be a valid transaction (ECDSA recovery then names some
    other sender); each answer must be a hash or a typed txpool error, and whatever was
    admitted must commit identically everywhere."""
    good = chain.tx("userTransfer", [f"flip{secrets.token_hex(3)}", "other", 1])
    rng = random.Random(9)
    mutants = []
    for pos in range(len(good.raw)):
        b = bytearray(good.raw)
        b[pos] ^= 1 << rng.randrange(8)
        mutants.append(bytes(b))
    answers = chain.send_batch(3, mutants)
    admitted = []
    for m, a in zip(mutants, answers, strict=True):
        if "result" in a:
            assert a["result"] == "0x" + hash32(m).hex(), a
            admitted.append(a["result"])
        else:  # a typed refusal; Quarantined would mean executing one raised a node bug
            assert code_of(a) in TXPOOL_CODES - {QUARANTINED}, a
    chain.wait_committed(admitted, 2 * chain.consensus_timeout(), "admitted mutants")
    chain.assert_live(f"after {len(mutants)} bit-flipped transactions ({len(admitted)} admitted)")


# -- more documented promises: block limits, batches, HTTP behaviour, reads -----------------


def test_block_limit_window(chain: LiveChain) -> None:
    """docs/wire-format.md: admitted while ``head < block_limit <= head + 1000``."""
    before = chain.assert_same_head()
    head = before[0]
    refused = []
    for limit in (0, head, head + 1001, 2**64 - 1):
        tx = chain.tx("userSave", [f"bl{secrets.token_hex(3)}", 1], block_limit=limit)
        assert_refused(chain, chain.send(0, tx), BLOCK_LIMIT_CHECK_FAIL, f"block_limit {limit}")
        refused.append(tx.hash)
    tx = Sent(raw_body(chain.key, fields(chain, "userSave", ["u", u256(1)], block_limit=-1)), "")
    assert_refused(chain, chain.send(0, tx), MALFORMED, "a negative block_limit")
    refused.append(tx.hash)
    assert_unchanged(chain, before)
    assert_nowhere(chain, refused)
    edge = [
        chain.tx("userSave", [f"bl{secrets.token_hex(3)}", 1], block_limit=limit)
        for limit in (head + 1, head + 1000)
    ]
    for k, tx in enumerate(edge):
        chain.send_ok(k, tx)
    chain.wait_committed([t.hash for t in edge], 2 * chain.consensus_timeout(), "edge limits")
    chain.assert_live("after block limits at the window's edges")


def test_transactions_that_fail_in_execution_change_nothing(chain: LiveChain) -> None:
    """A transaction to an address without a precompile, an unknown method, or a write
    method through the read-only ``call``: receipts with the documented status, or no
    effect at all, and the same state root on every node."""
    user = f"ro{secrets.token_hex(3)}"
    out = chain.result(0, "call", {"to": "0x5002", "method": "userAdd", "args": [user, 5]})
    assert int(out["status"], 16) == OK, out  # it ran ... on a scratch copy of the state
    for i in range(chain.n):
        assert chain.balance(i, user) == (USER_NOT_EXIST, None), i
    assert_unchanged(chain, chain.assert_same_head())
    txs = [
        (chain.tx("userSave", [user, 1], to=bytes(18) + b"\x12\x34"), CALL_ADDRESS_ERROR),
        (chain.tx("userSteal", [user, 1]), UNKNOWN_FUNCTION),
        (chain.tx("userSave", [user]), PRECOMPILED_ERROR),
        (chain.tx("userSave", [5, user]), PRECOMPILED_ERROR),
    ]
    for k, (tx, _) in enumerate(txs):
        chain.send_ok(k % chain.n, tx)
    receipts = chain.wait_committed(
        [t.hash for t, _ in txs], 2 * chain.consensus_timeout(), "failing transactions"
    )
    assert [status_of(receipts[t.hash]) for t, _ in txs] == [want for _, want in txs]
    for i in range(chain.n):
        assert chain.balance(i, user) == (USER_NOT_EXIST, None), i
    chain.assert_live("after transactions that fail in execution")


def test_batch_semantics(chain: LiveChain) -> None:
    """A read after a sendRawTransaction in the same batch sees it; the same tx twice is
    AlreadyKnown; a notification runs without an answer."""
    tx = chain.tx("userSave", [f"bat{secrets.token_hex(3)}", 2])
    note = chain.tx("userSave", [f"note{secrets.token_hex(3)}", 3])
    items = [
        rq(SEND, [GROUP, tx.hex], id="a"),
        rq("getTransactionByHash", [GROUP, tx.hash], id="b"),
        rq(SEND, [GROUP, tx.hex], id="c"),
        {"jsonrpc": "2.0", "method": SEND, "params": [GROUP, note.hex]},
        {"jsonrpc": "2.0", "method": SEND, "params": [GROUP, "0x99"]},
    ]
    status, _, answer = http_exchange(chain.rpc_ports[0], post("/", J(items).encode()))
    assert status == 200 and [a["id"] for a in answer] == ["a", "b", "c"], answer
    assert answer[0]["result"] == tx.hash
    assert answer[1]["result"]["hash"] == tx.hash and answer[1]["result"]["blockHash"] is None
    assert_refused(chain, answer[2], ALREADY_KNOWN, "the same tx twice in one batch")
    chain.wait_committed([tx.hash, note.hash], 2 * chain.consensus_timeout(), "batch txs")
    chain.assert_live("after batch semantics")


def read_all(sock: socket.socket) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (True) or goes quiet for 2 s (False)."""
    sock.settimeout(2.0)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    return data, True


def statuses(data: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)]


def test_pipelining_and_expect_continue(chain: LiveChain) -> None:
    port = chain.rpc_ports[1]
    ok = post("/", J(rq("getBlockNumber", [GROUP])).encode())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        # pipelined: answered in order; a JSON-RPC error (in a 200) keeps the connection
        s.sendall(ok + post("/", b"{") + ok + ok)
        data, closed = read_all(s)
    assert statuses(data) == [200, 200, 200, 200] and not closed, (data[-300:], closed)
    assert data.count(b'"code":-32700') == 1, data
    # Expect: 100-continue: the interim answer first, then the real one
    body = J(rq("getBlockNumber", [GROUP])).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            f"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        interim = s.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100"), interim
        s.sendall(body)
        data, _ = read_all(s)
        assert statuses(data) == [200], data
    # a body cut short, then the client goes away: nothing to answer, nothing broken
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"jsonrpc"')
    chain.assert_live("after pipelining, 100-continue and a cut-short body")


NON_2XX: dict[str, Any] = {
    "404 unknown path": post("/nope", b"{}"),
    "405 PUT": b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    "411 no length": b"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
    "413 too large": f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {HUGE}\r\n\r\n".encode(),
}


@pytest.mark.parametrize(
    ("case", "request_bytes"),
    [pytest.param(k, *(v.values if hasattr(v, "values") else (v,)),
                  marks=getattr(v, "marks", ()), id=k) for k, v in NON_2XX.items()],
)  # fmt: skip
def test_every_non_2xx_answer_closes_the_connection(
    chain: LiveChain, case: str, request_bytes: bytes
) -> None:
    """docs/rpc.md: "Every non-2xx answer carries a JSON-RPC error object with "id": null,
    then the server closes the connection" -- so a request pipelined behind it is not
    answered."""
    ok = post("/", J(rq("getBlockNumber", [GROUP])).encode())
    with socket.create_connection(("127.0.0.1", chain.rpc_ports[2]), timeout=10) as s:
        s.sendall(request_bytes + (b"" if case.startswith("413") else ok))
        data, closed = read_all(s)
    assert statuses(data)[:1] == [int(case[:3])], data[:300]
    assert closed and len(statuses(data)) == 1, (case, statuses(data), data[-200:])
    chain.assert_live(f"after a pipelined {case}")


def test_unknown_blocks_hashes_and_keys(chain: LiveChain) -> None:
    head = chain.assert_same_head()[0]
    cases = [
        (("getBlockByNumber", hex(head + 1000)), BLOCK_NUMBER_NOT_FOUND),
        (("getBlockHashByNumber", head + 1), BLOCK_NUMBER_NOT_FOUND),
        (("getBlockByHash", "0x" + "ab" * 32), BLOCK_HASH_NOT_FOUND),
        (("getSystemConfigByKey", "gas_limit"), INVALID_SYSTEM_CONFIG),
    ]
    for (method, *params), code in cases:
        assert_refused(chain, chain.rpc(3, method, *params), code, method)
    assert chain.result(3, "getTransactionByHash", "0x" + "cd" * 32) is None
    assert chain.result(3, "getTransactionReceipt", "0x" + "cd" * 32) is None
    chain.assert_live("after reads of unknown blocks, hashes and keys")


# -- the P2P refusals the docs name, seen in the node's counters ---------------------------


def disconnects(chain: LiveChain, i: int) -> dict[str, float]:
    """``ledgerlab_p2p_disconnects_total`` of node ``i`` by reason (GET /metrics)."""
    sock = socket.create_connection(("127.0.0.1", chain.rpc_ports[i]), timeout=10)
    try:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    finally:
        sock.close()
    out: dict[str, float] = {}
    for line in data.decode().splitlines():
        if line.startswith("ledgerlab_p2p_disconnects_total{"):
            labels, _, value = line.rpartition(" ")
            reason = labels.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = float(value)
    return out


def read_frames(s: ssl.SSLSocket, seconds: float = 3.0) -> list[tuple[int, bytes]]:
    """Frames the peer sends until it closes (or goes quiet)."""
    s.settimeout(seconds)
    buf = b""
    with contextlib.suppress(OSError):
        while chunk := s.recv(65536):
            buf += chunk
    out = []
    while len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[:4], "big"):
        n = int.from_bytes(buf[:4], "big")
        out.append((buf[4], buf[5 : 5 + n]))
        buf = buf[5 + n :]
    return out


def member_hello(chain: LiveChain, node: int, *, node_id: bytes | None = None,
                 genesis: bytes | None = None, version: int = 1) -> bytes:  # fmt: skip
    conf = chain.root / f"node{node}" / "conf"
    own = bytes.fromhex((conf / "node.nodeid").read_text().strip())
    ours = bytes.fromhex(chain.result(0, "getSyncStatus")["genesisHash"][2:])
    fields_ = [version, node_id or own, genesis or ours, os.urandom(8)]
    return frame(1, msgpack.packb(fields_, use_bin_type=True))


P2P_REFUSALS: dict[str, tuple[str, bool]] = {
    # case: (counter reason on the target, a CLOSE frame with the reason is promised)
    "not a member": ("not_member", True),
    "HELLO names another node": ("hello_mismatch", True),
    "HELLO from another genesis": ("genesis_mismatch", True),
    "frame over 16 MiB": ("frame_too_large", False),
    "unknown frame type": ("unknown_frame_type", False),
    "second HELLO": ("protocol", False),
}


@pytest.mark.parametrize("case", list(P2P_REFUSALS), ids=list(P2P_REFUSALS))
def test_p2p_refusals_are_counted_by_reason(chain: LiveChain, case: str, tmp_path: Path) -> None:
    reason, told = P2P_REFUSALS[case]
    target = 1
    before_head = chain.assert_same_head()
    before = disconnects(chain, target).get(reason, 0.0)
    if case == "not a member":
        from node.transport.pki import generate_node

        generate_node(chain.root / "agency", tmp_path / "node", name="intruder")
        conf = tmp_path / "node"
    else:
        conf = chain.root / "node3" / "conf"
    other = chain.root / "node2" / "conf" / "node.nodeid"
    first = {
        "not a member": b"",
        "HELLO names another node": member_hello(
            chain, 3, node_id=bytes.fromhex(other.read_text().strip())
        ),
        "HELLO from another genesis": member_hello(chain, 3, genesis=os.urandom(32)),
        "frame over 16 MiB": member_hello(chain, 3),
        "unknown frame type": member_hello(chain, 3),
        "second HELLO": member_hello(chain, 3),
    }[case]
    after_hello = {
        "frame over 16 MiB": (16 * 1024 * 1024 + 1).to_bytes(4, "big") + b"\x02",
        "unknown frame type": frame(200, b"x"),
        "second HELLO": member_hello(chain, 3),
    }.get(case, b"")
    with tls_to(chain.p2p_ports[target], tls_client(conf)) as s:
        # in one write: node3's own connection, which ours replaced, redials at once
        with contextlib.suppress(OSError):
            s.sendall(first + after_hello)
        got = read_frames(s)
    if told:
        closes = [payload for kind, payload in got if kind == 3]
        assert closes and closes[0], f"no CLOSE frame with a reason: {got}"
        closes[0].decode()  # UTF-8 reason
    wait_for(
        lambda: disconnects(chain, target).get(reason, 0.0) > before,
        5.0, f"ledgerlab_p2p_disconnects_total{{reason={reason!r}}} to count it", chain,
        lambda: f"{disconnects(chain, target)}",
    )  # fmt: skip
    assert_unchanged(chain, before_head)
    chain.wait_peers()
    chain.assert_live(f"after a P2P {case}")


# -- last: everything committed so far survives block sync and a restart ----------------


def test_sync_and_restart_with_every_kind_of_committed_tx(chain: LiveChain) -> None:
    """node3 is stopped while the odd-but-valid transactions commit (longest names of
    4-byte characters, 16 maximal args, a 64-byte emoji method and nonce, uint256 max,
    no precompile at ``to``); it must sync them, every block must render identically
    on every node, and the whole chain must come back after ``down`` / ``up``."""
    from tests.adversarial.harness import cli

    root = str(chain.root)
    res = cli("stop-node", "3", "--dir", root, cwd=chain.root.parent)
    assert res.returncode == 0, (res.stdout, res.stderr)
    tag = secrets.token_hex(2)
    big = "😀" * (MAX_ARG_BYTES // 4)
    emoji = "😀" * (MAX_NAME_BYTES // 4)
    txs = [
        chain.tx("userAdd", [utf8_name("😀", MAX_ARG_BYTES, tag), UINT256_MAX]),
        chain.tx("userAdd", [big] * MAX_ARGS),
        chain.tx(emoji, [big]),
        chain.tx("userSave", [f"n{tag}", 1], nonce=utf8_name("😀", MAX_NAME_BYTES, tag)),
        chain.tx("userSave", [f"t{tag}", 1], to=bytes(19) + b"\x01"),
    ]
    for k, tx in enumerate(txs):
        chain.send_ok(k % 3, tx)
    budget = 4 * chain.consensus_timeout()  # node3's turns as leader cost a view change

    def committed_on_three() -> bool:
        return all(chain.receipt(i, t.hash) for i in range(3) for t in txs)

    wait_for(committed_on_three, budget, "commits with node3 down", chain)
    res = cli("start-node", "3", "--dir", root, cwd=chain.root.parent)
    assert res.returncode == 0, (res.stdout, res.stderr)
    head = chain.assert_same_head(timeout=20.0)
    for number in range(1, head[0] + 1):
        blocks = [chain.result(i, "getBlockByNumber", hex(number), True) for i in range(chain.n)]
        for b in blocks:  # each node keeps the 2f+1 signatures it collected (its seal)
            seal = b.pop("signatureList")
            assert len({sig["index"] for sig in seal}) >= 3, (number, seal)
        for i, b in enumerate(blocks[1:], 1):
            diff = {k: (blocks[0].get(k), b.get(k)) for k in blocks[0].keys() | b.keys()
                    if blocks[0].get(k) != b.get(k)}  # fmt: skip
            assert not diff, f"block {number}: node0 and node{i} differ: {diff}"
    chain.down()
    chain.up()
    assert chain.assert_same_head() == head
    chain.assert_live("after sync of odd transactions and a restart of the whole chain")
