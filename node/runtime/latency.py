"""Latency histograms of one node, as CometBFT keeps them (docs/rpc.md, Metrics).

- commit interval: seconds between this node's consecutive block commits (consensus or
  block sync);
- submit-to-commit: from ``Node.submit`` admitting a client tx to the commit of its block,
  sampled: the first accepted tx of each ``submit`` call, at most ``MAX_PENDING`` in flight
  (the oldest sample is dropped, so a tx that never commits cannot grow the table);
- view change: from the replica leaving an active view to the next view becoming active.

Each hook is O(1) per call, except ``committed``, which looks each tx of the block up in
the sample table only while the table holds something (one dict lookup per tx).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from node.rpc.metrics import Histogram, Metric

# Fixed upper bounds, in seconds.
COMMIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SUBMIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
VIEW_CHANGE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
MAX_PENDING = 1024


class Latency:
    """The three histograms and the state their hooks need."""

    __slots__ = (
        "_clock",
        "_last_commit",
        "_pending",
        "_view_left",
        "commit_interval",
        "submit_to_commit",
        "view_change",
    )

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.commit_interval = Histogram(
            "ledgerlab_commit_interval_seconds",
            "Seconds between consecutive block commits on this node.",
            COMMIT_BUCKETS,
        )
        self.submit_to_commit = Histogram(
            "ledgerlab_submit_to_commit_seconds",
            "Seconds from admitting a client tx (sampled) to committing its block.",
            SUBMIT_BUCKETS,
        )
        self.view_change = Histogram(
            "ledgerlab_view_change_seconds",
            "Seconds from leaving an active view to the next view becoming active.",
            VIEW_CHANGE_BUCKETS,
        )
        self._last_commit: float | None = None
        self._pending: dict[bytes, float] = {}  # sampled tx hash -> admission time
        self._view_left: float | None = None  # when the current view change started

    def submitted(self, results: Sequence[object]) -> None:
        """``Node.submit``'s results: sample the first accepted tx (a hash)."""
        for r in results:
            if isinstance(r, bytes):
                pending = self._pending
                if len(pending) >= MAX_PENDING:
                    del pending[next(iter(pending))]
                pending.setdefault(r, self._clock())
                return

    def committed(self, tx_hashes: Iterable[bytes]) -> None:
        """A block was committed with these txs."""
        now = self._clock()
        if self._last_commit is not None:
            self.commit_interval.observe(now - self._last_commit)
        self._last_commit = now
        pending = self._pending
        if pending:
            for h in tx_hashes:
                t = pending.pop(h, None)
                if t is not None:
                    self.submit_to_commit.observe(now - t)

    def view_active(self, active: bool) -> None:
        """The replica's ``view_active`` after a step: times the inactive stretches."""
        if active:
            if self._view_left is not None:
                self.view_change.observe(self._clock() - self._view_left)
                self._view_left = None
        elif self._view_left is None:
            self._view_left = self._clock()

    def metrics(self) -> Iterable[Metric]:
        yield self.commit_interval.metric()
        yield self.submit_to_commit.metric()
        yield self.view_change.metric()
