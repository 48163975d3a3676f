"""Strict RLP for one flat list of byte strings (what a FISCO 2.x transaction is).

Only the canonical encoding is accepted: :func:`decode_flat_list` checks that every
header is the one re-encoding would write (the same as re-encoding and comparing, and
tested against pyrlp's re-encoding), so a single byte below 0x80 wrapped in a header, a
long-form length under 56, a length with leading zero bytes, a nested list or trailing
bytes are all refused with :class:`RlpError`. Integers (:func:`decode_uint`) must be
minimal big-endian (no leading zero byte; zero is the empty string), as every FISCO SDK
writes them.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.codec import DecodeError


class RlpError(DecodeError):
    """Not the canonical RLP of a flat list of byte strings."""


def list_header(payload_length: int) -> bytes:
    """The header of a list whose items take ``payload_length`` bytes."""
    return _header(payload_length, 0xC0)


def _header(length: int, short: int) -> bytes:
    if length < 56:
        return bytes((short + length,))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((short + 55 + len(size),)) + size


def encode_bytes(item: bytes) -> bytes:
    """The RLP of one byte string."""
    if len(item) == 1 and item[0] < 0x80:
        return item
    return _header(len(item), 0x80) + item


def encode_flat_list(items: Sequence[bytes]) -> bytes:
    """The RLP of a list of byte strings."""
    payload = b"".join([encode_bytes(i) for i in items])
    return list_header(len(payload)) + payload


def encode_uint(value: int) -> bytes:
    """A non-negative int as minimal big-endian bytes (0 -> b"")."""
    if value < 0:
        raise ValueError("RLP integers are non-negative")
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def decode_uint(item: bytes, what: str, max_bytes: int = 32) -> int:
    """An int from minimal big-endian bytes of at most ``max_bytes``; RlpError otherwise."""
    if len(item) > max_bytes:
        raise RlpError(f"{what}: {len(item)} bytes, more than {max_bytes}")
    if item[:1] == b"\x00":
        raise RlpError(f"{what}: integer with a leading zero byte")
    return int.from_bytes(item, "big")


def _length(data: bytes, pos: int, size: int, end: int) -> int:
    if pos + size > end:
        raise RlpError("truncated length")
    return int.from_bytes(data[pos : pos + size], "big")


def decode_flat_list(data: bytes, *, max_items: int) -> tuple[list[bytes], list[int]]:
    """The byte strings of the list ``data`` encodes, and where each one's encoding starts.

    ``starts[i]`` is the offset of item ``i``'s header in ``data`` and ``starts[-1]`` the
    end, so ``data[starts[0]:starts[k]]`` is the payload of the first ``k`` items (the
    caller hashes a prefix of the list without encoding it again). RlpError unless
    ``data`` is the canonical encoding: each header is checked to be the one encoding
    would write (a single byte below 0x80 bare, the short form below 56 bytes, long-form
    lengths without leading zeros), which is the same as re-encoding and comparing
    (tests/ledger/test_fisco_tx.py holds it against pyrlp's re-encoding).
    """
    end = len(data)
    if not end or data[0] < 0xC0:
        raise RlpError("not an RLP list")
    first = data[0]
    if first <= 0xF7:
        pos, length = 1, first - 0xC0
    else:
        size = first - 0xF7
        pos, length = 1 + size, _length(data, 1, size, end)
        if data[1] == 0 or length < 56:
            raise RlpError("not the canonical encoding (list length in long form)")
    if pos + length != end:
        raise RlpError("list length does not match the data (truncated or trailing bytes)")
    items: list[bytes] = []
    starts: list[int] = []
    while pos < end:
        if len(items) == max_items:
            raise RlpError(f"more than {max_items} items")
        starts.append(pos)
        b = data[pos]
        if b < 0x80:
            items.append(data[pos : pos + 1])
            pos += 1
            continue
        if b <= 0xB7:
            start, size = pos + 1, b - 0x80
            if size == 1 and start < end and data[start] < 0x80:
                raise RlpError("not the canonical encoding (a byte below 0x80 with a header)")
        elif b < 0xC0:
            n = b - 0xB7
            start, size = pos + 1 + n, _length(data, pos + 1, n, end)
            if data[pos + 1] == 0 or size < 56:
                raise RlpError("not the canonical encoding (string length in long form)")
        else:
            raise RlpError("nested list where a byte string belongs")
        if start + size > end:
            raise RlpError("truncated item")
        items.append(data[start : start + size])
        pos = start + size
    starts.append(end)
    return items, starts
