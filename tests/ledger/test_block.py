"""Block headers, seals, blocks, receipts and the Merkle root."""

from __future__ import annotations

import hashlib

import msgpack
import pytest

from consensus.codec import DecodeError, pack, unpack
from consensus.crypto import hash32
from node.ledger.block import (
    EMPTY_ROOT,
    MAX_EXTRA_DATA,
    NO_SEAL,
    Block,
    BlockHeader,
    BlockSeal,
    LogEvent,
    Receipt,
    merkle_root,
)
from tests.ledger.support import ALICE, BOB, SEALERS, make_tx


def header(**kw: object) -> BlockHeader:
    fields: dict[str, object] = dict(
        number=7,
        parent_hash=b"\x01" * 32,
        timestamp=1_700_000_000_123,
        tx_root=b"\x02" * 32,
        receipt_root=b"\x03" * 32,
        state_root=b"\x04" * 32,
        sealer=2,
        sealer_list=SEALERS,
        extra_data=b"hello",
    )
    fields.update(kw)
    return BlockHeader(**fields)  # type: ignore[arg-type]


def sig(i: int) -> bytes:
    return bytes([i]) * 65


# ------------------------------------------------------------------ Merkle


def node(a: bytes, b: bytes) -> bytes:
    return hashlib.sha3_256(b"\x01" + a + b).digest()


def test_merkle_documented_shapes() -> None:
    a, b, c = b"a" * 32, b"b" * 32, b"c" * 32
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha3_256(b"").digest()
    assert merkle_root([a]) == a
    assert merkle_root([a, b]) == node(a, b)
    # An odd node is carried up unchanged, not duplicated.
    assert merkle_root([a, b, c]) == node(node(a, b), c)
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])
    assert merkle_root([a, b]) != merkle_root([b, a])


def test_merkle_five() -> None:
    xs = [bytes([i]) * 32 for i in range(5)]
    assert merkle_root(xs) == node(node(node(xs[0], xs[1]), node(xs[2], xs[3])), xs[4])


def test_merkle_rejects_non_hash_leaves() -> None:
    for bad in ([b"short"], [b"a" * 32, "b" * 32], [b"a" * 33]):
        with pytest.raises(ValueError):
            merkle_root(bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------ header and seal


def test_header_round_trip_and_hash() -> None:
    h = header()
    assert BlockHeader.decode(h.encode()) == h
    assert h.hash == hash32(h.encode())
    assert unpack(h.encode()) == [
        0, 7, b"\x01" * 32, 1_700_000_000_123, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, 2,
        list(SEALERS), b"hello",
    ]  # fmt: skip
    assert header(timestamp=1).hash != h.hash


@pytest.mark.parametrize(
    "kw",
    [
        dict(number=-1),
        dict(parent_hash=b"\x00" * 31),
        dict(sealer=4),  # only 4 sealers
        dict(sealer_list=[b"\x00" * 63]),
        dict(extra_data=b"x" * (MAX_EXTRA_DATA + 1)),
        dict(timestamp=2**64),
    ],
)
def test_header_validates(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        header(**kw)


def test_genesis_style_header_without_sealers() -> None:
    h = header(sealer=0, sealer_list=())
    assert BlockHeader.decode(h.encode()) == h


def test_seal_validates_order_and_size() -> None:
    BlockSeal(3, ((0, sig(0)), (2, sig(2))))
    for bad in (((2, sig(2)), (0, sig(0))), ((1, sig(1)), (1, sig(1))), ((0, b"x"),), (5,)):
        with pytest.raises(ValueError):
            BlockSeal(0, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        BlockSeal(-1, ())


# ------------------------------------------------------------------ block


def test_block_round_trip_and_seal_outside_the_hash() -> None:
    txs = [make_tx(ALICE, "userAdd", "a", 1).tx, make_tx(BOB, "userAdd", "b", 2).tx]
    h = header(tx_root=merkle_root([t.hash for t in txs]))
    block = Block.build(h, txs)
    assert block.seal == NO_SEAL
    sealed = block.with_seal(BlockSeal(5, ((0, sig(0)), (3, sig(3)))))
    assert sealed == Block(h, block.transactions, BlockSeal(5, ((0, sig(0)), (3, sig(3)))))
    assert sealed.hash == block.hash == h.hash
    for b in (block, sealed):
        again = Block.decode(b.encode())
        assert again == b and again.encode() == b.encode()
    assert sealed.tx_root_matches()
    assert sealed.tx_hashes() == [t.hash for t in txs]
    assert sealed.decode_transactions() == txs
    assert not Block(header(), sealed.transactions).tx_root_matches()


def test_block_layout() -> None:
    block = Block(header(), (b"\x01\x02",), BlockSeal(1, ((2, sig(2)),)))
    assert unpack(block.encode()) == [0, header().encode(), [b"\x01\x02"], [1, [[2, sig(2)]]]]


def test_block_decode_errors() -> None:
    good = unpack(Block(header(), (), BlockSeal(1, ((2, sig(2)),))).encode())
    cases = [
        good[:3],
        [1, *good[1:]],
        [good[0], b"junk", good[2], good[3]],
        [good[0], good[1], [b""], good[3]],
        [good[0], good[1], [5], good[3]],
        [good[0], good[1], good[2], [1, [[2, sig(2)], [1, sig(1)]]]],
        [good[0], good[1], good[2], [1]],
    ]
    for fields in cases:
        with pytest.raises(DecodeError):
            Block.decode(msgpack.packb(fields, use_bin_type=True))
    with pytest.raises(DecodeError):
        Block.decode("text")  # type: ignore[arg-type]


def test_undecodable_transaction_bytes_surface_at_decode_transactions() -> None:
    block = Block(header(), (b"\x01\x02",))
    assert Block.decode(block.encode()) == block
    with pytest.raises(DecodeError):
        block.decode_transactions()


# ------------------------------------------------------------------ receipt


def receipt(**kw: object) -> Receipt:
    fields: dict[str, object] = dict(
        tx_hash=b"\x09" * 32,
        block_number=3,
        index=1,
        status=-51404,
        output=b"out",
        events=(LogEvent(b"\x05" * 20, (b"\x06" * 32,), b"data"),),
        sender=ALICE.address,
        to=b"\x00" * 18 + b"\x50\x02",
    )
    fields.update(kw)
    return Receipt(**fields)  # type: ignore[arg-type]


def test_receipt_round_trip() -> None:
    for r in (receipt(), receipt(status=0, output=b"", events=())):
        assert Receipt.decode(r.encode()) == r
        assert r.hash == hash32(r.encode())
    assert receipt(status=0).ok and not receipt().ok


def test_receipt_decode_errors() -> None:
    good = unpack(receipt().encode())
    for index, value in [
        (4, 2**31),
        (4, "0"),
        (5, b"x" * 5000),
        (6, [[b"\x05" * 20, [b"\x06" * 32] * 5, b""]]),
        (6, [[b"\x05" * 19, [], b""]]),
        (7, b"\x00" * 21),
    ]:
        fields = list(good)
        fields[index] = value
        with pytest.raises(DecodeError):
            Receipt.decode(pack(fields))


def test_event_validates() -> None:
    with pytest.raises(ValueError):
        LogEvent(b"\x00" * 20, (b"\x00" * 31,))
    with pytest.raises(ValueError):
        LogEvent(b"\x00" * 20, (b"\x00" * 32,) * 5)
