"""Sealer keys for a simulated cluster: real secp256k1 (default) or a cheap fake.

Real keys come from the run's seeded RNG, and signatures are deterministic (RFC 6979), so
a run is reproducible byte for byte. The fake scheme (a keyed hash that only the
simulator can check) keeps the same shape (64-byte keys, 65-byte signatures) and lets the
CI sweep run hundreds of scenarios in seconds; forged or corrupted signatures still fail.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import coincurve

from consensus.crypto import KeyPair, Signer, Verifier, hash32, verify


@dataclass(frozen=True, slots=True)
class SimKeys:
    public_keys: tuple[bytes, ...]
    signers: tuple[Signer, ...]
    verifier: Verifier


def _real_signer(secret: bytes) -> Signer:
    key = coincurve.PrivateKey(secret)

    def sign(digest: bytes) -> bytes:
        return key.sign_recoverable(digest, hasher=None)

    return sign


def real_keys(n: int, rng: random.Random) -> SimKeys:
    pairs = [KeyPair.generate(rng) for _ in range(n)]
    return SimKeys(
        tuple(p.public_key for p in pairs), tuple(_real_signer(p.secret) for p in pairs), verify
    )


def fake_keys(n: int, rng: random.Random) -> SimKeys:
    secrets = [rng.randbytes(32) for _ in range(n)]
    publics = tuple(hash32(b"pub" + s) + hash32(b"pub2" + s) for s in secrets)
    by_public = dict(zip(publics, secrets, strict=True))

    def mac(secret: bytes, digest: bytes) -> bytes:
        return hash32(secret + digest) + hash32(digest + secret) + b"\x00"

    def signer_for(secret: bytes) -> Signer:
        return lambda digest: mac(secret, digest)

    def verifier(public_key: bytes, digest: bytes, signature: bytes) -> bool:
        secret = by_public.get(public_key)
        return secret is not None and mac(secret, digest) == signature

    return SimKeys(publics, tuple(signer_for(s) for s in secrets), verifier)
