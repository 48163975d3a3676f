"""FISCO BCOS 2.x transactions: the strict decoder against independently built bytes.

Every transaction here is built by tests/ledger/fisco_support.py (rlp, eth-hash,
eth-keys, eth-abi), never by ledgerlab's encoder; ``sign_fisco_tx`` is checked against
them byte for byte.
"""

from __future__ import annotations

import pytest
import rlp
from hypothesis import given
from hypothesis import strategies as st

from consensus.codec import DecodeError
from consensus.crypto import InvalidSignature, KeyPair
from node.ledger.fisco import (
    FiscoSignedTransaction,
    FiscoTxError,
    decode_fisco_transaction,
    sign_fisco_tx,
)
from node.ledger.fisco.abi import encode_calldata
from node.ledger.tx import MAX_TX_SIZE, SignedTransaction
from node.runtime.txpool import Reason, TxPool, TxRejected
from tests.ledger import fisco_support as fs

SECRET = bytes([1]) * 32
TRANSFER = fs.calldata("userTransfer(string,string,uint256)", "alice", "bob", 5)

# The vector in docs/fisco-format.md: userTransfer("alice", "bob", 5) to 0x5002, randomid
# 123456789, gasPrice = gasLimit = 30,000,000, blockLimit 500, chain 1, group 1, no
# extraData, secret key 32 bytes of 0x01.
VECTOR_RAW = (
    "f9015484075bcd158401c9c3808401c9c3808201f494000000000000000000000000000000000000500280b8e4"
    "0b37617b"
    "0000000000000000000000000000000000000000000000000000000000000060"
    "00000000000000000000000000000000000000000000000000000000000000a0"
    "0000000000000000000000000000000000000000000000000000000000000005"
    "0000000000000000000000000000000000000000000000000000000000000005"
    "616c696365000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000003"
    "626f620000000000000000000000000000000000000000000000000000000000"
    "0101801b"
    "a06278caeae59ef365c010f8dc2cea64f19f19ecd3c1b348468070ab70dbadf278"
    "a049ebb349677f39e0219f6d4fb7c3fbf906874e7730211dbeb21f62b68f0a7b50"
)
VECTOR_SIGNING_HASH = "cfcb392e03ac2ec40f59a39639689655074a82ea9a117c0464b0f7908899f7b6"
VECTOR_HASH = "5551894bafa7155fde774dddc06cb3641eecbf2c351f7a95d3a15bfa5e48825c"
VECTOR_SENDER = "1a642f0e3c3af545e7acbd38b07251b3990914f1"


def good(**kw: object) -> bytes:
    fields: dict[str, object] = {"data": TRANSFER, "block_limit": 500}
    fields.update(kw)
    return fs.fisco_tx(SECRET, **fields)


def with_signature(fields: list[object], v: int, r: int, s: int) -> bytes:
    return fs.encode_items([*fields, v, r, s])


def test_fixed_vector_byte_for_byte() -> None:
    raw = good()
    assert raw.hex() == VECTOR_RAW
    stx = SignedTransaction.decode(raw)  # the native entry point dispatches on the bytes
    assert type(stx) is FiscoSignedTransaction
    assert stx.tx.signing_hash.hex() == VECTOR_SIGNING_HASH
    assert stx.tx.signing_hash == fs.keccak(
        fs.encode_items(fs.unsigned_fields(data=TRANSFER, block_limit=500))
    )
    assert stx.hash.hex() == VECTOR_HASH == fs.keccak(raw).hex()
    assert stx.recover_sender().hex() == VECTOR_SENDER == fs.address_of(SECRET).hex()
    assert stx.encoded == raw and stx.input == TRANSFER


def test_native_view_of_the_fields() -> None:
    tx = decode_fisco_transaction(good(randomid=0xABC, chain_id=7, group_id=9)).tx
    assert (tx.chain_id, tx.group_id, tx.nonce, tx.block_limit) == ("7", "9", "abc", 500)
    assert (tx.to, tx.method, tx.args) == (fs.DAG, "userTransfer", ("alice", "bob", 5))


def test_our_encoder_matches_the_independent_one() -> None:
    kp = KeyPair.from_secret(SECRET)
    for signature, args in (
        ("userTransfer(string,string,uint256)", ["alice", "bob", 5]),
        ("userAdd(string,uint256)", ["€uro", 2**256 - 1]),
        ("userBalance(string)", [""]),
    ):
        data = encode_calldata(signature, args)
        assert data == fs.calldata(signature, *args)
        ours = sign_fisco_tx(
            kp,
            to="0x5002",
            data=data,
            block_limit=77,
            randomid=2**255,
            chain_id=3,
            group_id=4,
            extra_data=b"\x00",
        )
        assert ours.encoded == fs.fisco_tx(
            SECRET,
            data=data,
            block_limit=77,
            randomid=2**255,
            chain_id=3,
            group_id=4,
            extra_data=b"\x00",
        )


