"""Replicas with one safety rule switched off, to prove the invariant checker bites.

Never used unless asked for (``ledgerlab sim --break RULE`` or a test). Each variant is a
subclass of the real Replica that overrides exactly one decision:

* ``skip-reproposal``: NewView never carries the highest prepared block (leader and
  validators both skip the rule), so a block committed by some replicas can be replaced.
* ``small-quorum``: votes are counted against ``n // 2`` instead of ``n - f``, so two
  partitions can each commit their own block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from consensus.messages import Proposal, ViewChange
from consensus.replica import Replica


class SkipReproposalReplica(Replica):
    def _select_reproposal(
        self, view_changes: Sequence[ViewChange], height: int
    ) -> Proposal | None:
        return None


class SmallQuorumReplica(Replica):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._quorum = max(1, self._n // 2)


def factory_for(rule: str | None) -> Callable[..., Replica]:
    if rule is None:
        return Replica
    if rule == "skip-reproposal":
        return SkipReproposalReplica
    if rule == "small-quorum":
        return SmallQuorumReplica
    raise ValueError(f"unknown rule {rule!r}")
