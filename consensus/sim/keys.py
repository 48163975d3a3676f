"""Sealer keys for a simulated cluster: real secp256k1 (default) or a cheap fake.

Real keys come from the run's seeded RNG, and signatures are deterministic (RFC 6979), so
a run is reproducible byte for byte. The fake scheme (a keyed hash that only the
simulator can check) keeps the same shape (64-byte keys, 65-byte signatures) and lets the
CI sweep run hundreds of scenarios in seconds; forged or corrupted signatures still fail.

Real keys share one signature memo per Simulation (:func:`memo_verifier`): all replicas
live in one process and a check is a pure function of its bytes, so each distinct
signature is recovered once and every replica's check of it is a dictionary look-up.
"""

from __future__ import annotations

import functools
import os
import random
from dataclasses import dataclass

import coincurve

from consensus.crypto import InvalidSignature, KeyPair, Signer, Verifier, hash32, recover, verify

SIGNATURE_MEMO_ENTRIES = 16_384
"""Recoveries one Simulation keeps (LRU): ~80 heights of votes at n = 100. About 410
bytes an entry (245 measured with tracemalloc for the cache's own structures and the
recovered key, plus the digest and signature objects it keeps alive): at most ~6.7 MB."""

SIGNATURE_MEMO_ENV = "LEDGERLAB_SIM_SIGNATURE_MEMO"
"""Set to ``0`` to turn the memo off (A/B timing, tests); anything else leaves it on."""


def signature_memo_enabled() -> bool:
    return os.environ.get(SIGNATURE_MEMO_ENV, "1") != "0"


def memo_verifier(entries: int = SIGNATURE_MEMO_ENTRIES) -> Verifier:
    """:func:`~consensus.crypto.verify` with a bounded memo of recoveries.

    The memo is keyed on the full (digest, signature) bytes and holds the key they
    recover to (or None when they do not recover); the expected key is compared on every
    call, so the answer is always the one a fresh :func:`verify` gives. Only for the
    simulator: a real node verifies its own signatures.
    """

    @functools.lru_cache(maxsize=entries)
    def recovered(digest: bytes, signature: bytes) -> bytes | None:
        try:
            return recover(digest, signature)
        except InvalidSignature:
            return None

    def verifier(public_key: bytes, digest: bytes, signature: bytes) -> bool:
        if type(digest) is not bytes or type(signature) is not bytes:
            return verify(public_key, digest, signature)  # unhashable or subclassed: fresh
        return recovered(digest, signature) == public_key

    verifier.cache_info = recovered.cache_info  # type: ignore[attr-defined]
    return verifier


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


def real_keys(n: int, rng: random.Random, *, memo: bool | None = None) -> SimKeys:
    """``n`` seeded secp256k1 sealers; ``memo`` (default: the environment switch) shares
    one :func:`memo_verifier` among them."""
    pairs = [KeyPair.generate(rng) for _ in range(n)]
    use_memo = signature_memo_enabled() if memo is None else memo
    return SimKeys(
        tuple(p.public_key for p in pairs),
        tuple(_real_signer(p.secret) for p in pairs),
        memo_verifier() if use_memo else verify,
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
