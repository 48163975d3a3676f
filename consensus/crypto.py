"""The 32-byte hash and the secp256k1 keys that sign transactions and votes.

One home for both because a sealer signs its PBFT votes with the same kind of key a
client signs its transactions with. The hash is SHA3-256 (FIPS 202); FISCO BCOS uses
Keccak-256, which differs only in padding: we take the standard library's SHA3 so the
core needs no extra hashing dependency. Signatures are 65 bytes ``r || s || v``
(v = recovery id 0..3), made deterministically (RFC 6979), so the simulator can
reproduce a run byte for byte.
"""

from __future__ import annotations

import functools
import hashlib
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import coincurve

try:  # libsecp256k1 through coincurve's own cffi binding: skips its wrapper objects
    from coincurve._libsecp256k1 import ffi as _ffi
    from coincurve._libsecp256k1 import lib as _lib
    from coincurve.context import GLOBAL_CONTEXT as _GLOBAL_CONTEXT
except ImportError:  # another coincurve layout: the public API (same results, ~1.3 us slower)
    _lib = None

HASH_SIZE = 32
SIGNATURE_SIZE = 65
PUBLIC_KEY_SIZE = 64
ADDRESS_SIZE = 20
_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class InvalidSignature(ValueError):
    """A signature that is malformed or does not recover to a public key."""


def hash32(data: bytes) -> bytes:
    """SHA3-256 of ``data``: block, transaction and vote hashes all use it."""
    return hashlib.sha3_256(data).digest()


def address_of(public_key: bytes) -> bytes:
    """The account address of a 64-byte public key: the last 20 bytes of its hash."""
    return hash32(public_key)[-ADDRESS_SIZE:]


def recover(digest: bytes, signature: bytes) -> bytes:
    """The 64-byte public key that made ``signature`` over ``digest``.

    Raises :class:`InvalidSignature` for anything that is not a valid recoverable
    signature; never another exception type.
    """
    if len(digest) != HASH_SIZE:
        raise InvalidSignature(f"the digest must be {HASH_SIZE} bytes, got {len(digest)}")
    if len(signature) != SIGNATURE_SIZE:
        raise InvalidSignature(
            f"signature must be {SIGNATURE_SIZE} bytes r||s||v, got {len(signature)}"
        )
    if signature[64] > 3:
        raise InvalidSignature(f"signature recovery id v is {signature[64]}; it must be 0..3")
    if type(digest) is not bytes or type(signature) is not bytes:
        try:
            digest, signature = bytes(digest), bytes(signature)
        except (TypeError, ValueError):
            raise InvalidSignature("the digest and the signature must be bytes") from None
    if _lib is None:
        return _recover_public_api(digest, signature)
    return _recover_cffi(digest, signature)


def _recover_public_api(digest: bytes, signature: bytes) -> bytes:
    try:
        key = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except Exception as exc:  # coincurve raises ValueError or its own errors
        raise InvalidSignature(f"signature does not recover: {exc}") from None
    return key.format(compressed=False)[1:]


def _recover_cffi(digest: bytes, signature: bytes) -> bytes:
    """The calls coincurve's ``from_signature_and_message`` + ``format`` make, minus its
    Python objects (measured 34.7 -> 33.4 us per recovery). The four C buffers are
    allocated once per thread and reused (~0.4 us per call): cffi releases the GIL inside
    libsecp256k1, so buffers shared between threads would race."""
    try:
        parsed, key, out, size = _buffers.sets
    except AttributeError:
        parsed, key, out, size = _buffers.sets = (
            _ffi.new("secp256k1_ecdsa_recoverable_signature *"),
            _ffi.new("secp256k1_pubkey *"),
            _ffi.new("unsigned char[65]"),
            _ffi.new("size_t *"),
        )
    ctx = _GLOBAL_CONTEXT.ctx
    if not _lib.secp256k1_ecdsa_recoverable_signature_parse_compact(
        ctx, parsed, signature, signature[64]
    ):
        raise InvalidSignature("signature does not recover: r or s is not below the order")
    if not _lib.secp256k1_ecdsa_recover(ctx, key, parsed, digest):
        raise InvalidSignature("signature does not recover: no public key for it")
    size[0] = 65  # in: the room in ``out``; out: the length written
    _lib.secp256k1_ec_pubkey_serialize(ctx, out, size, key, _lib.SECP256K1_EC_UNCOMPRESSED)
    public: bytes = _ffi.buffer(out, 65)[1:]  # a copy: ``out`` is reused by the next call
    return public


_buffers = threading.local()
"""Per thread: the C buffers :func:`_recover_cffi` reuses."""


Verifier = Callable[[bytes, bytes, bytes], bool]
"""``verifier(public_key, digest, signature)``: what :func:`verify` is, injected where a
signature is checked (the replica, certificates, block import, the simulator)."""

Signer = Callable[[bytes], bytes]
"""``signer(digest) -> 65-byte signature``, injected into the replica."""


def verify(public_key: bytes, digest: bytes, signature: bytes) -> bool:
    """True when ``signature`` over ``digest`` was made by ``public_key``."""
    try:
        return recover(digest, signature) == public_key
    except InvalidSignature:
        return False


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A secp256k1 secret with its public key and address, ready to sign digests."""

    secret: bytes
    public_key: bytes
    address: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> KeyPair:
        private = coincurve.PrivateKey(secret)
        public = private.public_key.format(compressed=False)[1:]
        return cls(secret=bytes(secret), public_key=public, address=address_of(public))

    @classmethod
    def generate(cls, rng: random.Random | None = None) -> KeyPair:
        """A fresh key; from ``rng`` when given (tests, simulator), else the OS."""
        if rng is None:
            return cls.from_secret(coincurve.PrivateKey().secret)
        scalar = rng.randrange(1, _SECP256K1_ORDER)
        return cls.from_secret(scalar.to_bytes(32, "big"))

    def sign(self, digest: bytes) -> bytes:
        """A 65-byte recoverable signature over a 32-byte digest."""
        if len(digest) != HASH_SIZE:
            raise ValueError("sign() takes a 32-byte digest")
        return _private_key(self.secret).sign_recoverable(digest, hasher=None)


@functools.lru_cache(maxsize=4096)
def _private_key(secret: bytes) -> coincurve.PrivateKey:
    """The signing key of ``secret``, made once: making it computes the public key, which
    cost as much as the signature itself (~60 us here) on every vote and client tx."""
    return coincurve.PrivateKey(secret)
