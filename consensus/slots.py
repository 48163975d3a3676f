"""Per-height bookkeeping: one Round per view, each owning its prepared/committed test.

A replica keeps exactly one :class:`HeightSlot`, for the height it is deciding; it is
dropped wholesale when the block is persisted, which is the garbage collection of all
per-height vote state.
"""

from __future__ import annotations

from consensus.messages import PreparedCertificate, Proposal, Seal

VoteKey = tuple[bytes, bytes, bytes]
"""(proposal digest, block hash, state root): what matching votes agree on."""


class Round:
    """Votes of one view at one height."""

    __slots__ = (
        "commit_sent",
        "commits",
        "prepare_sent",
        "prepared_key",
        "prepares",
        "proposal",
        "view",
    )

    def __init__(self, view: int) -> None:
        self.view = view
        self.proposal: Proposal | None = None
        self.prepares: dict[VoteKey, dict[int, bytes]] = {}
        self.commits: dict[VoteKey, dict[int, bytes]] = {}
        """vote key -> sealer index -> Commit signature (a quorum of them is the seal)."""
        self.prepare_sent = False
        self.commit_sent = False
        self.prepared_key: VoteKey | None = None

    def prepared(self, quorum: int, executed: VoteKey | None) -> bool:
        """A quorum of Prepares matches what this replica itself executed."""
        if self.prepared_key is not None:
            return True
        if executed is None or self.proposal is None or executed[0] != self.proposal.digest:
            return False
        return len(self.prepares.get(executed, ())) >= quorum

    def committed(self, quorum: int) -> bool:
        """Prepared, and a quorum of Commits for the same result."""
        key = self.prepared_key
        return key is not None and len(self.commits.get(key, ())) >= quorum

    def quorum_signatures(self, quorum: int) -> tuple[tuple[int, bytes], ...]:
        """The first ``quorum`` Prepare signatures of the prepared result, by index."""
        assert self.prepared_key is not None
        votes = self.prepares[self.prepared_key]
        return tuple(sorted(votes.items())[:quorum])

    def commit_signatures(self, quorum: int) -> tuple[tuple[int, bytes], ...]:
        """The first ``quorum`` Commit signatures of the prepared result, by index."""
        assert self.prepared_key is not None
        votes = self.commits[self.prepared_key]
        return tuple(sorted(votes.items())[:quorum])

    def certificate(self, quorum: int) -> PreparedCertificate:
        assert self.prepared_key is not None and self.proposal is not None
        _, block_hash, state_root = self.prepared_key
        return PreparedCertificate(
            self.view, self.proposal, block_hash, state_root, self.quorum_signatures(quorum)
        )

    def seal(self, quorum: int) -> Seal:
        assert self.prepared_key is not None
        return Seal(self.view, self.prepared_key[0], self.commit_signatures(quorum))


class HeightSlot:
    """All rounds and execution results for one height."""

    __slots__ = ("decided", "executed", "executing", "height", "rounds")

    def __init__(self, height: int) -> None:
        self.height = height
        self.rounds: dict[int, Round] = {}
        self.executed: dict[bytes, VoteKey | None] = {}
        """proposal digest -> executed vote key, or None when the executor said invalid."""
        self.executing: set[bytes] = set()
        self.decided = False
        """CommitBlock was emitted; waiting for BlockPersisted."""

    def round(self, view: int) -> Round:
        r = self.rounds.get(view)
        if r is None:
            r = self.rounds[view] = Round(view)
        return r

    def prune_below(self, view: int) -> None:
        for v in [v for v in self.rounds if v < view]:
            del self.rounds[v]
