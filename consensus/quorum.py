"""Membership arithmetic: fault bound, quorum size and the leader schedule.

Kept apart from the replica so that the numbers every safety argument rests on can be
tested exhaustively on their own. With ``n`` sealers PBFT tolerates ``f = (n - 1) // 3``
Byzantine ones; a quorum is ``n - f`` votes. Two quorums then share at least ``f + 1``
sealers (so at least one honest one), and the ``n - f`` sealers that are not faulty can
always form a quorum by themselves (liveness). ``n = 1`` gives ``f = 0`` and a quorum of
one: a single sealer commits alone.
"""

from __future__ import annotations


def max_faulty(n: int) -> int:
    """The largest number of Byzantine sealers ``n`` sealers tolerate: ``(n - 1) // 3``."""
    if n < 1:
        raise ValueError(f"need at least one sealer, got {n}")
    return (n - 1) // 3


def quorum(n: int) -> int:
    """Votes needed to prepare or commit: ``n - f`` (``2f + 1`` when ``n = 3f + 1``)."""
    return n - max_faulty(n)


def weak_quorum(n: int) -> int:
    """``f + 1``: enough votes that at least one comes from an honest sealer."""
    return max_faulty(n) + 1


def leader_of(view: int, height: int, n: int, leader_period: int = 1) -> int:
    """Index of the sealer that proposes ``height`` in ``view``.

    ``(view + height // leader_period) % n``: the FISCO BCOS 3.x rule, which is the 2.x
    rule ``(view + height) % n`` when ``leader_period`` is 1. A view change moves the
    schedule by one sealer.
    """
    if n < 1 or leader_period < 1:
        raise ValueError("leader_of needs n >= 1 and leader_period >= 1")
    return (view + height // leader_period) % n
