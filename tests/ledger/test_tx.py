"""Transactions: encoding, hashing, canonical form, signatures and senders."""

from __future__ import annotations

import contextlib

import msgpack
import pytest

from consensus.codec import DecodeError, pack, unpack
from consensus.crypto import InvalidSignature, KeyPair, hash32
from node.ledger.accounts import format_address, parse_address
from node.ledger.tx import (
    MAX_ARGS,
    MAX_TX_SIZE,
    UINT256_MAX,
    SignedTransaction,
    Transaction,
    decode_transaction,
    decode_values,
    encode_values,
)
from tests.ledger.support import ALICE, BOB

_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def build(**kw: object) -> Transaction:
    fields: dict[str, object] = dict(
        chain_id="chain0",
        group_id="group0",
        to="0x5002",
        method="userTransfer",
        args=["alice", "bob", 5],
        block_limit=500,
        nonce="n-1",
    )
    fields.update(kw)
    return Transaction.build(**fields)  # type: ignore[arg-type]


def test_round_trip_and_sender() -> None:
    stx = build(args=["a", 0, UINT256_MAX, "ü" * 10]).sign(ALICE)
    again = SignedTransaction.decode(stx.encode())
    assert again == stx
    assert again.hash == stx.hash == hash32(stx.encode())
    assert again.tx.signing_hash == hash32(again.tx.body)
    assert again.tx.args == ("a", 0, UINT256_MAX, "ü" * 10)
    assert again.recover_sender() == ALICE.address
    assert again.verified().sender == ALICE.address
    assert decode_transaction(bytearray(stx.encode())) == stx


def test_documented_layout() -> None:
    """docs/wire-format.md: [version, chain, group, nonce, limit, to, method, args, sig]."""
    stx = build().sign(ALICE)
    fields = unpack(stx.encode())
    assert fields[:7] == [
        0,
        "chain0",
        "group0",
        "n-1",
        500,
        parse_address("0x5002"),
        "userTransfer",
    ]
    assert fields[7] == ["alice", "bob", (5).to_bytes(32, "big")]
    assert fields[8] == stx.signature and len(stx.signature) == 65
    assert stx.tx.body == pack(fields[:8])
    assert stx.tx.signing_hash == hash32(pack(fields[:8]))


def test_short_precompile_address() -> None:
    assert build().to == bytes(18) + b"\x50\x02"
    assert format_address(build().to) == "0x" + "0" * 36 + "5002"


def test_hash_is_unique_per_signed_transaction() -> None:
    tx = build()
    by_alice, by_bob = tx.sign(ALICE), tx.sign(BOB)
    assert by_alice.tx.signing_hash == by_bob.tx.signing_hash
    assert by_alice.hash != by_bob.hash
    assert build(nonce="n-2").sign(ALICE).hash != by_alice.hash


def test_random_nonce_by_default() -> None:
    a = build(nonce=None)
    b = build(nonce=None)
    assert a.nonce != b.nonce and len(a.nonce) == 32


def test_tampered_signature_changes_or_breaks_the_sender() -> None:
    stx = build().sign(ALICE)
    for i in range(65):
        sig = bytearray(stx.signature)
        sig[i] ^= 0x01
        tampered = SignedTransaction(stx.tx, bytes(sig))
        try:
            sender = tampered.recover_sender()
        except InvalidSignature:
            continue
        assert sender != ALICE.address


def test_tampered_body_changes_the_sender() -> None:
    stx = build().sign(ALICE)
    other = SignedTransaction(build(args=["alice", "bob", 6]), stx.signature)
    with contextlib.suppress(InvalidSignature):
        assert other.recover_sender() != ALICE.address


def test_high_s_signature_is_rejected() -> None:
    stx = build().sign(ALICE)
    r, s, v = stx.signature[:32], int.from_bytes(stx.signature[32:64], "big"), stx.signature[64]
    flipped = r + (_N - s).to_bytes(32, "big") + bytes([v ^ 1])
    with pytest.raises(InvalidSignature, match="high-s"):
        SignedTransaction(stx.tx, flipped).recover_sender()


def test_invalid_recovery_id() -> None:
    stx = build().sign(ALICE)
    with pytest.raises(InvalidSignature):
        SignedTransaction(stx.tx, stx.signature[:64] + b"\x07").recover_sender()
    with pytest.raises(InvalidSignature):
        SignedTransaction(stx.tx, bytes(65)).recover_sender()


def test_non_canonical_encodings_are_rejected() -> None:
    stx = build().sign(ALICE)
    fields = unpack(stx.encode())
    # block_limit 500 as uint32 instead of uint16; a short string as str8.
    wide_int = stx.encode().replace(b"\xcd\x01\xf4", b"\xce\x00\x00\x01\xf4", 1)
    assert unpack(wide_int) == fields
    with pytest.raises(DecodeError, match="canonical"):
        SignedTransaction.decode(wide_int)
    str8 = stx.encode().replace(b"\xa6chain0", b"\xd9\x06chain0", 1)
    assert unpack(str8) == fields
    with pytest.raises(DecodeError, match="canonical"):
        SignedTransaction.decode(str8)
    with pytest.raises(DecodeError):
        SignedTransaction.decode(stx.encode() + b"\x00")


