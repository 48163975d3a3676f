"""The error-code table: one definition, consistent with the txpool and the spec."""

from __future__ import annotations

from node.rpc import ErrorCode, RpcError
from node.rpc.errors import MESSAGES, TXPOOL_REASONS, txpool_error
from node.runtime.txpool import Reason


def test_error_table_is_consistent() -> None:
    assert set(MESSAGES) == set(ErrorCode)
    assert {
        "AlreadyKnown",
        "AlreadyInChain",
        "NonceCheckFail",
        "BlockLimitCheckFail",
        "TxPoolIsFull",
        "InvalidChainId",
        "InvalidGroupId",
        "Malformed",
        "InvalidSignature",
        "Quarantined",
        "MembershipBreaksQuorum",
        "NotAGroupMember",
        "StorageUnavailable",
    } == TXPOOL_REASONS
    assert {r.value for r in Reason} == TXPOOL_REASONS, "every pool refusal has its code"
    codes = [c.value for c in ErrorCode]
    assert len(codes) == len(set(codes))
    for code in ErrorCode:
        reserved = -32768 <= code.value <= -32000
        spec = code.value in (-32700, -32600, -32601, -32602, -32603)
        server = -32099 <= code.value <= -32000
        assert not reserved or spec or server, code
    assert txpool_error("Bogus").code == ErrorCode.InternalError


def test_txpool_reasons_match_the_pool() -> None:
    from node.runtime.txpool import Reason

    assert {r.value for r in Reason} == TXPOOL_REASONS


def test_rpc_error_round_trip() -> None:
    err = RpcError(ErrorCode.AlreadyKnown)
    assert err.reason == "AlreadyKnown"
    assert err.to_json() == {"code": 10004, "message": "AlreadyKnown"}
    assert RpcError(12345).message == "error 12345"
    assert RpcError(12345).reason is None
