"""Node-level P2P messages: what travels inside a transport frame.

Every frame is one kind byte followed by a msgpack body. Consensus messages are carried
opaque (the replica decodes and verifies them); the rest are the node's own traffic:
transaction gossip, fetching the transactions of a proposal, chain status and block sync.
Decoding raises only :class:`DecodeError`; the runtime drops and counts the frame and the
peer that sent it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from consensus.codec import (
    DecodeError,
    expect_bytes,
    expect_int,
    expect_list,
    expect_seq,
    pack,
    unpack,
)
from consensus.crypto import HASH_SIZE

MAX_FRAME = 16 * 1024 * 1024
MAX_TXS_PER_FRAME = 20_000
MAX_BLOCKS_PER_FRAME = 256
MAX_ITEM = 8 * 1024 * 1024


class Kind(enum.IntEnum):
    CONSENSUS = 1
    TXS = 2
    TX_REQUEST = 3
    TX_RESPONSE = 4
    STATUS = 5
    BLOCK_REQUEST = 6
    BLOCK_RESPONSE = 7


@dataclass(frozen=True, slots=True)
class Consensus:
    """An encoded consensus message, passed to the replica untouched."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Txs:
    """Gossip: raw signed transactions a client gave the sender."""

    raw: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class TxRequest:
    """Asks the proposer of block ``number`` for the transactions we lack."""

    number: int
    hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class TxResponse:
    number: int
    raw: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Status:
    """The sender's chain head; peers compare it with theirs to decide on sync."""

    height: int
    head_hash: bytes
    genesis_hash: bytes


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """Blocks ``start..end`` inclusive, sealed."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class BlockResponse:
    blocks: tuple[bytes, ...]


Message = Consensus | Txs | TxRequest | TxResponse | Status | BlockRequest | BlockResponse


def is_consensus(frame: bytes) -> bool:
    """Whether ``frame`` carries a consensus message (the transport delivers those first)."""
    return frame[:1] == _CONSENSUS_KIND


_CONSENSUS_KIND = bytes([Kind.CONSENSUS])


def encode(msg: Message) -> bytes:
    match msg:
        case Consensus(data):
            return bytes([Kind.CONSENSUS]) + data
        case Txs(raw):
            return bytes([Kind.TXS]) + pack(list(raw))
        case TxRequest(number, hashes):
            return bytes([Kind.TX_REQUEST]) + pack([number, list(hashes)])
        case TxResponse(number, raw):
            return bytes([Kind.TX_RESPONSE]) + pack([number, list(raw)])
        case Status(height, head_hash, genesis_hash):
            return bytes([Kind.STATUS]) + pack([height, head_hash, genesis_hash])
        case BlockRequest(start, end):
            return bytes([Kind.BLOCK_REQUEST]) + pack([start, end])
        case BlockResponse(blocks):
            return bytes([Kind.BLOCK_RESPONSE]) + pack(list(blocks))
    raise TypeError(f"not a node message: {msg!r}")


def _byte_items(
    value: Any, what: str, max_len: int, *, size: int | None = None
) -> tuple[bytes, ...]:
    items = expect_seq(value, what, max_len=max_len)
    # one pass for the common case (every item fits); the per-item typed error otherwise
    if size is None:
        fits = all(type(v) is bytes and len(v) <= MAX_ITEM for v in items)
    else:
        fits = size <= MAX_ITEM and all(type(v) is bytes and len(v) == size for v in items)
    if fits:
        return tuple(items)
    return tuple(expect_bytes(v, what, size=size, max_len=MAX_ITEM) for v in items)


def decode(frame: bytes) -> Message:
    """The message in ``frame``; :class:`DecodeError` for anything malformed."""
    if not frame:
        raise DecodeError("empty frame")
    try:
        kind = Kind(frame[0])
    except ValueError:
        raise DecodeError(f"unknown message kind {frame[0]}") from None
    body = frame[1:]
    if kind is Kind.CONSENSUS:
        return Consensus(bytes(body))
    fields = unpack(bytes(body), max_size=MAX_FRAME)
    if kind is Kind.TXS:
        return Txs(_byte_items(fields, "txs", MAX_TXS_PER_FRAME))
    if kind is Kind.TX_REQUEST:
        number, hashes = expect_list(fields, 2, "tx request")
        return TxRequest(
            expect_int(number, "number"),
            _byte_items(hashes, "hashes", MAX_TXS_PER_FRAME, size=HASH_SIZE),
        )
    if kind is Kind.TX_RESPONSE:
        number, raw = expect_list(fields, 2, "tx response")
        return TxResponse(expect_int(number, "number"), _byte_items(raw, "txs", MAX_TXS_PER_FRAME))
    if kind is Kind.STATUS:
        height, head, genesis = expect_list(fields, 3, "status")
        return Status(
            expect_int(height, "height"),
            expect_bytes(head, "head hash", size=HASH_SIZE),
            expect_bytes(genesis, "genesis hash", size=HASH_SIZE),
        )
    if kind is Kind.BLOCK_REQUEST:
        start, end = expect_list(fields, 2, "block request")
        start, end = expect_int(start, "start"), expect_int(end, "end")
        if end < start or end - start >= MAX_BLOCKS_PER_FRAME:
            raise DecodeError(f"block request range {start}..{end} is empty or too long")
        return BlockRequest(start, end)
    return BlockResponse(_byte_items(fields, "blocks", MAX_BLOCKS_PER_FRAME))
