"""Observability: what a replica received, sent, dropped and why, plus equivocation proof."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from consensus.messages import Message

DROP_REASONS = (
    "malformed",  # bytes that do not decode, or an inconsistent message object
    "non_sealer",  # sender index is not a sealer
    "own_index",  # claims to come from this replica (a twin or a replay)
    "bad_signature",
    "stale",  # for a height or view this replica has left
    "far_future",  # beyond the watermark window
    "duplicate",
    "equivocation",  # conflicts with an earlier signed message of the same sender
    "not_leader",  # a proposal from someone who does not lead that view and height
    "bad_parent",  # proposal not on top of this replica's head
    "invalid_proposal",  # empty/oversized payload, or the executor rejected it
    "invalid_new_view",  # proofs do not justify the NewView
    "invalid_certificate",  # a ViewChange carrying a prepared certificate that is not valid
    "redundant",  # a vote for a round that already reached its quorum (not verified)
    "proposal_ignored",  # ProposalReady while this replica does not want one
    "buffer_full",  # a future proposal beyond max_buffered_payload_bytes
)


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Two validly signed, conflicting messages from one sealer for the same slot."""

    sender: int
    kind: str
    view: int
    height: int
    first: Message
    second: Message
    sender_key: bytes = b""
    """The sender's public key: indices change meaning when the sealer list does."""


class Counters:
    """Monotonic counters; read them directly or through :meth:`snapshot`."""

    __slots__ = (
        "commits",
        "drops",
        "equivocations",
        "executions",
        "held",
        "membership_changes",
        "messages_in",
        "messages_out",
        "new_views",
        "sync_requests",
        "view_changes",
    )

    def __init__(self) -> None:
        self.messages_in: Counter[str] = Counter()
        self.messages_out: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()
        self.view_changes = 0
        self.new_views = 0
        self.commits = 0
        self.executions = 0
        self.sync_requests = 0
        self.equivocations = 0
        self.held = 0
        """Messages kept for a later height's (maybe different) sealer list."""
        self.membership_changes = 0

    def snapshot(self) -> dict[str, Any]:
        """A plain, JSON-ready copy (keys sorted)."""
        return {
            "messages_in": dict(sorted(self.messages_in.items())),
            "messages_out": dict(sorted(self.messages_out.items())),
            "drops": dict(sorted(self.drops.items())),
            "view_changes": self.view_changes,
            "new_views": self.new_views,
            "commits": self.commits,
            "executions": self.executions,
            "sync_requests": self.sync_requests,
            "equivocations": self.equivocations,
            "held": self.held,
            "membership_changes": self.membership_changes,
        }
