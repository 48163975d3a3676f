"""PBFT consensus for ledgerlab, as a sans-I/O state machine plus a deterministic simulator.

The runtime creates a :class:`Replica` from a :class:`ReplicaConfig` (sealer keys, an
injected signer and verifier, timers in ticks), feeds it events with
:meth:`Replica.step` and performs the returned actions in order; docs/consensus.md and
:mod:`consensus.events` state the ordering rules (PersistState is durable before anything
after it; CommitBlock is durable before BlockPersisted is fed back).

Three things a reader of PBFT papers may not expect:

* Prepare and Commit also cover the proposal digest (``prepare_digest`` /
  ``commit_digest(view, height, proposal_digest, block_hash, state_root)``), and a
  :class:`Seal` (a quorum of Commit signatures) carries ``proposal_digest`` next to
  ``view``. A prepared certificate is then checkable without re-executing its proposal,
  so a NewView can be validated by signatures alone.
* ``Replica(config, *, restored=None, head=None)``: ``head`` (a :class:`ChainHead`) is the
  highest block already durable in storage; omit it for a fresh chain.
* :class:`Tick` has ``txs_pending`` (default True) so an idle chain does not churn views,
  and ``Replica.wants_proposal()`` says exactly when ProposalReady is welcome.
"""

from consensus.certs import (
    check_new_view,
    select_reproposal,
    verify_certificate,
    verify_seal,
)
from consensus.codec import DecodeError
from consensus.config import ReplicaConfig
from consensus.counters import DROP_REASONS, Counters, Equivocation
from consensus.crypto import Signer, Verifier
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
from consensus.messages import (
    MESSAGE_NAMES,
    Commit,
    Message,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    Proposal,
    Seal,
    ViewChange,
    commit_digest,
    decode_message,
    encode_message,
    newview_digest,
    prepare_digest,
    preprepare_digest,
    proposal_digest,
    seal_digest,
    viewchange_digest,
)
from consensus.quorum import leader_of, max_faulty, quorum, weak_quorum
from consensus.replica import Phase, Progress, Replica, ReplicaStatus

__all__ = [
    "DROP_REASONS",
    "MESSAGE_NAMES",
    "Action",
    "BlockExecuted",
    "BlockPersisted",
    "Broadcast",
    "ChainHead",
    "Commit",
    "CommitBlock",
    "Counters",
    "DecodeError",
    "Equivocation",
    "Event",
    "ExecuteBlock",
    "Message",
    "MessageReceived",
    "NewView",
    "PeerConnected",
    "PersistState",
    "PersistedState",
    "Phase",
    "PrePrepare",
    "Prepare",
    "PreparedCertificate",
    "Progress",
    "Proposal",
    "ProposalReady",
    "Replica",
    "ReplicaConfig",
    "ReplicaStatus",
    "RequestSync",
    "Seal",
    "Send",
    "Signer",
    "Tick",
    "Verifier",
    "ViewChange",
    "check_new_view",
    "commit_digest",
    "decode_message",
    "encode_message",
    "leader_of",
    "max_faulty",
    "newview_digest",
    "prepare_digest",
    "preprepare_digest",
    "proposal_digest",
    "quorum",
    "seal_digest",
    "select_reproposal",
    "verify_certificate",
    "verify_seal",
    "viewchange_digest",
    "weak_quorum",
]
