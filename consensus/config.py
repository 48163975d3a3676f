"""Static configuration of one replica: who the sealers are, its keys, timers and windows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consensus.crypto import HASH_SIZE, PUBLIC_KEY_SIZE, Signer, Verifier
from consensus.membership import check_sealers

"""``signer(digest32) -> signature65``: the sealer's key, injected (never stored here)."""
"""``verifier(public_key64, digest32, signature65) -> bool``."""


@dataclass(frozen=True, slots=True)
class ReplicaConfig:
    """Everything a replica needs that does not change while it runs.

    ``index`` is this node's position in ``sealers`` (None for an observer, which never
    signs, votes or leads). ``node_key`` is this node's public key (default: the sealer
    key at ``index``): an observer that has one and a ``signer`` starts voting when a
    membership change (:class:`consensus.events.BlockPersisted` ``sealers``) adds its key.
    ``sealers`` is the list in force at the height after ``head``.
    ``timeout_ticks`` is FISCO's consensus_timeout in ticks; the k-th view change in a
    row waits ``timeout_ticks * 1.5**min(k, backoff_cap)``.
    ``height_window`` and ``view_window`` bound how far ahead a message may be before it is
    dropped as far-future (the watermark window); nearer ones are buffered.
    """

    index: int | None
    sealers: Sequence[bytes]
    signer: Signer | None
    verifier: Verifier
    genesis_hash: bytes = bytes(HASH_SIZE)
    timeout_ticks: int = 60
    backoff_cap: int = 10
    leader_period: int = 1
    height_window: int = 50
    view_window: int = 10
    max_payload_bytes: int = 4 * 1024 * 1024
    max_buffered_payload_bytes: int = 64 * 1024 * 1024
    """Proposal bytes held for future heights and views; more is dropped (buffer_full)."""
    sync_interval_ticks: int = 0
    """Least ticks between two RequestSync actions; 0 means ``timeout_ticks // 4``."""
    max_evidence: int = 256
    max_held_messages: int = 1024
    """Messages for later heights kept until a membership change says who signed them."""
    node_key: bytes | None = None

    def __post_init__(self) -> None:
        sealers = check_sealers(self.sealers)
        object.__setattr__(self, "sealers", sealers)
        if self.index is not None:
            if not 0 <= self.index < len(sealers):
                raise ValueError(f"index {self.index} is not a sealer position")
            if self.signer is None:
                raise ValueError("a sealer needs a signer")
            if self.node_key is None:
                object.__setattr__(self, "node_key", sealers[self.index])
            elif self.node_key != sealers[self.index]:
                raise ValueError("node_key is not the sealer key at index")
        elif self.node_key is not None and self.node_key in sealers:
            raise ValueError("node_key is a sealer key but index is None")
        if self.node_key is not None and len(self.node_key) != PUBLIC_KEY_SIZE:
            raise ValueError("node_key must be 64 bytes")
        if len(self.genesis_hash) != HASH_SIZE:
            raise ValueError("genesis_hash must be 32 bytes")
        for name in ("timeout_ticks", "leader_period", "height_window", "view_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.backoff_cap < 0 or self.sync_interval_ticks < 0 or self.max_evidence < 0:
            raise ValueError("backoff_cap, sync_interval_ticks and max_evidence must be >= 0")
        if self.max_payload_bytes < 1:
            raise ValueError("max_payload_bytes must be at least 1")
