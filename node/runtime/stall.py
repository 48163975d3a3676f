"""Is this node stalled? Transactions are pending and nothing committed for too long.

A PBFT chain seals no empty blocks, so a height that stands still with an empty pool is
idle, not stuck. The node is *stalled* when transactions have been pending, without a
commit, for longer than the consensus timeout: by then a healthy chain has committed or
changed views. The status loop observes once a second; what the node reports as the
reason (:meth:`node.runtime.node.Node.stall_reason`) comes from the replica's progress.
"""

from __future__ import annotations


class StallWatch:
    """Tracks the last commit and how long transactions have waited since."""

    def __init__(self, now: float) -> None:
        self.last_commit = now
        """Monotonic time of the last commit (start-up counts as one)."""
        self.pending_since: float | None = None
        self.stalled = False

    def committed(self, now: float) -> None:
        self.last_commit = now
        self.pending_since = None
        self.stalled = False

    def observe(self, now: float, *, pending: bool, timeout: float) -> None:
        """One look at the pool: ``pending`` txs waiting; ``timeout`` in seconds."""
        if not pending:
            self.pending_since = None
            self.stalled = False
            return
        if self.pending_since is None:
            self.pending_since = now
        self.stalled = self.waiting(now) > timeout

    def waiting(self, now: float) -> float:
        """Seconds work has been waiting without a commit (0 when nothing waits)."""
        if self.pending_since is None:
            return 0.0
        return max(0.0, now - max(self.last_commit, self.pending_since))

    def seconds_since_commit(self, now: float) -> float:
        return max(0.0, now - self.last_commit)