def test_unknown_selector_and_address_decode_for_execution_to_refuse() -> None:
    stx = decode_fisco_transaction(good(data=b"\x12\x34\x56\x78"))
    assert stx.call is None and stx.tx.method == "0x12345678" and stx.tx.args == ()
    stx = decode_fisco_transaction(good(to=b"\x11" * 20))
    assert stx.call is None


def _mutations() -> list[tuple[str, bytes]]:
    raw = good()
    fields = fs.unsigned_fields(data=TRANSFER, block_limit=500)
    v, r, s = fs.sign_fields(SECRET, fields)
    payload = raw[3:]  # raw is f9 LL LL + payload
    items = [rlp.encode(x) for x in [*fields, v, r, s]]
    assert fs.list_of_encoded(items) == raw

    def item_replaced(index: int, encoded: bytes) -> bytes:
        return fs.list_of_encoded([*items[:index], encoded, *items[index + 1 :]])

    cases = [
        ("truncated", raw[:-1]),
        ("trailing byte", raw + b"\x00"),
        ("trailing after a shorter list", raw[:2] + bytes([raw[2] - 1]) + payload[:-1] + b"\x80"),
        ("empty", b"\xc0"),
        ("long list header with leading zero", b"\xfa\x00" + raw[1:]),
        ("long list header for a short payload", b"\xf8\x01\x80"),
        ("a byte below 0x80 with a header", item_replaced(8, b"\x81\x01")),
        ("a short string in long form", item_replaced(4, b"\xb8\x14" + fs.DAG)),
        ("a long string with a leading zero length", item_replaced(6, b"\xb9\x00\xe4" + TRANSFER)),
        ("zero as 0x00 instead of empty", item_replaced(5, b"\x00")),
        ("12 fields", fs.encode_items([*fields, v, r])),
        ("14 fields", fs.encode_items([*fields, v, r, s, b""])),
        ("nested list", fs.encode_items([*fields[:9], [b""], v, r, s])),
        ("randomid with a leading zero", with_signature([b"\x00\x01", *fields[1:]], v, r, s)),
        ("blockLimit over uint64", fs.fisco_tx(SECRET, data=TRANSFER, block_limit=2**64)),
        ("chain id over uint64", fs.fisco_tx(SECRET, data=TRANSFER, block_limit=5, chain_id=2**64)),
        (
            "randomid over 32 bytes",
            fs.fisco_tx(SECRET, data=TRANSFER, block_limit=5, randomid=2**256),
        ),
        ("to of 19 bytes", fs.fisco_tx(SECRET, data=TRANSFER, block_limit=5, to=b"\x11" * 19)),
        ("deployment (empty to)", fs.fisco_tx(SECRET, data=TRANSFER, block_limit=5, to=b"")),
        ("value", fs.fisco_tx(SECRET, data=TRANSFER, block_limit=5, value=1)),
        (
            "extraData over 1024 bytes",
            fs.fisco_tx(SECRET, data=TRANSFER, block_limit=5, extra_data=b"x" * 1025),
        ),
        ("oversize", fs.fisco_tx(SECRET, data=TRANSFER + bytes(MAX_TX_SIZE), block_limit=5)),
        ("high s", with_signature(fields, 27 + ((v - 27) ^ 1), r, fs.N - s)),
        ("v = 29", with_signature(fields, 29, r, s)),
        ("v = 0", with_signature(fields, 0, r, s)),
        ("v as a bare recovery id", with_signature(fields, v - 27, r, s)),
        ("v with a leading zero", with_signature(fields, b"\x00" + bytes([v]), r, s)),
        ("r = 0", with_signature(fields, v, 0, s)),
        ("r = n", with_signature(fields, v, fs.N, s)),
        ("s = 0", with_signature(fields, v, r, 0)),
        ("r of 33 bytes", with_signature(fields, v, b"\x01" + r.to_bytes(32, "big"), s)),
    ]
    # ABI calldata that is not canonical for a known selector
    sel = TRANSFER[:4]
    body = TRANSFER[4:]
    bad_abi = {
        "ABI truncated": TRANSFER[:-32],
        "ABI trailing word": TRANSFER + bytes(32),
        "ABI not whole words": TRANSFER + b"\x00",
        "ABI offset moved": sel + (0x80).to_bytes(32, "big") + body[32:],
        "ABI offset outside": sel + (2**255).to_bytes(32, "big") + body[32:],
        "ABI dirty padding": TRANSFER[:-1] + b"\x01",
        "ABI string over 256 bytes": fs.calldata("userAdd(string,uint256)", "x" * 257, 1),
        "ABI invalid UTF-8": fs.calldata("userAdd(string,uint256)", "x", 1).replace(
            b"x" + bytes(31), b"\xff" + bytes(31)
        ),
        "ABI no arguments": sel,
    }
    for name, data in bad_abi.items():
        cases.append((name, fs.fisco_tx(SECRET, data=data, block_limit=5)))
    return cases


