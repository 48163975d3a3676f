"""Canonical msgpack encoding and strict decoding for everything on the wire and on disk.

Objects encode as msgpack arrays of fields in a fixed order (no maps, so no key-order
ambiguity; msgpack always picks the shortest integer form), so one value has exactly one
encoding and hashes agree across nodes. Decoding turns *any* input into either the
expected shape or a :class:`DecodeError` -- never another exception -- which is what lets
a node drop a bad peer message instead of crashing on it.
"""

from __future__ import annotations

from typing import Any

import msgpack

MAX_MESSAGE_SIZE = 16 * 1024 * 1024
UINT64_MAX = 2**64 - 1


class DecodeError(ValueError):
    """Bytes that are not a valid encoding of the expected object."""


def pack(fields: Any) -> bytes:
    """Encode a tree of lists/tuples, ints, bytes, str, bool and None."""
    data: bytes = msgpack.packb(fields, use_bin_type=True)
    return data


def unpack(data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> Any:
    """Decode one msgpack value; any failure becomes a :class:`DecodeError`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise DecodeError(f"{len(data)} bytes exceeds the {max_size}-byte limit")
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=max_size,
            max_str_len=max_size,
            max_array_len=max_size,
            max_map_len=max_size // 2,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several unrelated types
        raise unpack_failure(exc) from None


def unpack_failure(exc: Exception) -> DecodeError:
    """The :class:`DecodeError` :func:`unpack` raises for what ``msgpack.unpackb`` raised
    (for a caller that calls ``unpackb`` itself with :func:`unpack`'s options)."""
    return DecodeError(f"not valid msgpack: {_why(exc)}")


def _why(exc: Exception) -> str:
    """What is wrong, in words (error messages reach RPC clients: no class names)."""
    if isinstance(exc, msgpack.ExtraData):
        return "bytes after the value"
    if isinstance(exc, msgpack.StackError):
        return "nested too deep"
    if isinstance(exc, msgpack.FormatError):
        return "a byte that starts no msgpack value"
    if isinstance(exc, UnicodeDecodeError):
        return "a string that is not UTF-8"
    text = str(exc)
    if "incomplete input" in text:
        return "truncated"
    if "exceeds" in text:
        return "a length over the limit"
    if "map key" in text:
        return "a map key that is not a string"
    return "malformed"


def expect_list(value: Any, length: int, what: str) -> list[Any]:
    """``value`` as a list of exactly ``length`` fields."""
    if not isinstance(value, list):
        raise DecodeError(f"{what}: expected a list, got {type(value).__name__}")
    if len(value) != length:
        raise DecodeError(f"{what}: expected {length} fields, got {len(value)}")
    return value


def expect_seq(value: Any, what: str, *, max_len: int) -> list[Any]:
    """``value`` as a list of at most ``max_len`` items."""
    if not isinstance(value, list):
        raise DecodeError(f"{what}: expected a list, got {type(value).__name__}")
    if len(value) > max_len:
        raise DecodeError(f"{what}: {len(value)} items exceeds {max_len}")
    return value


def expect_int(value: Any, what: str, *, lo: int = 0, hi: int = UINT64_MAX) -> int:
    """``value`` as an int in ``[lo, hi]`` (bool is not an int here)."""
    if type(value) is not int:
        raise DecodeError(f"{what}: expected an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise DecodeError(f"{what}: {value} outside [{lo}, {hi}]")
    return value


def expect_bytes(
    value: Any, what: str, *, size: int | None = None, max_len: int = 1 << 20
) -> bytes:
    """``value`` as bytes of exactly ``size`` (when given) or at most ``max_len``."""
    if type(value) is not bytes:
        raise DecodeError(f"{what}: expected bytes, got {type(value).__name__}")
    if size is not None and len(value) != size:
        raise DecodeError(f"{what}: expected {size} bytes, got {len(value)}")
    if len(value) > max_len:
        raise DecodeError(f"{what}: {len(value)} bytes exceeds {max_len}")
    return value
