"""``wire.decode`` checks every byte item of a frame (one fast pass, the typed error
naming what is wrong otherwise)."""

from __future__ import annotations

import pytest

from consensus.codec import DecodeError, pack
from node.runtime import wire


def frame(kind: wire.Kind, fields: object) -> bytes:
    return bytes([kind]) + pack(fields)


def test_good_frames_decode_to_their_items() -> None:
    raws = (b"\x01" * 40, b"\x02" * 7)
    assert wire.decode(wire.encode(wire.Txs(raws))) == wire.Txs(raws)
    hashes = (b"\x03" * 32, b"\x04" * 32)
    assert wire.decode(wire.encode(wire.TxRequest(9, hashes))) == wire.TxRequest(9, hashes)


@pytest.mark.parametrize(
    "data,message",
    [
        (frame(wire.Kind.TXS, [b"ok", "text", b"ok"]), "txs: expected bytes, got str"),
        (frame(wire.Kind.TX_REQUEST, [1, [b"\x01" * 32, b"\x01" * 31]]), "expected 32 bytes"),
        (frame(wire.Kind.TX_RESPONSE, [1, [b"ok", 5]]), "txs: expected bytes, got int"),
    ],
)
def test_a_bad_item_is_refused_with_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        wire.decode(data)
