"""The PBFT replica: a sans-I/O state machine, ``step(event) -> list[Action]``.

Theory of operation
-------------------
Heights are decided one at a time. The replica is at ``height`` = head + 1 and in
``view``; views only grow and are shared by all heights (FISCO BCOS style), so the leader
of a height is ``(view + height // leader_period) % n``.

Normal case (execute, then vote; FISCO BCOS 2.x):

1. The leader gets ProposalReady and broadcasts PrePrepare(view, proposal).
2. Every replica checks leader, view, height and parent, and emits ExecuteBlock.
3. On BlockExecuted(ok) it broadcasts Prepare signed over
   ``prepare_digest(view, height, proposal digest, block hash, state root)``.
4. A quorum of matching Prepares that agree with its own execution makes it *prepared*:
   it emits PersistState with the prepared certificate, **then** broadcasts Commit.
5. Prepared plus a quorum of matching Commits: it emits CommitBlock with the seal (the
   quorum of Commit signatures) and, once the runtime answers BlockPersisted, moves to
   the next height in the same view.

View change (classic PBFT, adapted to one height at a time):

* A timer of ``timeout * 1.5**k`` ticks runs while there is something to wait for. When
  it fires the replica moves to ``view + 1``: PersistState(view), then a ViewChange with
  its height and highest prepared certificate for that height. It no longer acts in
  lower views. ``f + 1`` ViewChanges for higher views make it join the lowest of them.
* The leader of (new view, its height H) gathers a quorum of ViewChanges for the view with
  heights <= H and broadcasts NewView with them, re-proposing the proposal of the
  highest-view certificate for H (select_reproposal), or nothing (then it proposes anew).
  Replicas accept a NewView only if the proofs justify exactly that proposal.
* A NewView for height H makes the view *active* for heights >= H only. Why that is safe:
  if a block B committed at height h in view v, at least f + 1 honest replicas prepared
  it in v before sending any ViewChange for a later view, and any quorum of ViewChanges
  contains one of them; its ViewChange has height >= h and, if its height is h, a
  certificate for B of view >= v. So a NewView for height h must re-propose B, and a valid
  NewView for a height below h cannot exist. A replica at a lower height than H must not
  vote in the new view before catching up, because nothing justified the heights between.

Crash recovery: the runtime persists PersistState before acting further, so a restarted
replica never returns to a view it left and keeps its prepared certificate. Before its
first PrePrepare or Prepare in a (view, height) it persists that slot (one write per
height; the signature itself is not persisted). After a restart it abstains from signing
a Prepare (or proposing) only if the restored state says it may have signed in the very
slot it restarts in, and then only unless it matches the restored certificate. (An
earlier rule abstained in every restored slot: a full restart of the chain then waited
a whole view-change timeout, an hour at consensus_timeout = 3600.)

Message hygiene: decode strictly; drop (and count) non-sealers, bad signatures, stale and
far-future messages (watermark windows), duplicates and conflicting messages (kept as
Equivocation evidence); buffer near-future messages, verified, and replay them later.
Only our own misuse raises (a bad event type, an empty payload).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import assert_never

from consensus.certs import check_new_view, select_reproposal, verify_certificate
from consensus.codec import DecodeError
from consensus.config import ReplicaConfig
from consensus.counters import Counters, Equivocation
from consensus.crypto import Signer
from consensus.events import (
    Action,
    BlockExecuted,
    BlockPersisted,
    Broadcast,
    ChainHead,
    CommitBlock,
    Event,
    ExecuteBlock,
    MessageReceived,
    PeerConnected,
    PersistedState,
    PersistState,
    ProposalReady,
    RequestSync,
    Send,
    Tick,
)
from consensus.membership import Remap, check_sealers, reindex, remap
from consensus.messages import (
    MESSAGE_TYPES,
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    Proposal,
    Signatures,
    ViewChange,
    commit_digest,
    decode_message,
    prepare_digest,
    preprepare_digest,
    viewchange_digest,
)
from consensus.quorum import leader_of, max_faulty, quorum
from consensus.slots import HeightSlot, Round, VoteKey


class Phase(enum.Enum):
    """The replica's phase in its current view; the per-height round has its own."""

    ACTIVE = "active"
    """A NewView (or view 0) made this view active for our height: propose and vote."""
    AWAITING_NEW_VIEW = "awaiting_new_view"
    """We moved to this view (timeout or f + 1 others): only ViewChange and NewView count."""
    BEHIND_NEW_VIEW = "behind_new_view"
    """A NewView activated the view from a height above ours: catch up by sync first."""


@dataclasses.dataclass(frozen=True, slots=True)
class ReplicaStatus:
    """What :meth:`Replica.status` reports (``dataclasses.asdict`` makes it JSON-ready)."""

    index: int | None
    height: int
    committed_height: int
    view: int
    view_active: bool
    leader: int
    is_leader: bool
    backoff: int
    """View changes in a row without progress (the timeout's exponent)."""
    timer_running: bool
    prepared_view: int | None
    idle: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Progress:
    """How far the current height got in the current view: what a stall report says.

    ``phase`` is one of ``view_change`` (waiting for a NewView), ``waiting_proposal``,
    ``executing`` (the runtime has not answered ExecuteBlock yet), ``refused`` (the
    runtime said the proposal is invalid here), ``preparing``, ``committing`` and
    ``decided`` (CommitBlock emitted, waiting for BlockPersisted).
    """

    phase: str
    height: int
    view: int
    leader: int
    quorum: int
    prepares: int
    """Prepares matching this replica's own execution result (0 before it executed)."""
    commits: int
    view_changes: int
    """Sealers known to want this view or a higher one (while in ``view_change``)."""
    abstaining: bool = False
    """Restarted in a slot it may have signed in before: it neither proposes nor votes
    for anything but its restored certificate here, and waits for the next view."""


