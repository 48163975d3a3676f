"""Issue 9: every text limit is in UTF-8 bytes, defined once in node.tx and used by
decode, admission, ``call``, RPC params, the console and genesis alike."""

from __future__ import annotations

import pytest

import node.ledger.tx
from consensus.codec import DecodeError, pack
from consensus.crypto import KeyPair, hash32
from node.ledger.executor import Executor
from node.ledger.genesis import GenesisConfig, GenesisError
from node.ledger.precompiles import PRECOMPILED_ERROR
from node.ledger.precompiles.dag_transfer import USER_NOT_EXIST
from node.ledger.tx import (
    MAX_ARG_BYTES,
    MAX_NAME_BYTES,
    SignedTransaction,
    Transaction,
    utf8_fits,
    valid_arg,
)
from node.rpc import params
from node.rpc.calldata import decode_call, encode_call
from node.rpc.errors import RpcError
from node.runtime.txpool import Reason, TxPool, TxRejected
from scripts.commands.console import check_user
from scripts.errors import CommandError
from storage.ledger import LedgerStore
from storage.memory import MemoryKV
from tests.ledger.support import ALICE, CHAIN, DAG, GROUP, open_genesis

# One character of each UTF-8 width.
CHARS = {1: "a", 2: "é", 3: "€", 4: "😀"}


