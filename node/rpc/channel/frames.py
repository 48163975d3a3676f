"""FISCO BCOS 2.x channel frames: a 42-byte header, then a JSON body (docs/channel.md).

Header, network byte order (``struct "!IH32si"``): u32 length of the whole frame
including the header, u16 type, 32 bytes of ASCII seq, i32 result. The seq pairs a reply
(and a pushed receipt) with its request; the result is 0 or one of :class:`ChannelCode`.
Everything here is pure: the server (node/rpc/channel/server.py) does the I/O.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

HEADER = struct.Struct("!IH32si")
HEADER_SIZE = HEADER.size  # 42
SEQ_SIZE = 32
DEFAULT_MAX_FRAME = 2 * 1024 * 1024
"""Largest frame accepted, header included, in bytes (a raw tx is far smaller)."""


class FrameType(enum.IntEnum):
    """The frame types this node speaks (FISCO BCOS 2.x ``ChannelMessageType`` values)."""

    RPC = 0x12
    HEARTBEAT = 0x13
    HANDSHAKE = 0x14
    TOPIC_REPORT = 0x32
    TX_RECEIPT = 0x1000
    BLOCK_NOTIFY = 0x1001


class ChannelCode(enum.IntEnum):
    """The header's result field of a frame the node sends; non-zero only on errors.

    Those marked *closes* make the node close the connection after the error frame: the
    byte stream can no longer be split into frames. The others keep it open.
    """

    OK = 0
    FRAME_TOO_SHORT = 201  # closes: length < 42
    FRAME_TOO_LARGE = 202  # closes: length > the limit
    BAD_SEQ = 203  # seq not 32 printable ASCII bytes, or already waiting for a receipt
    BAD_BODY = 204  # body not UTF-8 JSON, or not the shape the type needs
    UNKNOWN_TYPE = 205  # a type the node does not serve (or a push type sent to it)
    TOO_MANY_PENDING = 206  # this connection already waits for too many receipts


CLOSES = frozenset({ChannelCode.FRAME_TOO_SHORT, ChannelCode.FRAME_TOO_LARGE})


class FrameError(ValueError):
    """A frame the node refuses; ``code`` goes in the error frame's result field."""

    def __init__(self, code: ChannelCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Header:
    length: int
    type: int
    seq: bytes
    result: int

    @property
    def body_size(self) -> int:
        return self.length - HEADER_SIZE


def parse_header(data: bytes, *, max_frame: int = DEFAULT_MAX_FRAME) -> Header:
    """The header in the first 42 bytes of ``data``; FrameError for a bad length.

    The seq is not checked here (:func:`check_seq`): a bad seq still lets the stream be
    framed, so it gets an error frame and the connection stays open.
    """
    if len(data) < HEADER_SIZE:
        raise FrameError(ChannelCode.FRAME_TOO_SHORT, f"header needs {HEADER_SIZE} bytes")
    length, kind, seq, result = HEADER.unpack_from(data)
    if length < HEADER_SIZE:
        raise FrameError(
            ChannelCode.FRAME_TOO_SHORT,
            f"frame length {length} is below the {HEADER_SIZE}-byte header",
        )
    if length > max_frame:
        raise FrameError(
            ChannelCode.FRAME_TOO_LARGE,
            f"frame length {length} exceeds the {max_frame}-byte limit",
        )
    return Header(length, kind, seq, result)


def check_seq(seq: bytes) -> None:
    """A seq is 32 printable ASCII bytes (SDKs send a UUID's 32 hex digits)."""
    if len(seq) != SEQ_SIZE or not all(0x21 <= b <= 0x7E for b in seq):
        raise FrameError(ChannelCode.BAD_SEQ, "seq must be 32 printable ASCII bytes")


def encode_frame(kind: int, seq: bytes, body: bytes, result: int = 0) -> bytes:
    """One whole frame: header + body."""
    return HEADER.pack(HEADER_SIZE + len(body), kind, seq, result) + body


__all__ = [
    "CLOSES",
    "DEFAULT_MAX_FRAME",
    "HEADER",
    "HEADER_SIZE",
    "SEQ_SIZE",
    "ChannelCode",
    "FrameError",
    "FrameType",
    "Header",
    "check_seq",
    "encode_frame",
    "parse_header",
]
