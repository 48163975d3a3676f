"""JSON-RPC 2.0 protocol behaviour of the dispatcher: envelopes, batches, ids, errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from consensus.crypto import KeyPair
from node.rpc import Dispatcher, ErrorCode, RpcError
from tests.rpc.conftest import NOTIFY, req, rpc
from tests.rpc.fakes import GROUP, Ledger, LedgerBackend

pytestmark = pytest.mark.asyncio


async def send(dispatcher: Dispatcher, payload: Any) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    out = await dispatcher.handle_bytes(body)
    return None if out is None else json.loads(out)


def assert_error(response: Any, code: int, request_id: Any = None) -> dict[str, Any]:
    assert response["jsonrpc"] == "2.0"
    assert response["id"] == request_id
    assert "result" not in response
    error = response["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


# -- envelopes -----------------------------------------------------------------------


async def test_single_request_echoes_id_of_any_valid_type(dispatcher: Dispatcher) -> None:
    for request_id in (1, "abc", 0, -5, 2.5, None, "", 10**30):
        response = await send(dispatcher, req("getBlockNumber", GROUP, id=request_id))
        assert response == {"jsonrpc": "2.0", "id": request_id, "result": "0x0"}


@pytest.mark.parametrize("bad_id", [[1], {"a": 1}, True, False])
async def test_invalid_id_type_is_invalid_request_with_null_id(
    dispatcher: Dispatcher, bad_id: Any
) -> None:
    response = await send(dispatcher, req("getBlockNumber", GROUP, id=bad_id))
    assert_error(response, ErrorCode.InvalidRequest, None)


@pytest.mark.parametrize(
    "payload",
    [
        {"jsonrpc": "1.0", "method": "getBlockNumber", "params": [GROUP], "id": 1},
        {"method": "getBlockNumber", "params": [GROUP], "id": 1},
        {"jsonrpc": "2.0", "params": [GROUP], "id": 1},
        {"jsonrpc": "2.0", "method": 5, "params": [GROUP], "id": 1},
        {"jsonrpc": "2.0", "method": "getBlockNumber", "params": "group0", "id": 1},
        {"jsonrpc": 2.0, "method": "getBlockNumber", "params": [GROUP], "id": 1},
    ],
)
async def test_malformed_request_objects(dispatcher: Dispatcher, payload: Any) -> None:
    assert_error(await send(dispatcher, payload), ErrorCode.InvalidRequest, 1)


@pytest.mark.parametrize("payload", [1, "x", None, True, 3.5])
async def test_non_object_request_is_invalid(dispatcher: Dispatcher, payload: Any) -> None:
    assert_error(await send(dispatcher, payload), ErrorCode.InvalidRequest, None)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"jsonrpc": "2.0", "method": "getBlockNumber", "params": [1], "id": 1',
        b"\xff\xfe\x00garbage",
        b"[1, 2,]",
        b'{"id": NaN}',
        b'{"id": Infinity}',
        b"[" * 100_000,
        b"\x00" * 10,
        "\ufeff{}".encode(),
    ],
)
async def test_parse_errors(dispatcher: Dispatcher, body: bytes) -> None:
    assert_error(await send(dispatcher, body), ErrorCode.ParseError, None)


async def test_numbers_python_cannot_hold_are_valid_json(dispatcher: Dispatcher) -> None:
    """1e400 and a 5000-digit integer are JSON (RFC 8259 sets no range): the request is
    parsed and the value refused where it is used, not the body as unparseable."""
    for number in (b"1e400", b"9" * 5000):
        body = b'{"jsonrpc": "2.0", "method": "getBlockNumber", "params": [1], "id": ' + number
        error = assert_error(await send(dispatcher, body + b"}"), ErrorCode.InvalidRequest, None)
        assert "number out of range" in error["message"]
        params = b'["' + GROUP.encode() + b'", ' + number + b"]"
        body = b'{"jsonrpc": "2.0", "method": "getBlockByNumber", "id": 5, "params": ' + params
        assert_error(await send(dispatcher, body + b"}"), ErrorCode.InvalidParams, 5)


async def test_unknown_method(dispatcher: Dispatcher) -> None:
    response = await send(dispatcher, req("eth_blockNumber", GROUP, id=7))
    error = assert_error(response, ErrorCode.MethodNotFound, 7)
    assert "eth_blockNumber" in error["message"]


async def test_unknown_methods_are_not_counted_by_name(dispatcher: Dispatcher) -> None:
    """Attacker-chosen names must not grow the metrics tables."""
    for i in range(50):
        await send(dispatcher, req(f"junk{i}", GROUP))
    assert not any(name.startswith("junk") for name in dispatcher.stats.calls)
    assert dispatcher.stats.errors[ErrorCode.MethodNotFound] == 50


async def test_unknown_group_and_group_id_forms(dispatcher: Dispatcher) -> None:
    assert_error(
        await send(dispatcher, req("getBlockNumber", "group9")), ErrorCode.GroupNotFound, 1
    )
    assert_error(await send(dispatcher, req("getBlockNumber", 1)), ErrorCode.GroupNotFound, 1)
    for bad in (None, [GROUP], {"g": 1}, True, 1.0):
        response = await send(dispatcher, req("getBlockNumber", bad))
        assert_error(response, ErrorCode.InvalidParams, 1)
    response = await send(dispatcher, req("getBlockNumber"))
    assert_error(response, ErrorCode.InvalidParams, 1)


async def test_integer_group_ids_match_as_text(ledger: Ledger) -> None:
    """FISCO 2.x clients send the group as a number: ``[1]`` finds group "1"."""
    dispatcher = Dispatcher({1: LedgerBackend(ledger)})
    assert (await rpc(dispatcher, "getBlockNumber", 1))["result"] == "0x0"
    assert (await rpc(dispatcher, "getBlockNumber", "1"))["result"] == "0x0"


async def test_named_params_are_refused_clearly(dispatcher: Dispatcher) -> None:
    payload = {"jsonrpc": "2.0", "method": "getBlockNumber", "params": {"group": GROUP}, "id": 3}
    error = assert_error(await send(dispatcher, payload), ErrorCode.InvalidParams, 3)
    assert "array" in error["message"]


async def test_params_may_be_omitted_for_client_version(dispatcher: Dispatcher) -> None:
    payload = {"jsonrpc": "2.0", "method": "getClientVersion", "id": 1}
    assert (await send(dispatcher, payload))["result"]["Chain Id"] == "chain0"


# -- notifications and batches -----------------------------------------------------------


async def test_notification_gets_no_response_but_runs(
    dispatcher: Dispatcher, ledger: Ledger, alice: KeyPair
) -> None:
    stx = ledger.tx(alice, "userAdd", ["alice", 5])
    out = await dispatcher.handle_bytes(
        json.dumps(req("sendRawTransaction", GROUP, "0x" + stx.encoded.hex(), id=NOTIFY)).encode()
    )
    assert out is None
    assert stx.hash in ledger.pool


async def test_notification_errors_are_silent(dispatcher: Dispatcher) -> None:
    assert await dispatcher.handle_bytes(json.dumps(req("nope", id=NOTIFY)).encode()) is None
    assert (
        await dispatcher.handle_bytes(json.dumps(req("getBlockNumber", id=NOTIFY)).encode()) is None
    )


async def test_empty_batch_is_one_invalid_request(dispatcher: Dispatcher) -> None:
    response = await send(dispatcher, [])
    assert isinstance(response, dict)
    assert_error(response, ErrorCode.InvalidRequest, None)


async def test_batch_mixed_results_errors_and_notifications(dispatcher: Dispatcher) -> None:
    batch = [
        req("getBlockNumber", GROUP, id="a"),
        req("getBlockNumber", GROUP, id=NOTIFY),  # notification: no entry
        1,  # not an object: invalid request, id null
        req("noSuchMethod", GROUP, id="b"),
        req("getBlockByNumber", GROUP, 99, id="c"),
        {"foo": "boo"},  # invalid request, id null
        req("getSystemConfigByKey", GROUP, "tx_count_limit", id="d"),
    ]
    response = await send(dispatcher, batch)
    assert isinstance(response, list)
    assert len(response) == 6
    assert response[0] == {"jsonrpc": "2.0", "id": "a", "result": "0x0"}
    assert_error(response[1], ErrorCode.InvalidRequest, None)
    assert_error(response[2], ErrorCode.MethodNotFound, "b")
    assert_error(response[3], ErrorCode.BlockNumberNotFound, "c")
    assert_error(response[4], ErrorCode.InvalidRequest, None)
    assert response[5]["result"] == "1000"


async def test_all_notification_batch_has_no_body(dispatcher: Dispatcher) -> None:
    batch = [req("getBlockNumber", GROUP, id=NOTIFY), req("getPendingTxSize", GROUP, id=NOTIFY)]
    assert await dispatcher.handle_bytes(json.dumps(batch).encode()) is None


async def test_batch_of_invalid_items_answers_each(dispatcher: Dispatcher) -> None:
    response = await send(dispatcher, [1, 2, 3])
    assert [r["error"]["code"] for r in response] == [ErrorCode.InvalidRequest] * 3


async def test_batch_size_limit(backend: LedgerBackend) -> None:
    dispatcher = Dispatcher({GROUP: backend}, max_batch=10)
    ok = await send(dispatcher, [req("getBlockNumber", GROUP, id=i) for i in range(10)])
    assert len(ok) == 10
    too_many = await send(dispatcher, [req("getBlockNumber", GROUP, id=i) for i in range(11)])
    assert_error(too_many, ErrorCode.BatchTooLarge, None)


# -- submission coalescing ---------------------------------------------------------------


def raw_hex(stx: Any) -> str:
    return "0x" + stx.encoded.hex()


async def test_consecutive_submissions_reach_backend_as_one_call(
    dispatcher: Dispatcher, backend: LedgerBackend, ledger: Ledger, alice: KeyPair
) -> None:
    txs = [ledger.tx(alice, "userAdd", [f"u{i}", i + 1]) for i in range(50)]
    batch = [req("sendRawTransaction", GROUP, raw_hex(t), id=i) for i, t in enumerate(txs)]
    response = await send(dispatcher, batch)
    assert [r["result"] for r in response] == ["0x" + t.hash.hex() for t in txs]
    assert backend.submit_calls == [50]
    assert len(ledger.pool) == 50
    assert dispatcher.stats.txs_submitted == 50


async def test_reads_between_submissions_see_earlier_ones(
    dispatcher: Dispatcher, backend: LedgerBackend, ledger: Ledger, alice: KeyPair
) -> None:
    a, b, c = (ledger.tx(alice, "userAdd", [f"u{i}", 1]) for i in range(3))
    batch = [
        req("sendRawTransaction", GROUP, raw_hex(a), id=1),
        req("sendRawTransaction", GROUP, raw_hex(b), id=2),
        req("getPendingTxSize", GROUP, id=3),
        req("sendRawTransaction", GROUP, raw_hex(c), id=4),
        req("getPendingTxSize", GROUP, id=5),
    ]
    response = await send(dispatcher, batch)
    assert response[2]["result"] == "0x2"
    assert response[4]["result"] == "0x3"
    assert backend.submit_calls == [2, 1]


async def test_invalid_items_do_not_break_a_submission_run(
    dispatcher: Dispatcher, backend: LedgerBackend, ledger: Ledger, alice: KeyPair
) -> None:
    a, b = (ledger.tx(alice, "userAdd", [f"u{i}", 1]) for i in range(2))
    batch = [
        req("sendRawTransaction", GROUP, raw_hex(a), id=1),
        req("sendRawTransaction", GROUP, "0xzz", id=2),
        req("sendRawTransaction", GROUP, raw_hex(b), id=3),
    ]
    response = await send(dispatcher, batch)
    assert response[0]["result"] == "0x" + a.hash.hex()
    assert_error(response[1], ErrorCode.InvalidParams, 2)
    assert response[2]["result"] == "0x" + b.hash.hex()
    assert backend.submit_calls == [2]


async def test_every_txpool_rejection_has_its_fisco_code(
    ledger: Ledger, dispatcher: Dispatcher, alice: KeyPair
) -> None:
    ok = ledger.tx(alice, "userAdd", ["x", 1], nonce="n1")
    same_nonce = ledger.tx(alice, "userAdd", ["y", 1], nonce="n1")
    stale = ledger.tx(alice, "userAdd", ["z", 1], block_limit=0)
    from node.ledger.tx import Transaction

    def build(**kw: Any) -> Any:
        base = dict(
            chain_id="chain0",
            group_id=GROUP,
            to="0x5002",
            method="userAdd",
            args=["w", 1],
            block_limit=100,
        )
        base.update(kw)
        return Transaction.build(**base).sign(alice)

    wrong_chain = build(chain_id="other")
    wrong_group = build(group_id="group7")
    forged = bytearray(build().encoded)
    forged[-33:-1] = b"\xff" * 32  # the signature's s: out of range (still canonical msgpack)
    cases = [
        (raw_hex(ok), None),
        (raw_hex(ok), ErrorCode.AlreadyKnown),
        (raw_hex(same_nonce), ErrorCode.NonceCheckFail),
        (raw_hex(stale), ErrorCode.BlockLimitCheckFail),
        (raw_hex(wrong_chain), ErrorCode.InvalidChainId),
        (raw_hex(wrong_group), ErrorCode.InvalidGroupId),
        ("0x00ff", ErrorCode.Malformed),
        ("0x" + bytes(forged).hex(), ErrorCode.InvalidSignature),
    ]
    response = await send(
        dispatcher,
        [req("sendRawTransaction", GROUP, raw, id=i) for i, (raw, _) in enumerate(cases)],
    )
    for (_, code), answer in zip(cases, response, strict=True):
        if code is None:
            assert "result" in answer
            continue
        error = assert_error(answer, code, answer["id"])
        assert error["data"] == {"reason": code.name, "status": hex(code)}
    assert dispatcher.stats.txs_rejected == 7

    ledger.commit()  # `ok` is now in the chain
    answer = await rpc(dispatcher, "sendRawTransaction", GROUP, raw_hex(ok))
    assert_error(answer, ErrorCode.AlreadyInChain, 1)


async def test_pool_full(alice: KeyPair) -> None:
    from node.runtime.txpool import TxPool

    ledger = Ledger()
    ledger.pool = TxPool(chain_id="chain0", group_id=GROUP, in_chain=lambda h: False, capacity=1)
    dispatcher = Dispatcher({GROUP: LedgerBackend(ledger)})
    a, b = (ledger.tx(alice, "userAdd", [f"u{i}", 1]) for i in range(2))
    assert "result" in await rpc(dispatcher, "sendRawTransaction", GROUP, raw_hex(a))
    assert_error(
        await rpc(dispatcher, "sendRawTransaction", GROUP, raw_hex(b)), ErrorCode.TxPoolIsFull, 1
    )


# -- backends that misbehave -------------------------------------------------------------


class BrokenBackend(LedgerBackend):
    def block_number(self) -> int:
        raise KeyError("storage exploded")

    def pbft_view(self) -> int:
        raise RpcError(ErrorCode.NotReady)

    async def submit(self, raw_txs: Sequence[bytes]) -> Sequence[Any]:
        if raw_txs and raw_txs[0] == b"\x01":
            return []  # wrong length
        if raw_txs and raw_txs[0] == b"\x02":
            return ["not a hash"] * len(raw_txs)
        if raw_txs and raw_txs[0] == b"\x03":
            return [type("R", (), {"reason": "NoSuchReason", "detail": "?"})()]
        raise RuntimeError("pool on fire")


async def test_backend_exceptions_become_internal_errors(ledger: Ledger) -> None:
    dispatcher = Dispatcher({GROUP: BrokenBackend(ledger)})
    error = assert_error(await rpc(dispatcher, "getBlockNumber", GROUP), ErrorCode.InternalError, 1)
    assert "exploded" not in error["message"]  # no internals leak to the client
    assert_error(await rpc(dispatcher, "getPbftView", GROUP), ErrorCode.NotReady, 1)
    for raw in ("0x01", "0x02", "0x03", "0x04"):
        answer = await rpc(dispatcher, "sendRawTransaction", GROUP, raw)
        assert_error(answer, ErrorCode.InternalError, 1)


async def test_backend_rendering_failure_is_internal_error(ledger: Ledger) -> None:
    class BadShapes(LedgerBackend):
        def sealers(self) -> Any:
            return ["not bytes"]

        def total_transaction_count(self) -> Any:
            return {"tx_sum": "1"}

    dispatcher = Dispatcher({GROUP: BadShapes(ledger)})
    for method in ("getSealerList", "getTotalTransactionCount"):
        assert_error(await rpc(dispatcher, method, GROUP), ErrorCode.InternalError, 1)
