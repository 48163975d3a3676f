"""Every decoder turns any bytes into a valid object or a DecodeError, nothing else.

Three kinds of input: random bytes, valid encodings with random byte-level mutations,
and well-formed msgpack whose fields were swapped for random values (which gets past
the msgpack parser and exercises the type and range checks). Whatever decodes must
re-encode to exactly the input: one object, one encoding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from consensus.codec import DecodeError, unpack
from node.ledger.block import Block, BlockHeader, BlockSeal, LogEvent, Receipt
from node.ledger.genesis import GenesisConfig
from node.ledger.tx import SignedTransaction, decode_values, encode_values
from tests.fuzz.support import fuzz
from tests.ledger.support import ADMIN, ALICE, GOVERNOR, SEALERS, make_tx

_TXS = [
    make_tx(ALICE, "userTransfer", "alice", "bob", 2**70).tx,
    make_tx(ADMIN, "userAdd", "x", 0, "0x01").tx,
]
_HEADER = BlockHeader(5, b"\x01" * 32, 1_700_000_000_000, b"\x02" * 32, b"\x03" * 32,
                      b"\x04" * 32, 1, SEALERS, b"extra")  # fmt: skip
_BLOCK = Block.build(_HEADER, _TXS, BlockSeal(2, ((0, b"\x05" * 65), (3, b"\x06" * 65))))
_RECEIPT = Receipt(b"\x07" * 32, 5, 0, -51404, b"out",
                   (LogEvent(b"\x08" * 20, (b"\x09" * 32,), b"d"),), ALICE.address,
                   b"\x00" * 18 + b"\x50\x02")  # fmt: skip
_GENESIS = GenesisConfig(sealers=SEALERS, asset_admins=(ADMIN.address,),
                         governors=(GOVERNOR.address,), timestamp=7)  # fmt: skip


def _decode_genesis(data: bytes) -> Any:
    return GenesisConfig.decode(data)


# (decoder, re-encoder or None when the format does not insist on canonical form, samples)
DECODERS: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], bytes] | None, list[bytes]]] = {
    "tx": (SignedTransaction.decode, lambda t: t.encode(), [t.encode() for t in _TXS]),
    "header": (BlockHeader.decode, lambda h: h.encode(), [_HEADER.encode()]),
    "block": (Block.decode, lambda b: b.encode(), [_BLOCK.encode(), Block(_HEADER).encode()]),
    "receipt": (Receipt.decode, lambda r: r.encode(), [_RECEIPT.encode()]),
    "genesis": (_decode_genesis, lambda g: g.encode(), [_GENESIS.encode()]),
    "values": (decode_values, None, [encode_values(["a", 5, 2**256 - 1])]),
}
NAMES = sorted(DECODERS)


def check(name: str, data: bytes) -> None:
    decode, encode, _ = DECODERS[name]
    try:
        obj = decode(data)
    except DecodeError:
        return
    if encode is not None:
        assert encode(obj) == data


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(NAMES))
    data = bytearray(draw(st.sampled_from(DECODERS[name][2])))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "delete", "insert", "truncate", "dup"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "truncate":
            del data[pos:]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 40))]
    return name, bytes(data)


_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.sampled_from([0, 1, 2**32, 2**64 - 1, -1])
    | st.floats(allow_nan=False)
    | st.text(max_size=70)
    | st.binary(max_size=70)
    | st.sampled_from([b"\x00" * 20, b"\x00" * 32, b"\x00" * 64, b"\x00" * 65])
)
_value = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=6), max_leaves=12)


@st.composite
def field_swapped(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid sample's field list with one or two (possibly nested) fields replaced."""
    name = draw(st.sampled_from(NAMES))
    fields = unpack(draw(st.sampled_from(DECODERS[name][2])))
    for _ in range(draw(st.integers(1, 2))):
        target = fields
        while True:  # walk down into a random nested list now and then
            index = draw(st.integers(0, max(len(target) - 1, 0)))
            if not target:
                break
            if isinstance(target[index], list) and target[index] and draw(st.booleans()):
                target = target[index]
                continue
            target[index] = draw(_value)
            break
    if draw(st.booleans()) and isinstance(fields, list):
        fields = fields[: draw(st.integers(0, len(fields)))] + draw(st.lists(_value, max_size=2))
    return name, msgpack.packb(fields, use_bin_type=True)


FUZZ = fuzz(300)  # LEDGERLAB_FUZZ_EXAMPLES=N for a soak (tests/fuzz/support.py)


@FUZZ
@given(st.sampled_from(NAMES), st.binary(max_size=1500))
def test_random_bytes(name: str, data: bytes) -> None:
    check(name, data)


@FUZZ
@given(mutated())
def test_mutated_encodings(case: tuple[str, bytes]) -> None:
    check(*case)


@FUZZ
@given(field_swapped())
def test_wrong_field_values(case: tuple[str, bytes]) -> None:
    check(*case)


def test_samples_decode() -> None:
    """The seeds above are valid, so the mutations start from real encodings."""
    for name in NAMES:
        decode, encode, samples = DECODERS[name]
        for data in samples:
            obj = decode(data)
            if encode is not None:
                assert encode(obj) == data


def test_non_bytes_input() -> None:
    for name in NAMES:
        for junk in (None, 5, "text", [b"x"]):
            with contextlib.suppress(DecodeError):
                DECODERS[name][0](junk)  # type: ignore[arg-type]
