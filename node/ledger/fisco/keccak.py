"""Keccak-256 (the pre-FIPS padding FISCO BCOS and Ethereum use) and FISCO addresses.

``hashlib`` has only FIPS 202 SHA3-256, which pads differently. ``safe-pysha3`` is a
maintained C extension with hashlib's interface: ~1.4 us per short hash here, against
~5 us for pycryptodome's ``Crypto.Hash.keccak`` (whose per-call setup dominates).
"""

from __future__ import annotations

import sha3  # safe-pysha3

_keccak = sha3.keccak_256


def keccak256(data: bytes) -> bytes:
    """Keccak-256 of ``data`` (32 bytes)."""
    digest: bytes = _keccak(data).digest()
    return digest


def fisco_address(public_key: bytes) -> bytes:
    """The FISCO BCOS address of a 64-byte public key: the last 20 bytes of its Keccak-256.

    The same key has another address in ledgerlab's native format (SHA3-256): see
    docs/fisco-format.md, "Identities".
    """
    if len(public_key) != 64:
        raise ValueError("a public key is 64 bytes (X || Y)")
    return keccak256(public_key)[12:]