def test_non_canonical_array_header_or_signature_is_rejected() -> None:
    """The signature and the array header are part of the canonical form too."""
    stx = build().sign(ALICE)
    raw = stx.encode()
    bin16_sig = raw[:-67] + b"\xc5\x00\x41" + raw[-65:]  # bin16 instead of bin8
    assert unpack(bin16_sig) == unpack(raw)
    with pytest.raises(DecodeError, match="canonical"):
        SignedTransaction.decode(bin16_sig)
    wide_array = b"\xdc\x00\x09" + raw[1:]  # array16: its first byte routes it to FISCO
    assert unpack(wide_array) == unpack(raw)
    with pytest.raises(DecodeError):
        SignedTransaction.decode(wide_array)
    decoded = SignedTransaction.decode(raw)
    assert decoded.tx.body == stx.tx.body
    assert decoded.tx.signing_hash == stx.tx.signing_hash
    assert decoded.verified().sender == ALICE.address


@pytest.mark.parametrize(
    "index,value",
    [
        (0, 1),  # version
        (1, ""),  # empty chain id
        (1, "c" * 65),
        (3, 5),  # nonce not a str
        (4, -1),
        (4, -(2**63)),
        (4, True),
        (5, b"\x00" * 19),
        (6, None),
        (7, "args"),
        (7, [1]),  # ints travel as 32 bytes
        (7, [b"\x00" * 31]),
        (7, ["a" * 257]),
        (7, ["a"] * (MAX_ARGS + 1)),
        (8, b"\x00" * 64),
    ],
)
def test_bad_fields_are_decode_errors(index: int, value: object) -> None:
    fields = unpack(build().sign(ALICE).encode())
    fields[index] = value
    with pytest.raises(DecodeError):
        SignedTransaction.decode(msgpack.packb(fields, use_bin_type=True))


def test_size_limit() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        SignedTransaction.decode(b"\x99" + bytes(MAX_TX_SIZE))


@pytest.mark.parametrize(
    "kw",
    [
        dict(chain_id=""),
        dict(method="m" * 65),
        dict(block_limit=-1),
        dict(args=[1.5]),
        dict(args=[-1]),
        dict(args=[UINT256_MAX + 1]),
        dict(args=[True]),
        dict(args=[b"raw"]),
        dict(to="0x" + "1" * 41),
        dict(to="0xzz"),
    ],
)
def test_build_validates(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build(**kw)


def test_values_codec() -> None:
    values = ("x", 0, 2**255, "")
    assert decode_values(encode_values(values)) == values
    with pytest.raises(DecodeError):
        decode_values(pack([1]))
    with pytest.raises(ValueError):
        encode_values([-5])


def test_parse_address_forms() -> None:
    assert parse_address("0x1000") == parse_address(0x1000) == bytes(18) + b"\x10\x00"
    assert parse_address(ALICE.address.hex()) == ALICE.address
    assert parse_address(ALICE.address) == ALICE.address
    for bad in ("", "0x", "0x1_0", "g", b"\x00", True, 2**160, None):
        with pytest.raises(ValueError):
            parse_address(bad)  # type: ignore[arg-type]


def test_worked_example() -> None:
    """The test vector in docs/wire-format.md."""
    kp = KeyPair.from_secret(bytes([1]) * 32)
    assert format_address(kp.address) == "0xd6f6c0b6fd9c730b2f73fa15c99abc9322d132b1"
    stx = build(nonce="7f3a9c").sign(kp)
    assert stx.tx.body.hex() == (
        "9800a6636861696e30a667726f757030a6376633613963cd01f4c41400000000000000000000"
        "00000000000000005002ac757365725472616e7366657293a5616c696365a3626f62c420"
        + "00" * 31
        + "05"
    )
    assert stx.tx.signing_hash.hex() == (
        "9eef5e4f59914b39914fdff41eb62866bb713cd3c0574784affa6b8926171bff"
    )
    assert stx.signature.hex() == (
        "7d74b09988e78ede6505e7ee4ea109e04bb47e13c7b66ba822cc9c991d156738"
        "5be2fec227e49c285676b293f9b788345a41519187daed18dfe4020ff188d1fe00"
    )
    assert stx.encoded == b"\x99" + stx.tx.body[1:] + b"\xc4\x41" + stx.signature
    assert len(stx.encoded) == 173
    assert stx.hash.hex() == "489115bd4e31649131d156dd756cb23bb4bce7b9ba5da7c6f400ffe20f89c599"
