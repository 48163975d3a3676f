"""Pure checks of quorum certificates: block seals, prepared certificates, NewView proofs.

Nothing here holds state, so the node's block sync, the replica and the simulator's
invariant checker all call the same functions. Each returns a bool (or a reason string)
and never raises on malformed input: a bad certificate is a peer's fault, not ours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from consensus.crypto import Verifier
from consensus.messages import (
    NewView,
    PreparedCertificate,
    Proposal,
    Seal,
    Signatures,
    ViewChange,
    seal_digest,
)
from consensus.quorum import quorum

"""``verifier(public_key, digest, signature) -> bool``, injected by the caller."""


def _quorum_signed(
    sealers: Sequence[bytes],
    verifier: Verifier,
    digest: bytes,
    signatures: Signatures,
    need: int | None = None,
) -> bool:
    n = len(sealers)
    if n == 0:
        return False
    need = quorum(n) if need is None else need
    if len(signatures) < need:
        return False
    seen: set[int] = set()
    for index, signature in signatures:
        if type(index) is not int or not 0 <= index < n or index in seen:
            return False
        seen.add(index)
        if not verifier(sealers[index], digest, signature):
            return False
    return len(seen) >= need


def verify_seal(
    sealers: Sequence[bytes],
    verifier: Verifier,
    height: int,
    block_hash: bytes,
    state_root: bytes,
    seal: Any,
) -> bool:
    """True when ``seal`` holds a quorum of valid Commit signatures for this block.

    Every listed signature must be valid and from a distinct sealer, and there must be
    at least ``quorum(len(sealers))`` of them, over
    ``seal_digest(seal.view, height, seal.proposal_digest, block_hash, state_root)``.
    Anything malformed (wrong type, out-of-range index) returns False.
    """
    if not isinstance(seal, Seal):
        return False
    try:
        digest = seal_digest(seal.view, height, seal.proposal_digest, block_hash, state_root)
        return _quorum_signed(sealers, verifier, digest, seal.signatures)
    except (TypeError, ValueError, OverflowError):
        return False


def verify_certificate(
    sealers: Sequence[bytes],
    verifier: Verifier,
    cert: PreparedCertificate,
    *,
    need: int | None = None,
) -> bool:
    """True when ``cert`` carries a quorum (or ``need``) of valid Prepare signatures."""
    return _quorum_signed(sealers, verifier, cert.signed_digest, cert.signatures, need)


def select_reproposal(view_changes: Sequence[ViewChange], height: int) -> Proposal | None:
    """The proposal a NewView for ``height`` must carry, given its ViewChange proofs.

    It is the proposal of the prepared certificate for ``height`` with the highest view;
    if two certificates share that view but differ (only possible with more than f
    faulty sealers) the smaller proposal digest wins, so leader and replicas agree. None
    when no proof has a certificate for ``height``: the new leader may then propose
    anything. This is the rule that carries a possibly committed block into the new view.
    """
    best: PreparedCertificate | None = None
    for vc in view_changes:
        cert = vc.prepared
        if cert is None or cert.height != height:
            continue
        if (
            best is None
            or cert.view > best.view
            or (cert.view == best.view and cert.proposal.digest < best.proposal.digest)
        ):
            best = cert
    return best.proposal if best is not None else None


def check_new_view(
    sealers: Sequence[bytes],
    verifier: Verifier,
    message: NewView,
    *,
    leader: int,
    verified: Callable[[ViewChange], bool] | None = None,
    select: Callable[[Sequence[ViewChange], int], Proposal | None] = select_reproposal,
    need: int | None = None,
) -> str | None:
    """Why ``message`` does not justify itself, or None when it does.

    Checks structure and proofs only; the NewView's own signature and the parent of its
    proposal are the caller's business. ``verified(vc)`` may report proofs whose
    signature and certificate the caller already checked, to skip re-verifying them.
    ``need`` overrides the quorum size (only tests that break the rules use it).
    """
    n = len(sealers)
    if message.sender != leader:
        return "not the leader of its view and height"
    senders: set[int] = set()
    for vc in message.view_changes:
        if vc.view != message.view:
            return "a proof is for another view"
        if vc.height > message.height:
            return "a proof is for a later height"
        if vc.prepared is not None and (
            vc.prepared.height != vc.height or vc.prepared.view >= vc.view
        ):
            return "a proof's certificate is not for its height or an earlier view"
        if not 0 <= vc.sender < n or vc.sender in senders:
            return "a proof is from a non-sealer or repeated"
        senders.add(vc.sender)
    if len(senders) < (quorum(n) if need is None else need):
        return "fewer proofs than a quorum"
    expected = select(message.view_changes, message.height)
    got = message.proposal
    if (expected is None) != (got is None) or (
        expected is not None and got is not None and expected.digest != got.digest
    ):
        return "proposal is not the one the proofs justify"
    for vc in message.view_changes:
        if verified is not None and verified(vc):
            continue
        if not verifier(sealers[vc.sender], vc.digest, vc.signature):
            return "a proof has a bad signature"
        if vc.prepared is not None and not verify_certificate(
            sealers, verifier, vc.prepared, need=need
        ):
            return "a proof carries an invalid prepared certificate"
    return None