def _payload_size(msg: Message) -> int:
    """Proposal bytes a message carries (what the buffer bound counts)."""
    if isinstance(msg, PrePrepare | NewView) and msg.proposal is not None:
        return len(msg.proposal.payload)
    return 0


def _cert_key(cert: PreparedCertificate) -> tuple[bytes, Signatures]:
    """What a certificate check depends on. ``cert.digest`` covers the certified content but
    not the signatures, so a copy with garbage signatures has the same digest: caching by
    digest let a leader ship such a copy in its NewView, which every peer then rejected."""
    return (cert.digest, cert.signatures)


class Replica:
    """One PBFT sealer (or observer). Feed it events; perform the actions it returns.

    ``restored`` is the last PersistedState the runtime stored (None on first start);
    ``head`` is the highest block the runtime has durably committed (None = genesis).
    """

    def __init__(
        self,
        config: ReplicaConfig,
        *,
        restored: PersistedState | None = None,
        head: ChainHead | None = None,
    ) -> None:
        self.config = config
        self._key = config.node_key
        self._set_sealers(tuple(config.sealers))
        self._sign = config.signer
        self._verify_sig = config.verifier
        self.counters = Counters()
        self.evidence: list[Equivocation] = []

        if head is None:
            head = ChainHead(0, config.genesis_hash)
        self._head = head
        self._height = head.height + 1
        self._slot = HeightSlot(self._height)

        self._view = restored.view if restored is not None else 0
        self._persisted_view = self._view
        # The view is active for heights >= _active_from; None while waiting for NewView.
        # An observer waits for no NewView (see _stop_waiting): it made no promise.
        self._active_from: int | None = 0 if self._view == 0 or self._observer else None
        # True while _active_from was set without a NewView (an observer's, see
        # _stop_waiting); such a view must not be voted in if the node becomes a sealer.
        self._unsettled = self._observer and self._view > 0
        self._settled_view = self._view  # the last view a NewView made active here
        cert = restored.prepared if restored is not None else None
        self._cert: PreparedCertificate | None = (
            cert if cert is not None and cert.height == self._height else None
        )
        # The last (view, height) we may have signed a PrePrepare or Prepare in. It is
        # durable before that first signature leaves (see _may_sign), so after a restart
        # the restored slot is the only one where we may have signed something we forgot.
        slot = (self._view, self._height)
        if restored is None:
            self._signed: tuple[int, int] = (-1, 0)  # nothing, ever
        else:
            self._signed = restored.signed if restored.signed is not None else slot
        # A lone sealer has no one to fool, so it never abstains.
        self._amnesia: tuple[int, int] | None = (
            slot if self._signed == slot and self._n > 1 else None
        )
        self._restored_view_change = restored is not None and self._view > 0

        self._now = 0
        self._deadline: int | None = None
        self._resend_at: int | None = None
        self._k = 0
        self._txs_pending = False

        self._seen: dict[int, dict[tuple[int, int, int], Message]] = {}
        self._buffer: dict[int, list[Message]] = {}
        self._vc_latest: dict[int, ViewChange] = {}
        self._my_vc: ViewChange | None = None
        self._new_views: dict[int, NewView] = {}
        self._last_nv: NewView | None = None
        self._sent_nv_view = -1
        # (sender, view) -> the tick we last showed that sender the way into that view
        self._replied: dict[tuple[int, int], int] = {}
        # Certificates already verified, keyed by content *and* signatures: the content
        # digest alone would let a forged copy ride on a verified one (see _cert_key).
        self._good_certs: set[tuple[bytes, Signatures]] = set()
        self._claims: dict[int, int] = {}
        # Messages for heights above ours that our sealer list cannot verify: a change in
        # a block between may renumber the sealers (see _hold and _change_sealers).
        self._held: list[Message] = []
        self._last_sync_tick: int | None = None
        self._sync_interval = config.sync_interval_ticks or max(1, config.timeout_ticks // 4)
        self._out: list[Action] = []

    # -- read-only view for the runtime ---------------------------------------------------

    @property
    def index(self) -> int | None:
        return None if self._observer else self._me

    @property
    def sealers(self) -> tuple[bytes, ...]:
        """The sealer list in force at :attr:`height`; message senders index into it."""
        return self._sealers

    @property
    def height(self) -> int:
        """The height being decided (committed head + 1)."""
        return self._height

    @property
    def view(self) -> int:
        return self._view

    @property
    def head(self) -> ChainHead:
        return self._head

    @property
    def view_active(self) -> bool:
        """False while waiting for a NewView (or for block sync to reach the new view):
        :attr:`phase` is ``ACTIVE``, read without building the phase (every step asks)."""
        return self._active_from is not None and self._height >= self._active_from

    @property
    def position(self) -> tuple[int, int, bool]:
        """``(height, view, view_active)`` in one read: what a driver compares before and
        after a step to see whether the replica moved (the simulator does, every step)."""
        return (self._height, self._view, self.view_active)

    @property
    def phase(self) -> Phase:
        """Where the replica stands in its view (see :class:`Phase`)."""
        if self._active_from is None:
            return Phase.AWAITING_NEW_VIEW
        if self._height < self._active_from:
            return Phase.BEHIND_NEW_VIEW
        return Phase.ACTIVE

    @property
    def prepared_certificate(self) -> PreparedCertificate | None:
        return self._cert

    def leader_of(self, view: int, height: int) -> int:
        return leader_of(view, height, self._n, self.config.leader_period)

    def is_leader(self) -> bool:
        """This replica leads the current view at the current height."""
        return not self._observer and self.leader_of(self._view, self._height) == self._me

    def wants_proposal(self) -> bool:
        """True when the runtime should send ProposalReady (if it has transactions)."""
        if not self.is_leader() or not self.view_active or self._slot.decided:
            return False
        if (self._view, self._height) == self._amnesia:
            return False
        r = self._slot.rounds.get(self._view)
        if r is not None and r.proposal is not None:
            return False
        nv = self._new_views.get(self._height)
        return not (nv is not None and nv.view == self._view and nv.proposal is not None)

    @property
    def settled_view(self) -> int:
        """The last view that became active here; below :attr:`view` during a view change."""
        return self._settled_view

    @property
    def timeout_ticks_now(self) -> int:
        """The view-change timeout in force now, back-off included (ticks)."""
        return self._timeout()

    def progress(self) -> Progress:
        """Where the current (view, height) stands; see :class:`Progress`."""
        slot = self._slot
        r = slot.rounds.get(self._view)
        prepares = commits = 0
        key = self._executed_key(r) if r is not None else None
        if r is not None and key is not None:
            prepares = len(r.prepares.get(key, ()))
            commits = len(r.commits.get(r.prepared_key or key, ()))
        if slot.decided:
            phase = "decided"
        elif not self.view_active:
            phase = "view_change"
        elif r is None or r.proposal is None:
            phase = "waiting_proposal"
        elif r.proposal.digest not in slot.executed:
            phase = "executing"
        elif slot.executed[r.proposal.digest] is None:
            phase = "refused"
        elif r.prepared_key is None:
            phase = "preparing"
        else:
            phase = "committing"
        wanting = sum(1 for vc in self._vc_latest.values() if vc.view >= self._view)
        return Progress(
            phase=phase,
            height=self._height,
            view=self._view,
            leader=self.leader_of(self._view, self._height),
            quorum=self._quorum,
            prepares=prepares,
            commits=commits,
            view_changes=wanting,
            abstaining=(self._view, self._height) == self._amnesia,
        )

    def status(self) -> ReplicaStatus:
        """A typed summary for RPC and the simulator's live view."""
        return ReplicaStatus(
            index=self.index,
            height=self._height,
            committed_height=self._head.height,
            view=self._view,
            view_active=self.view_active,
            leader=self.leader_of(self._view, self._height),
            is_leader=self.is_leader(),
            backoff=self._k,
            timer_running=self._deadline is not None,
            prepared_view=self._cert.view if self._cert is not None else None,
            idle=self._deadline is None and self.view_active,
        )

    # -- the entry points -----------------------------------------------------------------

    def start(self) -> list[Action]:
        """Call once, after construction, and perform what it returns.

        A replica restored in a view above 0 left a view and promised not to act below the
        new one, but the peers may not know: it says so again with its ViewChange, so a
        lone restarted sealer cannot wait out a whole timeout before anyone answers.
        """
        out: list[Action] = []
        self._out = out
        if self._restored_view_change and not self._observer:
            self._restored_view_change = False
            self._broadcast_view_change()
        self._out = []
        return out

    def step(self, event: Event) -> list[Action]:
        """Process one event; perform the returned actions in order (see events.py)."""
        out: list[Action] = []
        self._out = out
        match event:
            case MessageReceived():
                self._on_message(event)
            case Tick():
                self._on_tick(event)
            case ProposalReady():
                self._on_proposal_ready(event)
            case BlockExecuted():
                self._on_block_executed(event)
            case BlockPersisted():
                self._on_block_persisted(event)
            case PeerConnected():
                self._on_peer_connected(event.index)
            case _:
                if not isinstance(event, Event):
                    raise TypeError(f"not a replica event: {type(event).__name__}")
                assert_never(event)
        self._out = []
        return out

    # -- hooks (overridden by the tests and `ledgerlab sim --break` to break a rule) -------

    def _select_reproposal(
        self, view_changes: Sequence[ViewChange], height: int
    ) -> Proposal | None:
        return select_reproposal(view_changes, height)

    # -- output helpers -------------------------------------------------------------------

    def _emit(self, action: Action) -> None:
        if isinstance(action, Broadcast):
            if self._n == 1:
                return
            self.counters.messages_out[action.message.NAME] += 1
        elif isinstance(action, Send):
            self.counters.messages_out[action.message.NAME] += 1
        self._out.append(action)

    def _drop(self, reason: str) -> None:
        self.counters.drops[reason] += 1

    def _set_sealers(self, sealers: tuple[bytes, ...]) -> None:
        """The one place membership arithmetic is set: at start and at a change."""
        self._sealers = sealers
        self._n = len(sealers)
        self._f = max_faulty(self._n)
        self._quorum = quorum(self._n)
        # An observer follows the chain and never signs: one flag says so, and _me stays an
        # int (-1 matches no sender and no leader) so sealer-only code needs no None checks.
        self._me = sealers.index(self._key) if self._key in sealers else -1
        self._observer = self._me < 0

    def _persist(self) -> None:
        if self._observer:
            return
        self._persisted_view = self._view
        self._emit(PersistState(PersistedState(self._view, self._cert, self._signed)))

    def _may_sign(self, view: int) -> None:
        """About to sign a PrePrepare or Prepare in (``view``, height): make it durable
        first, once per slot, so that a restart knows exactly where it may have signed."""
        slot = (view, self._height)
        if self._signed != slot:
            self._signed = slot
            if self._n > 1:
                self._persist()

    def _signer(self) -> Signer:
        assert self._sign is not None
        return self._sign

    def _timeout(self) -> int:
        k = min(self._k, self.config.backoff_cap)
        return int(self.config.timeout_ticks * 3**k // 2**k)

    # -- messages -------------------------------------------------------------------------

    def _on_message(self, event: MessageReceived) -> None:
        raw = event.message
        if isinstance(raw, MESSAGE_TYPES):
            msg: Message = raw
        elif isinstance(raw, (bytes, bytearray, memoryview)):
            try:
                msg = decode_message(bytes(raw))
            except DecodeError:
                self._drop("malformed")
                return
        else:
            self._drop("malformed")
            return
        self.counters.messages_in[msg.NAME] += 1
        self._route(msg)

    def _route(self, msg: Message) -> None:
        if not 0 <= msg.sender < self._n or msg.sender == self._me:
            if not self._hold(msg):
                self._drop("own_index" if msg.sender == self._me else "non_sealer")
            return
        if isinstance(msg, ViewChange):
            self._on_view_change(msg)
        elif isinstance(msg, NewView):
            self._on_new_view(msg)
        else:
            self._admit(msg, verified=False)

    def _valid_signature(self, msg: Message) -> bool:
        return self._verify_sig(self._sealers[msg.sender], msg.digest, msg.signature)

    def _hold(self, msg: Message) -> bool:
        """Keep a message for a height above ours that our sealer list cannot verify.

        Who signs at a height is known only once the blocks below it are: a membership
        change in one of them renumbers the sealers, so a peer that is one block ahead
        signs with an index we cannot place yet. Such a message waits (bounded) for the
        next change (_change_sealers) and is dropped when its height comes without one.
        Returns False if ``msg`` is not for such a height (the caller drops it).
        """
        if not self._height < msg.height <= self._height + self.config.height_window:
            return False
        payload = _payload_size(msg)
        if len(self._held) >= self.config.max_held_messages or (
            payload and self._buffer_full(payload)
        ):
            self._drop("buffer_full")
            return True
        self._held.append(msg)
        self.counters.held += 1
        return True

    def _unverified(self, msg: Message) -> None:
        """``msg`` failed its signature check: hold it if it may be a later list's, else drop."""
        if not self._hold(msg):
            self._drop("bad_signature")

    def _check_signed(self, msg: PrePrepare | Prepare | Commit) -> bool:
        """Dedupe, verify and detect equivocation; True if ``msg`` is new and valid."""
        key = (msg.KIND, msg.view, msg.sender)
        per_height = self._seen.get(msg.height)
        prev = per_height.get(key) if per_height is not None else None
        if prev is not None:
            if prev.digest == msg.digest:
                if prev.signature == msg.signature or self._valid_signature(msg):
                    self._drop("duplicate")
                else:
                    self._drop("bad_signature")
                return False
            if not self._valid_signature(msg):
                self._drop("bad_signature")
                return False
            self._record_equivocation(prev, msg)
            return False
        if not self._valid_signature(msg):
            self._unverified(msg)
            return False
        if per_height is None:
            per_height = self._seen[msg.height] = {}
        per_height[key] = msg
        self._note_claim(msg.sender, msg.height)
        return True

    def _record_equivocation(self, first: Message, second: Message) -> None:
        self._drop("equivocation")
        self.counters.equivocations += 1
        if len(self.evidence) < self.config.max_evidence:
            key = self._sealers[second.sender]
            self.evidence.append(
                Equivocation(
                    second.sender, second.NAME, second.view, second.height, first, second, key
                )
            )

    def _buffer_full(self, payload: int) -> bool:
        """Whether keeping ``payload`` more proposal bytes would pass
        ``max_buffered_payload_bytes`` (buffered and held messages together).

        Only sealers' signed messages are buffered, but a Byzantine leader could otherwise
        park a large proposal for every future (height, view) it leads.
        """
        kept = sum(_payload_size(m) for msgs in self._buffer.values() for m in msgs)
        kept += sum(_payload_size(m) for m in self._held)
        return kept + payload > self.config.max_buffered_payload_bytes

    def _admit(self, msg: PrePrepare | Prepare | Commit, *, verified: bool) -> None:
        """Route a normal-case message: process now, buffer for later, or drop."""
        h, v = msg.height, msg.view
        if h < self._height or (h == self._height and self._slot.decided):
            self._drop("stale")
            return
        if h > self._height + self.config.height_window or v > self._view + self.config.view_window:
            self._claim_far(msg, verified)
            self._drop("far_future")
            return
        current = h == self._height and self.view_active
        if v < self._view:
            # Votes of an earlier view at this height still count towards a local commit
            # (a decision is final whatever our view); we never send anything there.
            if not (current and not isinstance(msg, PrePrepare) and v in self._slot.rounds):
                self._claim_far(msg, verified)
                self._drop("stale")
                return
        elif v > self._view or not current:
            if isinstance(msg, PrePrepare) and self._buffer_full(len(msg.proposal.payload)):
                self._drop("buffer_full")
                return
            if verified or (self._precheck(msg) and self._check_signed(msg)):
                self._buffer.setdefault(h, []).append(msg)
            return
        if not verified:
            if not self._precheck(msg):
                return
            if self._redundant(msg):
                self._drop("redundant")
                return
            if not self._check_signed(msg):
                return
        if isinstance(msg, PrePrepare):
            self._on_preprepare(msg)
        elif isinstance(msg, Prepare):
            r = self._slot.round(v)
            r.prepares.setdefault(msg.key, {})[msg.sender] = msg.signature
            self._evaluate(r)
        else:
            r = self._slot.round(v)
            r.commits.setdefault(msg.key, {})[msg.sender] = msg.signature
            self._evaluate(r)

    def _precheck(self, msg: PrePrepare | Prepare | Commit) -> bool:
        """Cheap checks that need no signature (done before verifying)."""
        if isinstance(msg, PrePrepare):
            if msg.sender != self.leader_of(msg.view, msg.height):
                self._drop("not_leader")
                return False
            size = len(msg.proposal.payload)
            if size == 0 or size > self.config.max_payload_bytes:
                self._drop("invalid_proposal")
                return False
        return True

    def _redundant(self, msg: PrePrepare | Prepare | Commit) -> bool:
        """A vote that cannot change anything: its round already has its quorum."""
        r = self._slot.rounds.get(msg.view)
        if r is None or isinstance(msg, PrePrepare):
            return False
        if isinstance(msg, Prepare):
            return r.prepared_key is not None
        return r.committed(self._quorum)

    def _claim_far(self, msg: Message, verified: bool) -> None:
        """Learn from a message we drop that its sender is ahead (verified, once)."""
        if msg.height <= self._claims.get(msg.sender, 0) or msg.height <= self._height:
            return
        if verified or self._valid_signature(msg):
            self._note_claim(msg.sender, msg.height)

    def _on_preprepare(self, msg: PrePrepare) -> None:
        r = self._slot.round(msg.view)
        if r.proposal is not None:
            if r.proposal.digest == msg.proposal.digest:
                self._drop("duplicate")
            else:
                nv = self._new_views.get(msg.height)
                if nv is not None and nv.view == msg.view:
                    self._record_equivocation(nv, msg)
                else:
                    self._drop("duplicate")
            return
        if msg.proposal.parent_hash != self._head.block_hash:
            self._drop("bad_parent")
            return
        self._accept_proposal(r, msg.proposal)

    def _accept_proposal(self, r: Round, proposal: Proposal) -> None:
        r.proposal = proposal
        self._arm_timer()
        slot = self._slot
        if proposal.digest in slot.executed:
            self._evaluate(r)
        elif proposal.digest not in slot.executing:
            slot.executing.add(proposal.digest)
            self.counters.executions += 1
            self._emit(ExecuteBlock(self._height, r.view, proposal))

    # -- voting ---------------------------------------------------------------------------

    def _executed_key(self, r: Round) -> VoteKey | None:
        if r.proposal is None:
            return None
        return self._slot.executed.get(r.proposal.digest)

    def _evaluate(self, r: Round) -> None:
        """Advance round ``r`` as far as its votes allow: vote, prepare, commit."""
        slot = self._slot
        if slot.decided:
            return
        key = self._executed_key(r)
        if key is None:
            return
        if not r.prepare_sent and r.view == self._view and self.view_active:
            self._send_prepare(r, key)
        if r.prepared_key is None and r.prepared(self._quorum, key):
            self._on_prepared(r, key)
        if r.committed(self._quorum):
            self._on_committed(r)

    def _send_prepare(self, r: Round, key: VoteKey) -> None:
        if self._observer:
            return
        if (r.view, self._height) == self._amnesia and (
            self._cert is None or self._cert.view != r.view or self._cert.proposal.digest != key[0]
        ):
            return  # we may have signed another Prepare here before a crash
        self._may_sign(r.view)
        digest, block_hash, state_root = key
        sig = self._signer()(prepare_digest(r.view, self._height, digest, block_hash, state_root))
        r.prepare_sent = True
        r.prepares.setdefault(key, {})[self._me] = sig
        self._emit(
            Broadcast(Prepare(r.view, self._height, digest, block_hash, state_root, self._me, sig))
        )

    def _on_prepared(self, r: Round, key: VoteKey) -> None:
        r.prepared_key = key
        cert = r.certificate(self._quorum)
        if self._cert is None or cert.view > self._cert.view:
            self._cert = cert
            self._persist()  # durable BEFORE the Commit below leaves the node
        if r.view != self._view or not self.view_active or self._observer or r.commit_sent:
            return
        digest, block_hash, state_root = key
        sig = self._signer()(commit_digest(r.view, self._height, digest, block_hash, state_root))
        r.commit_sent = True
        r.commits.setdefault(key, {})[self._me] = sig
        self._emit(
            Broadcast(Commit(r.view, self._height, digest, block_hash, state_root, self._me, sig))
        )

    def _on_committed(self, r: Round) -> None:
        assert r.prepared_key is not None and r.proposal is not None
        self._slot.decided = True
        _, block_hash, state_root = r.prepared_key
        self.counters.commits += 1
        self._k = 0
        self._deadline = None
        self._emit(
            CommitBlock(self._height, r.proposal, block_hash, state_root, r.seal(self._quorum))
        )

    # -- runtime events -------------------------------------------------------------------

    def _on_proposal_ready(self, event: ProposalReady) -> None:
        if not event.payload:
            raise ValueError("ProposalReady needs a non-empty payload (no empty blocks)")
        if not self.wants_proposal() or len(event.payload) > self.config.max_payload_bytes:
            self._drop("proposal_ignored")
            return
        assert not self._observer
        self._may_sign(self._view)
        proposal = Proposal(self._height, self._head.block_hash, event.payload)
        sig = self._signer()(preprepare_digest(self._view, self._height, proposal.digest))
        self._emit(Broadcast(PrePrepare(self._view, proposal, self._me, sig)))
        self._accept_proposal(self._slot.round(self._view), proposal)

    def _on_block_executed(self, event: BlockExecuted) -> None:
        slot = self._slot
        if event.height != self._height or event.proposal_digest not in slot.executing:
            return  # for a height we left, or not asked for: nothing to do
        slot.executing.discard(event.proposal_digest)
        if not event.ok:
            slot.executed[event.proposal_digest] = None
            self._drop("invalid_proposal")
            return
        slot.executed[event.proposal_digest] = (
            event.proposal_digest,
            event.block_hash,
            event.state_root,
        )
        for r in list(slot.rounds.values()):
            if r.proposal is not None and r.proposal.digest == event.proposal_digest:
                self._evaluate(r)

    def _on_block_persisted(self, event: BlockPersisted) -> None:
        if event.height < self._height:
            return
        sealers = None if event.sealers is None else check_sealers(event.sealers)
        if sealers == self._sealers:
            sealers = None
        # raises (our runtime's bug) before anything changes
        self._reconfigure(event.timeout_ticks, event.leader_period, sealers)
        self._enter_height(ChainHead(event.height, event.block_hash))
        if sealers is not None:
            self._change_sealers(sealers)
        else:
            self._prune_held()
        self._arm_timer()
        self._replay()

    def _enter_height(self, head: ChainHead) -> None:
        """The one place a new height starts: every per-height state is reset here."""
        self._head = head
        self._height = head.height + 1
        self._slot = HeightSlot(self._height)
        if self._cert is not None and self._cert.height < self._height:
            self._cert = None
        for table in (self._seen, self._buffer, self._new_views):
            for h in [h for h in table if h < self._height]:
                del table[h]
        self._good_certs.clear()
        self._k = 0  # progress, however it came
        self._deadline = None

    def _reconfigure(
        self,
        timeout_ticks: int | None,
        leader_period: int | None,
        sealers: tuple[bytes, ...] | None = None,
    ) -> None:
        """Adopt changed consensus system config before the next height starts."""
        new_timeout = self.config.timeout_ticks if timeout_ticks is None else timeout_ticks
        new_period = self.config.leader_period if leader_period is None else leader_period
        if sealers is None and (new_timeout, new_period) == (
            self.config.timeout_ticks,
            self.config.leader_period,
        ):
            return
        changes: dict[str, object] = {"timeout_ticks": new_timeout, "leader_period": new_period}
        if sealers is not None:
            changes["sealers"] = sealers
            changes["index"] = sealers.index(self._key) if self._key in sealers else None
        self.config = dataclasses.replace(self.config, **changes)  # type: ignore[arg-type]
        interval = self.config.sync_interval_ticks
        self._sync_interval = interval or max(1, self.config.timeout_ticks // 4)

    def _change_sealers(self, sealers: tuple[bytes, ...]) -> None:
        """Adopt the sealer list a block changed, at the first height it governs.

        Messages already verified move with their signers' keys (:func:`reindex`); what
        the old list could not verify, and NewViews (whose signatures cover their proofs'
        indices), are checked again under the new list.
        """
        moves = remap(self._sealers, sealers)
        was_observer = self._observer
        self._set_sealers(sealers)
        self.counters.membership_changes += 1
        self._claims = {moves[s]: h for s, h in self._claims.items() if s in moves}
        self._vc_latest = {
            moves[s]: moved
            for s, vc in self._vc_latest.items()
            if (moved := reindex(vc, moves)) is not None
        }
        mine = self._my_vc
        self._my_vc = reindex(mine, moves) if mine is not None and not self._observer else None
        self._replied.clear()
        for h, table in self._seen.items():
            self._seen[h] = {
                (kind, view, moves[s]): signed
                for (kind, view, s), msg in table.items()
                if isinstance(msg, PrePrepare | Prepare | Commit)
                and (signed := reindex(msg, moves)) is not None
            }
        self._reindex_buffer(moves)
        future = [nv for h, nv in sorted(self._new_views.items()) if h >= self._height]
        for nv in future:
            del self._new_views[nv.height]
        if self._active_from is not None and self._active_from >= self._height:
            self._active_from = None  # a NewView checked under the old list: check again
        if self._observer:
            self._stop_waiting()
        elif was_observer:
            if self._unsettled:  # no NewView ever justified this view here: wait for one
                self._active_from = None
                self._unsettled = False
            self._persist()  # from now on its view is a promise
        held, self._held = self._held, []
        for msg in [*future, *held]:
            self._route(msg)
        self._check_join()
        self._try_new_view()

    def _stop_waiting(self) -> None:
        """A sealer just demoted: no timers, and no waiting for a NewView of a view change
        only sealers can finish (it would report a stall for ever). Its view stays: views
        never go down, because a node re-promoted later must not vote in a view it left."""
        self._deadline = self._resend_at = None
        self._my_vc = None
        if self._active_from is None:
            self._active_from = self._height
            self._unsettled = True

    def _reindex_buffer(self, moves: Remap) -> None:
        buffered, self._buffer = self._buffer, {}
        for h, msgs in buffered.items():
            for msg in msgs:
                if not isinstance(msg, PrePrepare | Prepare | Commit):
                    continue  # only signed normal-case messages are buffered
                moved = reindex(msg, moves)
                if moved is None:
                    self._drop("non_sealer")
                elif isinstance(moved, PrePrepare) and moved.sender != self.leader_of(
                    moved.view, h
                ):
                    self._drop("not_leader")
                else:
                    self._buffer.setdefault(h, []).append(moved)

    def _prune_held(self) -> None:
        """A height came without a membership change: held messages for it cannot be
        anyone's (the list that failed them is the one in force there)."""
        keep = [m for m in self._held if m.height > self._height]
        for _ in range(len(self._held) - len(keep)):
            self._drop("bad_signature")
        self._held = keep

    def _arm_timer(self) -> None:
        if self._deadline is None and not self._observer and self._waiting():
            self._deadline = self._now + self._timeout()

    def _waiting(self) -> bool:
        """Is there anything whose absence should make us suspect the leader?"""
        if self._slot.decided:
            return False
        if not self.view_active or self._txs_pending:
            return True
        return any(r.proposal is not None for r in self._slot.rounds.values())

    def _on_tick(self, event: Tick) -> None:
        self._now += 1
        self._txs_pending = event.txs_pending
        if self._resend_at is not None and self._now >= self._resend_at:
            # Half-way to the timeout, say it again: a lost ViewChange (or a NewView we
            # missed, which peers re-send on seeing it) must not cost a whole view.
            self._resend_at = None
            if (vc := self._waiting_view_change()) is not None:
                self._emit(Broadcast(vc))
        if self._deadline is None:
            self._arm_timer()
            if self._observer and self._behind(1):
                self._request_sync()
            return
        if not self._waiting():
            # Armed when there was something to wait for (e.g. a commit that emptied the
            # pool, seen with the previous tick's txs_pending): nothing to suspect any more.
            self._deadline = None
            return
        if self._now >= self._deadline:
            self._on_timeout()

    def _on_timeout(self) -> None:
        self._deadline = None
        if self._highest_claim() > self._height:
            self._request_sync()
        if self._behind(1) or self._observer:
            # At least one honest sealer is ahead: catch up instead of changing views.
            self._arm_timer()
            return
        if self.view_active:
            self._start_view_change(self._view + 1)
            return
        support = sum(1 for vc in self._vc_latest.values() if vc.view >= self._view)
        if support > self._f:
            self._start_view_change(self._view + 1)
        else:
            # Alone in wanting this view: ask again rather than racing ahead of everyone.
            self._k = min(self._k + 1, self.config.backoff_cap)
            self._broadcast_view_change()
            self._arm_timer()

    # -- view change ----------------------------------------------------------------------

    def _enter_view(self, new_view: int) -> None:
        """The one place the view grows: waiting for its NewView from here on."""
        assert new_view > self._view
        self._view = new_view
        self._active_from = None
        self.counters.view_changes += 1
        self._replied = {k: at for k, at in self._replied.items() if k[1] >= new_view}
        self._deadline = None

    def _start_view_change(self, new_view: int) -> None:
        self._enter_view(new_view)
        self._k = min(self._k + 1, self.config.backoff_cap)
        self._persist()  # durable BEFORE the ViewChange (we promise to leave lower views)
        self._broadcast_view_change()
        self._arm_timer()
        self._try_new_view()

    def _broadcast_view_change(self) -> None:
        assert not self._observer
        cert = self._cert
        if cert is not None and (cert.height != self._height or cert.view >= self._view):
            # Only a certificate of an earlier view belongs in a ViewChange for this one;
            # after a restart while prepared in the restored view ours is of this view.
            cert = None
        digest = viewchange_digest(self._view, self._height, cert.digest if cert else None)
        vc = ViewChange(self._view, self._height, cert, self._me, self._signer()(digest))
        self._my_vc = vc
        self._vc_latest[self._me] = vc
        self._resend_at = self._now + max(1, self._timeout() // 2)
        self._emit(Broadcast(vc))

    def _waiting_view_change(self) -> ViewChange | None:
        """Our ViewChange for the view we wait to enter (None: the view is active, or we
        asked for none in it)."""
        vc = self._my_vc
        if self.view_active or vc is None or vc.view != self._view:
            return None
        return vc

    def _on_peer_connected(self, index: int) -> None:
        """A sealer just (re)connected: if we are waiting for a view's NewView, it gets
        our ViewChange now (it missed the broadcast): it joins us, or answers with the
        NewView it holds. One Send of a message already signed; nothing else changes."""
        vc = self._waiting_view_change()
        if vc is not None and not self._observer and index != self._me and 0 <= index < self._n:
            self._emit(Send(index, vc))

    def _on_view_change(self, vc: ViewChange) -> None:
        cert = vc.prepared
        if vc.view < 1 or (cert is not None and (cert.height != vc.height or cert.view >= vc.view)):
            self._drop("malformed")
            return
        useful = vc.view > self._view or (vc.view == self._view and not self.view_active)
        if not useful:
            # Even a repeat of a ViewChange we hold: the sender re-sends because it is
            # still waiting (it lost the NewView, or it restarted), so show it the way.
            self._help_lagging(vc)
            return
        prev = self._vc_latest.get(vc.sender)
        if prev is not None and vc.view <= prev.view:
            if vc.view < prev.view:
                self._drop("stale")
                return
            if prev.digest == vc.digest:
                self._drop("duplicate")
                return
            if not self._valid_signature(vc):
                self._unverified(vc)
                return
            if vc.height <= prev.height:
                self._record_equivocation(prev, vc)
                return
            # Same view asked again from a higher height: the sender synced while it
            # waited. Honest and newer, so it replaces the old one (not evidence).
        elif not self._valid_signature(vc):
            self._unverified(vc)
            return
        self._note_claim(vc.sender, vc.height)
        self._vc_latest[vc.sender] = vc
        self._check_join()
        self._try_new_view()

    def _help_lagging(self, vc: ViewChange) -> None:
        """``vc`` asks for a view we are past: show the sender the way forward, at most
        once per quarter timeout (it re-sends every half timeout, so a re-send is always
        answered, and a Byzantine sender gets one NewView out of us per quarter timeout
        at most). Not once for good: a sealer restarted twice in one view sends the same
        ViewChange again (same bytes: the signature is deterministic), and a peer that
        stayed silent the second time left it waiting for a NewView that never came,
        unable to vote in a view all the others were in.
        """
        self._drop("stale")
        key = (vc.sender, self._view)
        last = self._replied.get(key)
        if self._observer or (last is not None and self._now - last < self._timeout() // 4):
            return
        if not self._valid_signature(vc):
            return
        self._replied[key] = self._now
        self._note_claim(vc.sender, vc.height)
        if self.view_active and self._last_nv is not None and self._last_nv.view == self._view:
            self._emit(Send(vc.sender, self._last_nv))
        elif (mine := self._waiting_view_change()) is not None:
            self._emit(Send(vc.sender, mine))

    def _check_join(self) -> None:
        if self._observer:
            return
        views = sorted(
            (
                vc.view
                for s, vc in self._vc_latest.items()
                if s != self._me and vc.view > self._view
            ),
            reverse=True,
        )
        if len(views) > self._f:
            self._start_view_change(views[self._f])

    def _cert_ok(self, cert: PreparedCertificate) -> bool:
        if _cert_key(cert) in self._good_certs:
            return True
        if verify_certificate(self._sealers, self._verify_sig, cert, need=self._quorum):
            self._good_certs.add(_cert_key(cert))
            return True
        return False

    def _try_new_view(self) -> None:
        """As the new leader, send NewView once a quorum of ViewChanges is in."""
        me = self._me
        if (
            self._observer
            or self.view_active
            or self._sent_nv_view >= self._view
            or self.leader_of(self._view, self._height) != me
        ):
            return
        proofs = [
            vc
            for _, vc in sorted(self._vc_latest.items())
            if vc.view == self._view and vc.height <= self._height
        ]
        if len(proofs) < self._quorum:
            return
        good = []
        for vc in proofs:
            if vc.prepared is None or self._cert_ok(vc.prepared):
                good.append(vc)
            else:
                self._drop("invalid_certificate")
                del self._vc_latest[vc.sender]
        if len(good) < self._quorum:
            return
        proposal = self._select_reproposal(good, self._height)
        unsigned = NewView(self._view, self._height, tuple(good), proposal, me, bytes(65))
        sig = self._signer()(unsigned.digest)
        nv = NewView(self._view, self._height, tuple(good), proposal, me, sig)
        self._sent_nv_view = self._view
        self._emit(Broadcast(nv))
        self._accept_new_view(nv)

    def _proof_known(self, vc: ViewChange) -> bool:
        known = self._vc_latest.get(vc.sender)
        if known is None or known.digest != vc.digest or known.signature != vc.signature:
            return False
        return vc.prepared is None or _cert_key(vc.prepared) in self._good_certs

    def _on_new_view(self, nv: NewView) -> None:
        if nv.view < self._view:
            self._drop("stale")
            return
        if nv.height > self._height + self.config.height_window:
            # Any leader of (view, H) can wrap the same ViewChanges into a NewView for every
            # H it leads; storing them all would grow without bound. Sync first.
            self._claim_far(nv, False)
            self._drop("far_future")
            return
        if nv.view == self._view and self.view_active:
            known = self._new_views.get(nv.height)
            if (known is not None and known.view == nv.view) or nv.height != self._height:
                self._drop("duplicate" if known is not None else "stale")
                return
        if nv.proposal is not None and nv.proposal.height != nv.height:
            self._drop("malformed")
            return
        if nv.sender != self.leader_of(nv.view, nv.height):
            if not self._hold(nv):
                self._drop("not_leader")
            return
        if not self._valid_signature(nv):
            self._unverified(nv)
            return
        reason = check_new_view(
            self._sealers,
            self._verify_sig,
            nv,
            leader=self.leader_of(nv.view, nv.height),
            verified=self._proof_known,
            select=self._select_reproposal,
            need=self._quorum,
        )
        if reason is not None:
            if not self._hold(nv):
                self._drop("invalid_new_view")
            return
        for vc in nv.view_changes:
            if vc.prepared is not None:
                self._good_certs.add(_cert_key(vc.prepared))
        self._note_claim(nv.sender, nv.height)
        self._accept_new_view(nv)

    def _accept_new_view(self, nv: NewView) -> None:
        if nv.view > self._view:
            self._enter_view(nv.view)
        self._unsettled = False
        if self._active_from is None or nv.height < self._active_from:
            self._active_from = nv.height
        self._settled_view = self._view
        self.counters.new_views += 1
        self._new_views[nv.height] = nv
        self._last_nv = nv
        self._slot.prune_below(self._view - self.config.view_window)
        if self._view > self._persisted_view:
            self._persist()
        self._deadline = None
        self._arm_timer()
        if nv.height > self._height:
            self._request_sync(force=True)
        self._replay()

    # -- catching up ----------------------------------------------------------------------

    def _replay(self) -> None:
        """Re-admit buffered messages that the new height or view may make useful."""
        if not self.view_active:
            return
        nv = self._new_views.get(self._height)
        if nv is not None and nv.view == self._view and nv.proposal is not None:
            r = self._slot.round(self._view)
            if r.proposal is None:
                if nv.proposal.parent_hash == self._head.block_hash:
                    self._accept_proposal(r, nv.proposal)
                else:
                    self._drop("bad_parent")
        pending = self._buffer.pop(self._height, None)
        if not pending:
            return
        for msg in pending:
            if isinstance(msg, PrePrepare | Prepare | Commit):
                self._admit(msg, verified=True)

    def _note_claim(self, sender: int, height: int) -> None:
        if height > self._claims.get(sender, 0):
            self._claims[sender] = height
            if height >= self._height + 2:
                self._request_sync()

    def _highest_claim(self) -> int:
        return max(self._claims.values(), default=0)

    def _behind(self, margin: int) -> bool:
        """Have f+1 sealers (so at least one honest) shown heights >= ours + margin?"""
        ahead = sum(1 for h in self._claims.values() if h >= self._height + margin)
        return ahead > self._f

    def _request_sync(self, *, force: bool = False) -> None:
        target = self._highest_claim() - 1
        if target < self._height:
            return
        last = self._last_sync_tick
        if not force and last is not None and self._now - last < self._sync_interval:
            return
        self._last_sync_tick = self._now
        self.counters.sync_requests += 1
        peers = tuple(sorted(s for s, h in self._claims.items() if h - 1 >= self._height))
        self._emit(RequestSync(target, peers))