def text_of(size: int, width: int) -> str:
    """A str of exactly ``size`` UTF-8 bytes made mostly of ``width``-byte characters."""
    text = CHARS[width] * (size // width) + "a" * (size % width)
    assert len(text.encode()) == size
    return text


def raw_tx(
    kp: KeyPair,
    *,
    args: list[object] | None = None,
    nonce: str = "n1",
    method: str = "userAdd",
    chain_id: str = CHAIN,
    group_id: str = GROUP,
    block_limit: int = 100,
) -> bytes:
    """Canonical signed bytes built field by field, bypassing Transaction's own checks,
    as an outside client would send them."""
    body = [0, chain_id, group_id, nonce, block_limit, DAG, method, args or ["u", b"\0" * 32]]
    signature = kp.sign(hash32(pack(body)))
    return pack([*body, signature])


def build(**kw: object) -> Transaction:
    fields: dict[str, object] = dict(
        chain_id=CHAIN,
        group_id=GROUP,
        to=DAG,
        method="userAdd",
        args=["alice", 5],
        block_limit=100,
        nonce="n1",
    )
    fields.update(kw)
    return Transaction.build(**fields)  # type: ignore[arg-type]


def pool() -> TxPool:
    return TxPool(chain_id=CHAIN, group_id=GROUP, in_chain=lambda h: False)


def test_limits_are_bytes_and_defined_once() -> None:
    assert MAX_ARG_BYTES == 256 and MAX_NAME_BYTES == 64
    assert not hasattr(node.ledger.tx, "MAX_ARG_CHARS")
    assert not hasattr(node.ledger.tx, "MAX_NAME_CHARS")


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_utf8_fits_counts_bytes_at_every_boundary(width: int) -> None:
    for limit in (MAX_NAME_BYTES, MAX_ARG_BYTES):
        assert utf8_fits(text_of(limit, width), limit)
        assert not utf8_fits(text_of(limit + 1, width), limit)
        assert utf8_fits(text_of(limit - 1, width), limit)
    assert not utf8_fits(CHARS[width] * (MAX_ARG_BYTES // width + 1), MAX_ARG_BYTES)


def test_lone_surrogates_never_fit() -> None:
    for text in ("\ud800", "a\udfff", "\udc80" * 3):
        assert not utf8_fits(text, MAX_ARG_BYTES)
        assert not valid_arg(text)


def test_issue_9_name_is_refused_when_built_and_when_admitted() -> None:
    name = "€" * 256  # 256 characters, 768 bytes
    with pytest.raises(ValueError, match="768 UTF-8 bytes, more than 256"):
        build(args=[name, 1])
    raw = raw_tx(ALICE, args=[name, b"\0" * 31 + b"\1"])
    with pytest.raises(DecodeError, match="bytes"):
        SignedTransaction.decode(raw)
    with pytest.raises(TxRejected) as info:
        pool().admit(raw, 0)
    assert info.value.reason is Reason.MALFORMED


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_string_arguments_at_the_byte_limit(width: int) -> None:
    at, over = text_of(MAX_ARG_BYTES, width), text_of(MAX_ARG_BYTES + 1, width)
    stx = build(args=[at, 1]).sign(ALICE)
    assert SignedTransaction.decode(stx.encoded).tx.args == (at, 1)
    assert pool().admit(stx.encoded, 0).hash == stx.hash
    with pytest.raises(ValueError, match="UTF-8 bytes"):
        build(args=[over, 1])
    with pytest.raises(DecodeError, match="UTF-8 bytes"):
        SignedTransaction.decode(raw_tx(ALICE, args=[over, b"\0" * 32]))


@pytest.mark.parametrize("field", ["chain_id", "group_id", "nonce", "method"])
@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_name_fields_at_the_byte_limit(field: str, width: int) -> None:
    at, over = text_of(MAX_NAME_BYTES, width), text_of(MAX_NAME_BYTES + 1, width)
    stx = build(**{field: at}).sign(ALICE)
    assert getattr(SignedTransaction.decode(stx.encoded).tx, field) == at
    with pytest.raises(ValueError, match=f"{field} is {MAX_NAME_BYTES + 1} UTF-8 bytes"):
        build(**{field: over})
    with pytest.raises(DecodeError, match=f"{field} is {MAX_NAME_BYTES + 1} UTF-8 bytes"):
        SignedTransaction.decode(raw_tx(ALICE, **{field: over}))  # type: ignore[arg-type]


def test_building_with_a_lone_surrogate_is_a_clean_value_error() -> None:
    with pytest.raises(ValueError, match="lone surrogate") as info:
        build(args=["\ud800", 1])
    assert type(info.value) is ValueError  # not a UnicodeEncodeError from msgpack
    with pytest.raises(ValueError, match="nonce is not valid UTF-8"):
        build(nonce="\udfff")


def test_call_refuses_what_a_transaction_cannot_carry() -> None:
    executor = Executor(open_genesis())
    state = LedgerStore(MemoryKV()).state
    for bad in ("\ud800", text_of(MAX_ARG_BYTES + 1, 3), -1, 2**256, 1.5, b"x"):
        assert executor.call(state, DAG, "userBalance", [bad]) == (PRECOMPILED_ERROR, b"")
    assert executor.call(state, DAG, "userBalance", [text_of(MAX_ARG_BYTES, 4)]) == (
        USER_NOT_EXIST,
        b"",
    )


def test_call_data_counts_bytes() -> None:
    method = text_of(MAX_NAME_BYTES, 3)
    assert decode_call(encode_call(method, [text_of(MAX_ARG_BYTES, 2)]))[0] == method
    with pytest.raises(ValueError, match="UTF-8 bytes"):
        encode_call(text_of(MAX_NAME_BYTES + 1, 3))
    with pytest.raises(ValueError, match="lone surrogate"):
        encode_call("userBalance", ["\ud800"])
    with pytest.raises(DecodeError, match="bytes"):
        decode_call(pack([text_of(MAX_NAME_BYTES + 1, 2)]))
    with pytest.raises(DecodeError, match="bytes"):
        decode_call(pack(["userBalance", text_of(MAX_ARG_BYTES + 1, 4)]))


def test_rpc_text_param_counts_bytes() -> None:
    assert params.text(text_of(MAX_NAME_BYTES, 4), "method", max_bytes=MAX_NAME_BYTES)
    for bad in (text_of(MAX_NAME_BYTES + 1, 4), "\ud800", ""):
        with pytest.raises(RpcError, match="bytes") as info:
            params.text(bad, "method", max_bytes=MAX_NAME_BYTES)
        assert info.value.code == -32602


def test_console_user_names_count_bytes() -> None:
    assert check_user(text_of(MAX_ARG_BYTES, 3)) == text_of(MAX_ARG_BYTES, 3)
    for bad in ("€" * 86, "\udcff"):  # 258 bytes; a non-UTF-8 argv byte (surrogateescape)
        with pytest.raises(CommandError, match="UTF-8 bytes"):
            check_user(bad)


def test_genesis_ids_follow_the_transaction_rule() -> None:
    GenesisConfig(chain_id=text_of(MAX_NAME_BYTES, 4))
    for field in ("chain_id", "group_id"):
        with pytest.raises(GenesisError, match="UTF-8 bytes"):
            GenesisConfig(**{field: text_of(MAX_NAME_BYTES + 1, 3)})  # type: ignore[arg-type]
