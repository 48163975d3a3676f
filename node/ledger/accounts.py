"""Account and precompile addresses: 20 raw bytes inside, ``0x`` hex at the edges.

FISCO BCOS writes system contract addresses in a short form (``0x5002``, ``0x1000``);
they are ordinary 20-byte addresses with leading zeros, so :func:`parse_address`
right-aligns any shorter hex string.
"""

from __future__ import annotations

from consensus.crypto import ADDRESS_SIZE

ZERO_ADDRESS = bytes(ADDRESS_SIZE)


def parse_address(value: str | bytes | int) -> bytes:
    """A 20-byte address from raw bytes, an int, or hex (``0x5002``, 40 hex digits).

    Raises ``ValueError`` for anything that is not an address.
    """
    if isinstance(value, bytes):
        if len(value) != ADDRESS_SIZE:
            raise ValueError(f"an address is {ADDRESS_SIZE} bytes, got {len(value)}")
        return value
    if isinstance(value, bool):
        raise ValueError("an address is not a bool")
    if isinstance(value, int):
        if not 0 <= value < 1 << (8 * ADDRESS_SIZE):
            raise ValueError(f"address {value} out of range")
        return value.to_bytes(ADDRESS_SIZE, "big")
    if isinstance(value, str):
        digits = value[2:] if value[:2] in ("0x", "0X") else value
        if not digits or len(digits) > 2 * ADDRESS_SIZE:
            raise ValueError(f"not an address: {value!r}")
        try:
            number = int(digits, 16)
        except ValueError:
            raise ValueError(f"not an address: {value!r}") from None
        if not all(c in "0123456789abcdefABCDEF" for c in digits):  # int() allows '_'
            raise ValueError(f"not an address: {value!r}")
        return number.to_bytes(ADDRESS_SIZE, "big")
    raise ValueError(f"not an address: {type(value).__name__}")


def format_address(address: bytes) -> str:
    """``0x`` and 40 lower-case hex digits, the form RPC and the console print."""
    return "0x" + address.hex()
