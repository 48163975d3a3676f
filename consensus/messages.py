"""PBFT wire objects: proposals, certificates, seals and the five consensus messages.

Every object is a frozen, slotted dataclass that encodes as a msgpack array in a fixed
field order (:mod:`consensus.codec`), so one value has one encoding. :func:`decode_message`
turns any bytes into a message or raises :class:`~consensus.codec.DecodeError`, nothing
else. Each message carries the index of the sealer that signed it and a 65-byte signature
over its *signed digest*; the digest functions below are the documented signing formats
(docs/consensus.md lists them). A digest never includes the sender index: a signature is
checked against ``sealers[sender]``, so a changed index simply fails verification.

The Commit digest doubles as the block seal digest: the quorum of Commit signatures that
made a replica *commit* is the seal stored with the block, and
:func:`consensus.certs.verify_seal` checks them with nothing but the sealer list. (A quorum
of Prepares is not enough: a block can gather one in a view and still be replaced in the
next, so only Commits prove that a block was decided.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from consensus.codec import (
    DecodeError,
    expect_bytes,
    expect_int,
    expect_list,
    expect_seq,
    pack,
    unpack,
)
from consensus.crypto import HASH_SIZE, SIGNATURE_SIZE, hash32

MAX_PAYLOAD_SIZE = 8 * 1024 * 1024
"""Largest proposal payload :func:`decode_message` accepts (the replica may set less)."""
MAX_SEALERS = 256
"""Most sealers a chain may have: the bound of every sealer index and list decoded."""
"""Largest signature list or view-change set a decoder accepts."""

_TAG = "ledgerlab/pbft/1/"
TAG_PROPOSAL = _TAG + "proposal"
TAG_PREPARE = _TAG + "prepare"
TAG_COMMIT = _TAG + "commit"
TAG_PREPREPARE = _TAG + "preprepare"
TAG_VIEWCHANGE = _TAG + "viewchange"
TAG_NEWVIEW = _TAG + "newview"
TAG_CERTIFICATE = _TAG + "certificate"

KIND_PREPREPARE = 1
KIND_PREPARE = 2
KIND_COMMIT = 3
KIND_VIEWCHANGE = 4
KIND_NEWVIEW = 5

Signatures = tuple[tuple[int, bytes], ...]


# -- signed digests (the signing formats) ---------------------------------------------


def proposal_digest(height: int, parent_hash: bytes, payload: bytes) -> bytes:
    """``hash32(pack(["ledgerlab/pbft/1/proposal", height, parent_hash, payload]))``."""
    return hash32(pack([TAG_PROPOSAL, height, parent_hash, payload]))


def prepare_digest(
    view: int, height: int, proposal_digest: bytes, block_hash: bytes, state_root: bytes
) -> bytes:
    """What a Prepare signs, and so what a prepared certificate's signatures cover.

    ``hash32(pack(["ledgerlab/pbft/1/prepare", view, height, proposal_digest,
    block_hash, state_root]))``. The proposal digest binds the executed block to the
    exact proposal, so a prepared certificate can be checked without re-executing it.
    """
    return hash32(pack([TAG_PREPARE, view, height, proposal_digest, block_hash, state_root]))


def commit_digest(
    view: int, height: int, proposal_digest: bytes, block_hash: bytes, state_root: bytes
) -> bytes:
    """What a Commit signs: like :func:`prepare_digest` under the ``.../commit`` tag."""
    return hash32(pack([TAG_COMMIT, view, height, proposal_digest, block_hash, state_root]))


def seal_digest(
    view: int, height: int, proposal_digest: bytes, block_hash: bytes, state_root: bytes
) -> bytes:
    """What every seal signature covers: the Commit digest (see the module docstring)."""
    return commit_digest(view, height, proposal_digest, block_hash, state_root)


def preprepare_digest(view: int, height: int, proposal_digest: bytes) -> bytes:
    """What a leader signs to propose: ``[".../preprepare", view, height, proposal_digest]``."""
    return hash32(pack([TAG_PREPREPARE, view, height, proposal_digest]))


def viewchange_digest(view: int, height: int, certificate_digest: bytes | None) -> bytes:
    """What a ViewChange signs: ``[".../viewchange", new_view, height, cert digest or nil]``."""
    return hash32(pack([TAG_VIEWCHANGE, view, height, certificate_digest]))


def newview_digest(
    view: int, height: int, proofs: list[list[Any]], proposal_digest: bytes | None
) -> bytes:
    """What a NewView signs: the view, height, ``[[sender, vc digest], ...]``, proposal."""
    return hash32(pack([TAG_NEWVIEW, view, height, proofs, proposal_digest]))


# -- helpers ------------------------------------------------------------------------------


def _hash(value: Any, what: str) -> bytes:
    return expect_bytes(value, what, size=HASH_SIZE)


def _sig(value: Any, what: str) -> bytes:
    return expect_bytes(value, what, size=SIGNATURE_SIZE)


def _index(value: Any, what: str) -> int:
    return expect_int(value, what, hi=MAX_SEALERS - 1)


def _signatures(value: Any, what: str) -> Signatures:
    items = expect_seq(value, what, max_len=MAX_SEALERS)
    out: list[tuple[int, bytes]] = []
    for item in items:
        pair = expect_list(item, 2, what)
        out.append((_index(pair[0], what + " index"), _sig(pair[1], what + " signature")))
    return tuple(out)


def _set_digest(obj: object, value: bytes) -> None:
    object.__setattr__(obj, "digest", value)


# -- proposal, certificate, seal ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proposal:
    """Block ``height`` on top of ``parent_hash``; ``payload`` is opaque to consensus.

    The node puts its tx hashes, timestamp and header fields in the payload; the replica
    only hashes it and hands it back in ExecuteBlock and CommitBlock.
    """

    height: int
    parent_hash: bytes
    payload: bytes
    digest: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set_digest(self, proposal_digest(self.height, self.parent_hash, self.payload))

    def to_fields(self) -> list[Any]:
        return [self.height, self.parent_hash, self.payload]

    @classmethod
    def from_fields(cls, value: Any) -> Proposal:
        f = expect_list(value, 3, "proposal")
        return cls(
            height=expect_int(f[0], "proposal height", lo=1),
            parent_hash=_hash(f[1], "proposal parent_hash"),
            payload=expect_bytes(f[2], "proposal payload", max_len=MAX_PAYLOAD_SIZE),
        )


@dataclass(frozen=True, slots=True)
class PreparedCertificate:
    """Proof that a quorum signed Prepare for ``proposal`` executed to ``block_hash``.

    ``signatures`` are ``(sealer index, Prepare signature)`` pairs, sorted by index, over
    :func:`seal_digest`. A replica persists its highest one and carries it in ViewChange.
    """

    view: int
    proposal: Proposal
    block_hash: bytes
    state_root: bytes
    signatures: Signatures
    digest: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set_digest(
            self,
            hash32(
                pack(
                    [
                        TAG_CERTIFICATE,
                        self.view,
                        self.proposal.height,
                        self.proposal.digest,
                        self.block_hash,
                        self.state_root,
                    ]
                )
            ),
        )

    @property
    def height(self) -> int:
        return self.proposal.height

    @property
    def signed_digest(self) -> bytes:
        return prepare_digest(
            self.view, self.height, self.proposal.digest, self.block_hash, self.state_root
        )

    def to_fields(self) -> list[Any]:
        return [
            self.view,
            self.proposal.to_fields(),
            self.block_hash,
            self.state_root,
            [[i, s] for i, s in self.signatures],
        ]

    @classmethod
    def from_fields(cls, value: Any) -> PreparedCertificate:
        f = expect_list(value, 5, "certificate")
        return cls(
            view=expect_int(f[0], "certificate view"),
            proposal=Proposal.from_fields(f[1]),
            block_hash=_hash(f[2], "certificate block_hash"),
            state_root=_hash(f[3], "certificate state_root"),
            signatures=_signatures(f[4], "certificate signatures"),
        )


@dataclass(frozen=True, slots=True)
class Seal:
    """The quorum certificate stored with a committed block.

    ``signatures`` are the Commit signatures of view ``view`` over
    ``seal_digest(view, height, proposal_digest, block_hash, state_root)``; anyone with
    the sealer list checks them with :func:`consensus.certs.verify_seal`.
    """

    view: int
    proposal_digest: bytes
    signatures: Signatures

    def to_fields(self) -> list[Any]:
        return [self.view, self.proposal_digest, [[i, s] for i, s in self.signatures]]

    def encode(self) -> bytes:
        return pack(self.to_fields())

    @classmethod
    def from_fields(cls, value: Any) -> Seal:
        f = expect_list(value, 3, "seal")
        return cls(
            view=expect_int(f[0], "seal view"),
            proposal_digest=_hash(f[1], "seal proposal_digest"),
            signatures=_signatures(f[2], "seal signatures"),
        )

    @classmethod
    def decode(cls, data: bytes) -> Seal:
        """Parse :meth:`encode` output; raises only DecodeError."""
        return cls.from_fields(unpack(data))


# -- messages -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrePrepare:
    """The leader of ``(view, proposal.height)`` proposes a block."""

    KIND: ClassVar[int] = KIND_PREPREPARE
    NAME: ClassVar[str] = "PrePrepare"
    view: int
    proposal: Proposal
    sender: int
    signature: bytes
    digest: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _set_digest(self, preprepare_digest(self.view, self.proposal.height, self.proposal.digest))

    @property
    def height(self) -> int:
        return self.proposal.height

    def to_fields(self) -> list[Any]:
        return [KIND_PREPREPARE, self.view, self.proposal.to_fields(), self.sender, self.signature]

    def encode(self) -> bytes:
        return pack(self.to_fields())


@dataclass(frozen=True, slots=True)
class _Vote:
    view: int
    height: int
    proposal_digest: bytes
    block_hash: bytes
    state_root: bytes
    sender: int
    signature: bytes
    digest: bytes = field(init=False, repr=False, compare=False)

    @property
    def key(self) -> tuple[bytes, bytes, bytes]:
        """What two votes must share to count towards the same quorum."""
        return (self.proposal_digest, self.block_hash, self.state_root)

    def _fields(self, kind: int) -> list[Any]:
        return [
            kind,
            self.view,
            self.height,
            self.proposal_digest,
            self.block_hash,
            self.state_root,
            self.sender,
            self.signature,
        ]


@dataclass(frozen=True, slots=True)
class Prepare(_Vote):
    """A replica executed the proposal and signs the result."""

    KIND: ClassVar[int] = KIND_PREPARE
    NAME: ClassVar[str] = "Prepare"

    def __post_init__(self) -> None:
        _set_digest(
            self,
            prepare_digest(
                self.view, self.height, self.proposal_digest, self.block_hash, self.state_root
            ),
        )

    def to_fields(self) -> list[Any]:
        return self._fields(KIND_PREPARE)

    def encode(self) -> bytes:
        return pack(self.to_fields())


@dataclass(frozen=True, slots=True)
class Commit(_Vote):
    """A replica is prepared (and has persisted its certificate) for this result.

    A quorum of Commits is the block's seal: it proves f + 1 honest sealers persisted a
    prepared certificate for it, so every later view re-proposes it."""

    KIND: ClassVar[int] = KIND_COMMIT
    NAME: ClassVar[str] = "Commit"

    def __post_init__(self) -> None:
        _set_digest(
            self,
            commit_digest(
                self.view, self.height, self.proposal_digest, self.block_hash, self.state_root
            ),
        )

    def to_fields(self) -> list[Any]:
        return self._fields(KIND_COMMIT)

    def encode(self) -> bytes:
        return pack(self.to_fields())


@dataclass(frozen=True, slots=True)
class ViewChange:
    """The sender gives up on views below ``view`` (the *new* view it asks for).

    ``height`` is the sender's next height (its committed height + 1); ``prepared`` is
    its highest prepared certificate for that height, if any.
    """

    KIND: ClassVar[int] = KIND_VIEWCHANGE
    NAME: ClassVar[str] = "ViewChange"
    view: int
    height: int
    prepared: PreparedCertificate | None
    sender: int
    signature: bytes
    digest: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cert = self.prepared.digest if self.prepared is not None else None
        _set_digest(self, viewchange_digest(self.view, self.height, cert))

    def to_fields(self) -> list[Any]:
        cert = self.prepared.to_fields() if self.prepared is not None else None
        return [KIND_VIEWCHANGE, self.view, self.height, cert, self.sender, self.signature]

    def encode(self) -> bytes:
        return pack(self.to_fields())


@dataclass(frozen=True, slots=True)
class NewView:
    """The leader of ``(view, height)`` starts ``view`` with a quorum of ViewChange proofs.

    ``proposal`` must be the proposal of the highest-view prepared certificate among the
    proofs for ``height`` (None when there is none; the leader then proposes afresh with
    a PrePrepare). It counts as the PrePrepare of ``(view, height)``.
    """

    KIND: ClassVar[int] = KIND_NEWVIEW
    NAME: ClassVar[str] = "NewView"
    view: int
    height: int
    view_changes: tuple[ViewChange, ...]
    proposal: Proposal | None
    sender: int
    signature: bytes
    digest: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        proofs = [[vc.sender, vc.digest] for vc in self.view_changes]
        pd = self.proposal.digest if self.proposal is not None else None
        _set_digest(self, newview_digest(self.view, self.height, proofs, pd))

    def to_fields(self) -> list[Any]:
        return [
            KIND_NEWVIEW,
            self.view,
            self.height,
            [vc.to_fields() for vc in self.view_changes],
            self.proposal.to_fields() if self.proposal is not None else None,
            self.sender,
            self.signature,
        ]

    def encode(self) -> bytes:
        return pack(self.to_fields())


Message = PrePrepare | Prepare | Commit | ViewChange | NewView
MESSAGE_TYPES: tuple[type[Message], ...] = (PrePrepare, Prepare, Commit, ViewChange, NewView)
MESSAGE_NAMES: tuple[str, ...] = tuple(t.NAME for t in MESSAGE_TYPES)


# -- decoding -----------------------------------------------------------------------------


def _decode_vote(cls: type[Prepare] | type[Commit], f: list[Any]) -> Prepare | Commit:
    expect_list(f, 8, cls.NAME)
    return cls(
        view=expect_int(f[1], "view"),
        height=expect_int(f[2], "height", lo=1),
        proposal_digest=_hash(f[3], "proposal_digest"),
        block_hash=_hash(f[4], "block_hash"),
        state_root=_hash(f[5], "state_root"),
        sender=_index(f[6], "sender"),
        signature=_sig(f[7], "signature"),
    )


def _decode_viewchange(f: Any) -> ViewChange:
    expect_list(f, 6, "ViewChange")
    if f[0] != KIND_VIEWCHANGE:
        raise DecodeError("ViewChange: wrong kind")
    view = expect_int(f[1], "view", lo=1)
    height = expect_int(f[2], "height", lo=1)
    cert = PreparedCertificate.from_fields(f[3]) if f[3] is not None else None
    if cert is not None and (cert.height != height or cert.view >= view):
        raise DecodeError("ViewChange: certificate is not for its height or an earlier view")
    return ViewChange(
        view=view,
        height=height,
        prepared=cert,
        sender=_index(f[4], "sender"),
        signature=_sig(f[5], "signature"),
    )


def _decode_fields(f: Any) -> Message:
    if not isinstance(f, list) or not f:
        raise DecodeError("message: expected a non-empty list")
    kind = f[0]
    if kind == KIND_PREPARE and type(kind) is int:
        return _decode_vote(Prepare, f)
    if kind == KIND_COMMIT and type(kind) is int:
        return _decode_vote(Commit, f)
    if kind == KIND_PREPREPARE and type(kind) is int:
        expect_list(f, 5, "PrePrepare")
        return PrePrepare(
            view=expect_int(f[1], "view"),
            proposal=Proposal.from_fields(f[2]),
            sender=_index(f[3], "sender"),
            signature=_sig(f[4], "signature"),
        )
    if kind == KIND_VIEWCHANGE and type(kind) is int:
        return _decode_viewchange(f)
    if kind == KIND_NEWVIEW and type(kind) is int:
        expect_list(f, 7, "NewView")
        view = expect_int(f[1], "view", lo=1)
        height = expect_int(f[2], "height", lo=1)
        vcs = tuple(
            _decode_viewchange(x) for x in expect_seq(f[3], "view_changes", max_len=MAX_SEALERS)
        )
        proposal = Proposal.from_fields(f[4]) if f[4] is not None else None
        if proposal is not None and proposal.height != height:
            raise DecodeError("NewView: proposal is for another height")
        return NewView(
            view=view,
            height=height,
            view_changes=vcs,
            proposal=proposal,
            sender=_index(f[5], "sender"),
            signature=_sig(f[6], "signature"),
        )
    raise DecodeError(f"unknown message kind {kind!r}")


def decode_message(data: bytes) -> Message:
    """Parse one consensus message; any malformed input raises DecodeError only."""
    return _decode_fields(unpack(data))


def encode_message(message: Message) -> bytes:
    """The canonical bytes of ``message`` (same as ``message.encode()``)."""
    return message.encode()