MUTATIONS = _mutations()
WHY = {  # the refusal must be for the reason the case is about
    "high s": "high-s",
    "v = 29": "v must be 27 or 28",
    "long list header with leading zero": "canonical",
    "long list header for a short payload": "canonical",
    "a byte below 0x80 with a header": "canonical",
    "a short string in long form": "canonical",
    "a long string with a leading zero length": "canonical",
    "randomid with a leading zero": "leading zero",
    "trailing byte": "trailing",
    "ABI trailing word": "trailing bytes",
    "ABI dirty padding": "non-zero padding",
    "ABI offset moved": "not the canonical",
    "oversize": "exceeds 8192",
}


@pytest.mark.parametrize(("name", "raw"), MUTATIONS, ids=[c[0] for c in MUTATIONS])
def test_malformed_is_one_typed_error_and_changes_nothing(name: str, raw: bytes) -> None:
    with pytest.raises(FiscoTxError, match=WHY.get(name)):
        SignedTransaction.decode(raw)
    assert issubclass(FiscoTxError, DecodeError)  # every decoder treats it as malformed
    pool = TxPool(chain_id="1", group_id="1", in_chain=lambda h: False)
    pool.admit(good(randomid=1, block_limit=5), head=0)
    with pytest.raises(TxRejected) as info:
        pool.admit(raw, head=0)
    assert info.value.reason is Reason.MALFORMED
    assert len(pool) == 1 and pool.admitted == 1


def test_wrong_chain_or_group_id_is_refused() -> None:
    pool = TxPool(chain_id="1", group_id="1", in_chain=lambda h: False)
    for kw, reason in (
        ({"chain_id": 2}, Reason.INVALID_CHAIN_ID),
        ({"group_id": 0}, Reason.INVALID_GROUP_ID),
    ):
        with pytest.raises(TxRejected) as info:
            pool.admit(good(block_limit=5, **kw), head=0)  # type: ignore[arg-type]
        assert info.value.reason is reason
    assert len(pool) == 0


def test_txpool_rules_apply_alike() -> None:
    pool = TxPool(chain_id="1", group_id="1", in_chain=lambda h: False)
    vtx = pool.admit(good(randomid=42, block_limit=10), head=0)
    assert vtx.sender.hex() == VECTOR_SENDER
    for raw, reason in (
        (good(randomid=42, block_limit=10), Reason.ALREADY_KNOWN),
        (good(randomid=42, block_limit=11), Reason.NONCE_CHECK_FAIL),
        (good(randomid=43, block_limit=0), Reason.BLOCK_LIMIT_CHECK_FAIL),
        (good(randomid=43, block_limit=1001), Reason.BLOCK_LIMIT_CHECK_FAIL),
    ):
        with pytest.raises(TxRejected) as info:
            pool.admit(raw, head=0)
        assert info.value.reason is reason
    pool.on_commit(1, [vtx.tx])
    with pytest.raises(TxRejected) as info:
        pool.admit(good(randomid=42, block_limit=12), head=1)
    assert info.value.reason is Reason.NONCE_CHECK_FAIL


def test_a_signature_over_other_fields_recovers_another_sender() -> None:
    fields = fs.unsigned_fields(data=TRANSFER, block_limit=500)
    v, r, s = fs.sign_fields(SECRET, fields)
    fields[0] = 987  # a different randomid, the same signature
    stx = decode_fisco_transaction(with_signature(fields, v, r, s))
    try:
        sender = stx.recover_sender()
    except InvalidSignature:  # either outcome shows the signature binds the fields
        return
    assert sender.hex() != VECTOR_SENDER


@given(st.data())
def test_any_mutation_is_refused_or_is_itself_canonical(data: st.DataObject) -> None:
    raw = bytearray(good())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if op == "flip":
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif op == "insert":
            raw.insert(pos, data.draw(st.integers(0, 255)))
        elif len(raw) > 1:
            del raw[pos]
    try:
        stx = SignedTransaction.decode(bytes(raw))
    except DecodeError:
        return
    # accepted: then it is exactly the canonical RLP of what it decoded to
    assert rlp.encode(rlp.decode(bytes(raw))) == bytes(raw) == stx.encoded
    assert stx.hash == fs.keccak(bytes(raw))
