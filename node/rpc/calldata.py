"""Call data: how a ``(method, args)`` call travels as the ``data``/``input`` bytes of RPC.

ledgerlab transactions carry a method name and arguments instead of ABI-encoded input,
so the RPC layer defines one byte form for them: the msgpack array
``[method, arg, ...]`` with arguments in their transaction wire form (strings as msgpack
str, uint256 numbers as 32 big-endian bytes), i.e. ``node.ledger.tx.encode_values``. The
``call`` method's ``data`` and the ``input`` of transactions and receipts use it; the
client builds it with :func:`encode_call`.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.codec import DecodeError
from node.ledger.tx import (
    MAX_ARGS,
    MAX_NAME_BYTES,
    Arg,
    check_name,
    decode_values,
    encode_values,
    utf8_fits,
)


def encode_call(method: str, args: Sequence[Arg] = ()) -> bytes:
    """The call data of ``method(*args)``; ValueError for a bad method or argument."""
    check_name(method, "method")
    if len(args) > MAX_ARGS:
        raise ValueError(f"more than {MAX_ARGS} arguments")
    return encode_values([method, *args])


def decode_call(data: bytes) -> tuple[str, tuple[Arg, ...]]:
    """``(method, args)`` from call data; :class:`DecodeError` for anything malformed."""
    values = decode_values(data, max_items=MAX_ARGS + 1)
    if not values or type(values[0]) is not str or not values[0]:
        raise DecodeError("call data must start with a method name")
    if not utf8_fits(values[0], MAX_NAME_BYTES):
        raise DecodeError(f"call data: method name longer than {MAX_NAME_BYTES} UTF-8 bytes")
    return values[0], values[1:]
