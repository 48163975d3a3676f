"""What goes into a replica (events) and what comes out (actions), plus its durable state.

The runtime feeds events to :meth:`Replica.step` and performs the returned actions **in
list order**. Two ordering rules matter for safety:

* :class:`PersistState` must be durably written (fsync) before the runtime performs any
  later action of the same step. The replica emits it before the Commit broadcast that
  announces a prepared certificate, and before any message of a new view.
* :class:`CommitBlock` must be durably written before the runtime feeds
  :class:`BlockPersisted` back; the replica does not vote on the next height until then.

Everything else (sending, executing) may be done asynchronously, in any order relative to
other steps; results come back as events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus.codec import DecodeError, expect_int, expect_list, pack, unpack
from consensus.messages import Message, PreparedCertificate, Proposal, Seal

# -- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A consensus message from the network.

    ``message`` is raw bytes (decoded and validated by the replica; garbage is counted and
    dropped) or an already decoded message. ``peer`` is the transport-level sender id; it
    is only a hint for RequestSync, never trusted: authority comes from the signature.
    """

    message: bytes | Message
    peer: int | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """One tick of the runtime's clock (the replica counts ticks, never reads a clock).

    ``txs_pending`` tells whether the runtime has transactions waiting. The view-change
    timer runs only while there is something to wait for, so an idle chain keeps its
    height and view instead of changing views forever. Pass False when the pool is empty.
    """

    txs_pending: bool = True


@dataclass(frozen=True, slots=True)
class ProposalReady:
    """The runtime's payload for the next block (only when ``wants_proposal()``).

    Never empty: the runtime only proposes when it has transactions (no empty blocks).
    """

    payload: bytes


@dataclass(frozen=True, slots=True)
class BlockExecuted:
    """Result of an :class:`ExecuteBlock`. ``ok=False``: the proposal is invalid, no vote.

    ``block_hash`` and ``state_root`` must be a deterministic function of the proposal
    and the parent state only (not of the view or of who re-proposed it).
    """

    height: int
    proposal_digest: bytes
    block_hash: bytes
    state_root: bytes
    ok: bool = True


@dataclass(frozen=True, slots=True)
class BlockPersisted:
    """The runtime durably committed block ``height`` (from CommitBlock or block sync).

    ``timeout_ticks`` and ``leader_period``, when given, are the consensus system config in
    force from the next height (FISCO BCOS applies a ``setValueByKey`` from the block after
    the one that made it); every replica learns them with the same block.
    """

    height: int
    block_hash: bytes
    timeout_ticks: int | None = None
    leader_period: int | None = None
    sealers: tuple[bytes, ...] | None = None
    """The sealer list in force from the next height when it changed (None: unchanged).

    Set by the Consensus precompile (``addSealer``/``addObserver``/``remove``) in this
    block: quorum, leader rotation and every signature check of heights above ``height``
    use it. A replica whose ``node_key`` joins the list starts voting there; one whose key
    leaves it becomes an observer."""


@dataclass(frozen=True, slots=True)
class PeerConnected:
    """The runtime's link to sealer ``index`` came up (again).

    What this replica broadcast while the link was down never reached that sealer: above
    all the ViewChange a restarted replica sends at once (:meth:`Replica.start`), which in a
    chain restarted all at once leaves before any link is up. Without this event the peer
    hears it only at the next re-send, half a timeout later.
    """

    index: int


Event = MessageReceived | Tick | ProposalReady | BlockExecuted | BlockPersisted | PeerConnected


# -- actions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to sealer ``to`` (used to help a lagging peer catch up)."""

    to: int
    message: Message


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send ``message`` to every other sealer (the replica handles its own copy)."""

    message: Message


@dataclass(frozen=True, slots=True)
class ExecuteBlock:
    """Execute ``proposal`` on top of the head and answer with :class:`BlockExecuted`."""

    height: int
    view: int
    proposal: Proposal


@dataclass(frozen=True, slots=True)
class PersistState:
    """Durably store ``state`` (replacing the previous one) before the next action."""

    state: PersistedState


@dataclass(frozen=True, slots=True)
class CommitBlock:
    """Block ``height`` is decided: store it with ``seal``, then feed BlockPersisted."""

    height: int
    proposal: Proposal
    block_hash: bytes
    state_root: bytes
    seal: Seal


@dataclass(frozen=True, slots=True)
class RequestSync:
    """This replica is behind: fetch and commit blocks up to ``target_height``.

    ``peers`` are sealer indices that claimed to be ahead (a hint). Fetched blocks must be
    checked with :func:`consensus.certs.verify_seal` and fed back as BlockPersisted.
    """

    target_height: int
    peers: tuple[int, ...]


Action = Send | Broadcast | ExecuteBlock | PersistState | CommitBlock | RequestSync


# -- durable state -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The highest block the runtime has durably committed (height 0 is genesis)."""

    height: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class PersistedState:
    """What a replica needs after a crash: its view, highest prepared certificate, and
    the last (view, height) it may have signed a PrePrepare or Prepare in.

    Restoring it keeps the promises a sealer makes: never to act in a view below one it
    moved to, never to forget a block it announced as prepared, and never to sign two
    different proposals or Prepares for one (view, height). ``signed`` is None when not
    known (state written by an older version): the restored slot is then assumed signed.
    """

    view: int
    prepared: PreparedCertificate | None = None
    signed: tuple[int, int] | None = None

    def encode(self) -> bytes:
        cert = self.prepared.to_fields() if self.prepared is not None else None
        signed = list(self.signed) if self.signed is not None else None
        return pack([2, self.view, cert, signed])

    @classmethod
    def decode(cls, data: bytes) -> PersistedState:
        """Parse :meth:`encode` output (or version 1's); raises only DecodeError."""
        raw = unpack(data)
        version = raw[0] if isinstance(raw, list) and raw else None
        if version == 1:
            f: list[Any] = expect_list(raw, 3, "persisted state")
        elif version == 2:
            f = expect_list(raw, 4, "persisted state")
        else:
            raise DecodeError("persisted state: unknown version")
        cert = PreparedCertificate.from_fields(f[2]) if f[2] is not None else None
        signed: tuple[int, int] | None = None
        if version == 2 and f[3] is not None:
            sv, sh = expect_list(f[3], 2, "persisted state signed slot")
            signed = (expect_int(sv, "signed view", lo=-1), expect_int(sh, "signed height"))
        return cls(view=expect_int(f[1], "view"), prepared=cert, signed=signed)
