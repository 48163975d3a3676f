"""Shared fixtures for consensus tests: deterministic real keys and message builders."""

from __future__ import annotations

import random
from functools import cache

from consensus.crypto import KeyPair, verify
from consensus.messages import (
    Commit,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    Proposal,
    ViewChange,
    commit_digest,
    prepare_digest,
    preprepare_digest,
    viewchange_digest,
)

H0 = bytes(32)


@cache
def keys(n: int) -> tuple[KeyPair, ...]:
    rng = random.Random(f"consensus-test-keys-{n}")
    return tuple(KeyPair.generate(rng) for _ in range(n))


def sealers(n: int) -> list[bytes]:
    return [k.public_key for k in keys(n)]


def proposal(height: int = 1, payload: bytes = b"txs", parent: bytes = H0) -> Proposal:
    return Proposal(height, parent, payload)


def preprepare(n: int, sender: int, view: int, p: Proposal) -> PrePrepare:
    sig = keys(n)[sender].sign(preprepare_digest(view, p.height, p.digest))
    return PrePrepare(view, p, sender, sig)


def block_of(p: Proposal) -> tuple[bytes, bytes]:
    from consensus.crypto import hash32

    return hash32(b"block" + p.digest), hash32(b"root" + p.digest)


def prepare(n: int, sender: int, view: int, p: Proposal) -> Prepare:
    bh, sr = block_of(p)
    sig = keys(n)[sender].sign(prepare_digest(view, p.height, p.digest, bh, sr))
    return Prepare(view, p.height, p.digest, bh, sr, sender, sig)


def commit(n: int, sender: int, view: int, p: Proposal) -> Commit:
    bh, sr = block_of(p)
    sig = keys(n)[sender].sign(commit_digest(view, p.height, p.digest, bh, sr))
    return Commit(view, p.height, p.digest, bh, sr, sender, sig)


def certificate(n: int, view: int, p: Proposal, signers: list[int]) -> PreparedCertificate:
    bh, sr = block_of(p)
    d = prepare_digest(view, p.height, p.digest, bh, sr)
    return PreparedCertificate(view, p, bh, sr, tuple((i, keys(n)[i].sign(d)) for i in signers))


def view_change(
    n: int, sender: int, view: int, height: int, cert: PreparedCertificate | None = None
) -> ViewChange:
    sig = keys(n)[sender].sign(viewchange_digest(view, height, cert.digest if cert else None))
    return ViewChange(view, height, cert, sender, sig)


def new_view(
    n: int, sender: int, view: int, height: int, vcs: list[ViewChange], p: Proposal | None
) -> NewView:
    unsigned = NewView(view, height, tuple(vcs), p, sender, bytes(65))
    return NewView(view, height, tuple(vcs), p, sender, keys(n)[sender].sign(unsigned.digest))


VERIFY = verify
