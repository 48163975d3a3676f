"""Validators for JSON-RPC params: each returns the clean value or raises -32602.

Input rules (documented in docs/rpc.md): hex byte strings carry a ``0x`` prefix and an
even number of hex digits and nothing else (``bytes.fromhex`` alone would let spaces
through); numbers are JSON integers or ``0x`` hex / decimal strings, without whitespace;
booleans are JSON booleans. The prefix is lower-case ``0x`` only, as FISCO BCOS (whose
``jsToInt`` / ``fromHex`` read ``"0X1"`` as no hex at all) and its SDKs write it.
``True`` is never accepted where an integer is expected. Text limits are in UTF-8 bytes,
as in transactions (node/ledger/tx.py).
"""

from __future__ import annotations

from typing import Any

from node.ledger.tx import MAX_ARG_BYTES, utf8_fits
from node.rpc.errors import RpcError, invalid_params

MAX_BLOCK_NUMBER = 2**63 - 1


class OutOfRangeNumber:
    """A JSON number Python cannot hold: a float that overflows (``1e400``) or an integer
    of more than 4300 digits. The body is valid JSON (RFC 8259 sets no range), so the
    decoder yields this instead of refusing the whole body; no validator accepts it, so
    the request gets -32602 with its own id."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text if len(text) <= 24 else text[:20] + "..."

    def __repr__(self) -> str:
        return f"a number out of range ({self.text})"


def json_kind(value: Any) -> str:
    """How a JSON value is named in error messages."""
    if value is None:
        return "null"
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is float:
        return f"a non-integer number ({value!r})"
    if type(value) is OutOfRangeNumber:
        return repr(value)
    if type(value) is list:
        return "an array"
    if type(value) is dict:
        return "an object"
    return type(value).__name__


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


HEX_MAX_BYTES = 1 << 23
"""The longest hex param :func:`hex_bytes` takes unless told otherwise, in bytes."""


def hex_bytes(
    value: Any, what: str, *, size: int | None = None, max_len: int = HEX_MAX_BYTES
) -> bytes:
    """A ``0x``-prefixed hex string as bytes (exactly ``size`` bytes when given)."""
    if type(value) is not str:
        raise invalid_params(f"{what} must be a 0x-prefixed hex string")
    if not value.startswith("0x"):
        raise invalid_params(f"{what} must start with 0x (lower-case x)")
    digits = len(value) - 2
    if digits & 1:
        raise invalid_params(f"{what} has an odd number of hex digits")
    if digits > 2 * max_len:
        raise invalid_params(f"{what} is longer than {max_len} bytes")
    if size is not None and digits != 2 * size:
        raise invalid_params(f"{what} must be {size} bytes, got {digits // 2}")
    try:
        data = bytes.fromhex(value[2:])
    except ValueError:
        raise invalid_params(f"{what} is not valid hex") from None
    if 2 * len(data) != digits:  # fromhex skips whitespace; we do not
        raise invalid_params(f"{what} is not valid hex")
    return data


def hash32(value: Any, what: str = "hash") -> bytes:
    return hex_bytes(value, what, size=32)


def address(value: Any, what: str = "address") -> bytes:
    """A 20-byte address; shorter forms such as ``0x5002`` are left-padded with zeros."""
    data = hex_bytes(value, what, max_len=20)
    if not data:
        raise invalid_params(f"{what} is empty")
    return data.rjust(20, b"\0")


def uint(value: Any, what: str, *, hi: int = MAX_BLOCK_NUMBER) -> int:
    """A non-negative integer from a JSON int, a ``0x`` hex string or a decimal string."""
    if type(value) is int:
        number = value
    elif type(value) is str:
        text = value if len(value) <= 80 else ""
        try:
            if text[:2] == "0x" and len(text) > 2 and set(text[2:]) <= _HEX_DIGITS:
                number = int(text[2:], 16)
            elif text.isascii() and text.isdigit():
                number = int(text, 10)
            else:
                raise ValueError
        except ValueError:
            raise invalid_params(f"{what} must be an integer or a 0x hex string") from None
    else:
        raise invalid_params(f"{what} must be an integer or a 0x hex string")
    if not 0 <= number <= hi:
        raise invalid_params(f"{what} must be in [0, {hi}]")
    return number


def block_number(value: Any, head: int) -> int:
    """A block number; ``"latest"`` means the head and ``"earliest"`` means 0."""
    if value == "latest" and type(value) is str:
        return head
    if value == "earliest" and type(value) is str:
        return 0
    return uint(value, "block number")


def boolean(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise invalid_params(f"{what} must be true or false")
    return value


def text(value: Any, what: str, *, max_bytes: int = MAX_ARG_BYTES) -> str:
    """A non-empty string of at most ``max_bytes`` UTF-8 bytes (JSON can carry a lone
    surrogate such as ``"\\ud800"``, which has no UTF-8 form: refused too)."""
    if type(value) is not str:
        raise invalid_params(f"{what} must be a string")
    if not value or not utf8_fits(value, max_bytes):
        raise invalid_params(f"{what} must be valid UTF-8 text of 1..{max_bytes} bytes")
    return value


def arity(params: list[Any], lo: int, hi: int, usage: str) -> None:
    """Raise unless ``lo <= len(params) <= hi``.

    ``params`` are those after the group id (the dispatcher took it off); ``usage`` names
    all of them, the group included, and so does the count the message reports: the
    client sent one param more than ``params`` holds.
    """
    if not lo <= len(params) <= hi:
        got = len(params) + 1
        raise RpcError(-32602, f"Invalid params: expected {usage}, got {got} param(s)")
