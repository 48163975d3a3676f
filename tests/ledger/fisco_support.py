"""Independent builders of FISCO BCOS 2.x transactions and calldata for the tests.

Only PyPI libraries other than ledgerlab's own code: ``rlp`` for the encoding,
``eth-hash`` (pycryptodome backend) for Keccak-256, ``eth-keys`` with its pure-Python
backend for signing and addresses (ledgerlab signs with coincurve), ``eth-abi`` for
calldata. Nothing here imports ledgerlab's FISCO encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import eth_abi
import rlp
from eth_hash.backends import pycryptodome as keccak_backend
from eth_keys import KeyAPI
from eth_keys.backends import NativeECCBackend

KEYS = KeyAPI(NativeECCBackend)
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DAG = bytes(18) + b"\x50\x02"
SYS = bytes(18) + b"\x10\x00"
CONSENSUS = bytes(18) + b"\x10\x03"


def keccak(data: bytes) -> bytes:
    return keccak_backend.keccak256(data)


def selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


def calldata(signature: str, *args: Any) -> bytes:
    """Solidity calldata of ``signature(args)`` by eth-abi."""
    types = signature[signature.index("(") + 1 : -1]
    kinds = [t for t in types.split(",") if t]
    return selector(signature) + eth_abi.encode(kinds, list(args))


def address_of(secret: bytes) -> bytes:
    return KEYS.PrivateKey(secret).public_key.to_canonical_address()


def unsigned_fields(
    *,
    data: bytes,
    block_limit: int,
    to: bytes = DAG,
    randomid: int = 123456789,
    gas_price: int = 30_000_000,
    gas_limit: int = 30_000_000,
    value: int = 0,
    chain_id: int = 1,
    group_id: int = 1,
    extra_data: bytes = b"",
) -> list[Any]:
    return [
        randomid,
        gas_price,
        gas_limit,
        block_limit,
        to,
        value,
        data,
        chain_id,
        group_id,
        extra_data,
    ]


def sign_fields(secret: bytes, fields: Sequence[Any]) -> tuple[int, int, int]:
    """``(v, r, s)`` over Keccak-256 of the RLP of ``fields``, low-s, v = recid + 27."""
    digest = keccak(rlp.encode(list(fields)))
    sig = KEYS.PrivateKey(secret).sign_msg_hash(digest)
    v, r, s = sig.v, sig.r, sig.s
    if s > N // 2:  # normalise whatever the backend produced
        s, v = N - s, v ^ 1
    return v + 27, r, s


def fisco_tx(secret: bytes, **kw: Any) -> bytes:
    """A signed FISCO 2.x transaction (13-item RLP list)."""
    fields = unsigned_fields(**kw)
    return rlp.encode([*fields, *sign_fields(secret, fields)])


def encode_items(items: Sequence[Any]) -> bytes:
    """RLP of arbitrary items (to build deliberately wrong transactions)."""
    return rlp.encode(list(items))


def list_of_encoded(encoded_items: Sequence[bytes]) -> bytes:
    """An RLP list around items given already encoded (possibly non-canonically)."""
    payload = b"".join(encoded_items)
    return rlp.codec.length_prefix(len(payload), 0xC0) + payload
