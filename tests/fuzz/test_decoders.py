"""Every byte decoder a peer or client reaches: a value or its DecodeError, nothing else.

Extends tests/ledger/test_decoders_fuzz.py (random bytes, byte flips and field swaps on
the ledger codecs) and tests/consensus/test_messages.py (random and flipped consensus
messages) with the decoders they do not cover (proposal bodies, node wire messages,
call data, seals, persisted consensus state, a block's inner transactions) and with the
mutations of :mod:`tests.fuzz.support` for all of them: boundary integers and sizes,
other msgpack types, headers claiming 4 GiB, nesting thousands deep, and non-canonical
re-encodings of valid objects, which every decoder that promises one encoding per
object must refuse.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus import PersistedState
from consensus.codec import DecodeError
from consensus.messages import Seal, decode_message, encode_message
from node.ledger.block import Block
from node.ledger.chain import ProposalBody
from node.rpc.calldata import decode_call, encode_call
from node.runtime import wire
from tests.consensus import helpers as ct
from tests.consensus.test_messages import all_messages
from tests.fuzz.support import fuzz, inputs, noncanonical, time_limit
from tests.ledger.test_decoders_fuzz import DECODERS as LEDGER


@dataclass(frozen=True)
class Decoder:
    decode: Callable[[bytes], Any]
    samples: list[bytes]
    encode: Callable[[Any], bytes] | None = None
    """Re-encoder when the format promises one encoding per object (None: it does not)."""
    prefix: bytes = b""
    """Bytes before the msgpack body (the wire kind byte); mutations keep it."""


def _proposal_samples() -> list[bytes]:
    return [
        ProposalBody(1_700_000_000_000, 3, (b"\x01" * 32, b"\x02" * 32)).encode(),
        ProposalBody(0, 0, ()).encode(),
        ProposalBody(2**64 - 1, 1 << 16, (b"\xff" * 32,)).encode(),
    ]


def _persisted_samples() -> list[bytes]:
    p = ct.proposal(2)
    cert = ct.certificate(4, 3, p, [0, 1, 3])
    return [
        PersistedState(3, cert, signed=(3, 2)).encode(),
        PersistedState(0).encode(),
        PersistedState(7, None, signed=(-1, 9)).encode(),
    ]


def _seal_samples() -> list[bytes]:
    p = ct.proposal(7)
    sigs = tuple((i, ct.commit(4, i, 2, p).signature) for i in (0, 2, 3))
    return [Seal(2, p.digest, sigs).encode(), Seal(0, bytes(32), ()).encode()]


_BLOCKS = LEDGER["block"][2]
_TX_RAW = LEDGER["tx"][2]
_WIRE = {
    wire.Kind.TXS: wire.Txs(tuple(_TX_RAW)),
    wire.Kind.TX_REQUEST: wire.TxRequest(5, (b"\x01" * 32, b"\x02" * 32)),
    wire.Kind.TX_RESPONSE: wire.TxResponse(5, tuple(_TX_RAW)),
    wire.Kind.STATUS: wire.Status(9, b"\x03" * 32, b"\x04" * 32),
    wire.Kind.BLOCK_REQUEST: wire.BlockRequest(3, 66),
    wire.Kind.BLOCK_RESPONSE: wire.BlockResponse(tuple(_BLOCKS)),
}


def _wire_stable(msg: wire.Message) -> bytes:
    """Node messages need not be canonical (nothing hashes them), but what decodes must
    survive a round trip unchanged."""
    again = wire.decode(wire.encode(msg))
    assert again == msg
    return wire.encode(msg)


def _decode_block_txs(data: bytes) -> Any:
    return Block.decode(data).decode_transactions()


DECODERS: dict[str, Decoder] = {
    "proposal": Decoder(ProposalBody.decode, _proposal_samples(), lambda b: b.encode()),
    "calldata": Decoder(
        decode_call,
        [encode_call("userTransfer", ["alice", "bob", 2**256 - 1]), encode_call("x", [])],
        None,  # read-only input of `call`: any msgpack form of the values is accepted
    ),
    "consensus": Decoder(
        decode_message,
        [encode_message(m) for m in all_messages()],
        None,  # type: ignore[arg-type]
    ),
    "seal": Decoder(Seal.decode, _seal_samples(), None),  # the sans-I/O replica's own form
    "persisted_state": Decoder(PersistedState.decode, _persisted_samples(), None),
    "block_txs": Decoder(_decode_block_txs, _BLOCKS, None),
    **{
        f"ledger_{name}": Decoder(decode, samples, encode)
        for name, (decode, encode, samples) in LEDGER.items()
    },
    **{
        f"wire_{kind.name.lower()}": Decoder(
            wire.decode, [wire.encode(msg)[1:]], None, prefix=bytes([kind])
        )
        for kind, msg in _WIRE.items()
    },
}
NAMES = sorted(DECODERS)
CANONICAL = sorted(n for n in NAMES if DECODERS[n].encode is not None)


def check(name: str, body: bytes) -> None:
    d = DECODERS[name]
    data = d.prefix + body
    try:
        obj = d.decode(data)
    except DecodeError:
        return
    if d.encode is not None:
        assert d.encode(obj) == data, "a non-canonical encoding was accepted"
    elif name.startswith("wire_"):
        _wire_stable(obj)
    elif name == "consensus":
        assert decode_message(obj.encode()) == obj
    elif name == "seal":
        assert Seal.decode(obj.encode()) == obj
    elif name == "calldata":
        assert decode_call(encode_call(*obj)) == obj
    elif name == "persisted_state":
        assert PersistedState.decode(obj.encode()) == obj


@st.composite
def case(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(NAMES))
    return name, draw(inputs(DECODERS[name].samples))


@st.composite
def wide_case(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(CANONICAL))
    return name, draw(st.sampled_from(DECODERS[name].samples).flatmap(noncanonical))


@pytest.mark.timeout(time_limit(120))
@fuzz(600)
@given(case())
def test_any_input_gives_a_value_or_decode_error(c: tuple[str, bytes]) -> None:
    check(*c)


@pytest.mark.timeout(time_limit(120))
@fuzz(300)
@given(wide_case())
def test_non_canonical_encodings_of_valid_objects_are_refused(c: tuple[str, bytes]) -> None:
    name, data = c
    with pytest.raises(DecodeError):
        DECODERS[name].decode(DECODERS[name].prefix + data)


@pytest.mark.timeout(time_limit(60))
@fuzz(200)
@given(st.sampled_from(sorted(_WIRE)), st.sampled_from(list(wire.Kind)) | st.integers(0, 255))
def test_a_body_under_another_kind_byte(kind: wire.Kind, other: int) -> None:
    """A frame's kind byte changed: the body is read as another message, or refused."""
    body = wire.encode(_WIRE[kind])[1:]
    try:
        msg = wire.decode(bytes([other]) + body)
    except DecodeError:
        return
    _wire_stable(msg)


@pytest.mark.parametrize("name", NAMES)
def test_samples_are_valid(name: str) -> None:
    """The seeds decode, so the mutations start from real encodings."""
    d = DECODERS[name]
    for body in d.samples:
        obj = d.decode(d.prefix + body)
        if d.encode is not None:
            assert d.encode(obj) == d.prefix + body


@pytest.mark.parametrize("name", NAMES)
def test_inputs_that_are_not_bytes(name: str) -> None:
    """Not bytes at all is the caller's bug (a DecodeError or TypeError); a bytearray or
    memoryview is bytes."""
    decode = DECODERS[name].decode
    for junk in (None, 5, "text", [b"x"]):
        with contextlib.suppress(DecodeError, TypeError):
            decode(junk)  # type: ignore[arg-type]
    for sample in DECODERS[name].samples[:1]:
        data = DECODERS[name].prefix + sample
        for view in (bytearray(data), memoryview(data), bytearray(b"\x90"), memoryview(b"")):
            with contextlib.suppress(DecodeError):
                decode(view)  # type: ignore[arg-type]
