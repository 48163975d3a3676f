"""Liveness under chaos: could a quorum talk, and how long did progress stop while it could?

The promise (docs/reliability.md): while 2f+1 honest sealers are running and can reach
each other, the chain commits. The runner samples, every half second, the honest head
and whether such a quorum exists (:func:`quorum_can_talk`, from what it knows it cut,
killed or paused); :func:`find_stalls` then measures every stretch without a new block
while a quorum could talk and work was waiting, and gives each its bound::

    bound = 3 x T  +  R (if the stretch began as a quorum came back)  +  D  +  SLACK

* ``T``: the longest view-change timeout (back-off included, ``getConsensusStatus``
  ``timeout``) an honest sealer reported when the stretch began. PBFT needs at most one
  timeout to leave a dead leader's view and the NewView round after it; three leave room
  for one more failed view.
* ``R = RECONNECT``: when the stretch began as a quorum came back, or a sealer was
  restarted or resumed or a link healed less than R before or during it, the nodes must
  dial again (and a restarted node must start and sync). The TCP
  transport retries with back-off up to ``backoff_max`` (10 s) times a jitter of up to
  1.5, plus a TLS handshake (5 s): 20 s.
* ``D``: 20 x the largest one-way delay on a link while links are slow: delay + jitter +
  the time its rate limit takes to pass a 64 KiB frame (a height is about five message
  delays; queues behind a rate limit make it worse).
* ``SLACK`` (5 s): four node processes, the proxy and the client share two cores here;
  the samples are half a second apart.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from consensus.quorum import quorum

RECONNECT = 20.0
SLACK = 5.0
DELAY_FACTOR = 20.0


def quorum_can_talk(
    sealers: Sequence[int], up: Iterable[int], can_talk: Callable[[int, int], bool]
) -> bool:
    """Whether ``quorum(len(sealers))`` of the ``up`` sealers all reach each other."""
    live = [s for s in sealers if s in set(up)]
    need = quorum(len(sealers)) if sealers else 1
    if len(live) < need:
        return False
    for group in itertools.combinations(live, need):
        if all(can_talk(a, b) for a, b in itertools.combinations(group, 2)):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Point:
    """One sample of the run."""

    t: float  # seconds since the workload started
    head: int  # highest height among honest nodes
    talkable: bool  # a quorum of honest sealers could talk
    pending: bool  # work was waiting (a submitted transaction without receipt)
    timeout: float  # seconds: the longest current view-change timeout of an honest sealer
    delay: float  # seconds: the worst one-way delay + jitter on any link
    recovering: bool = False  # a sealer restarted / resumed, or a link healed, < R s ago


@dataclass(frozen=True, slots=True)
class Stall:
    start: float
    end: float
    bound: float
    after_outage: bool
    head: int

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def ok(self) -> bool:
        return self.seconds <= self.bound

    def as_json(self) -> dict[str, object]:
        return {
            "start": round(self.start, 2),
            "end": round(self.end, 2),
            "seconds": round(self.seconds, 2),
            "bound": round(self.bound, 2),
            "after_outage": self.after_outage,
            "height": self.head,
            "within_bound": self.ok,
        }


def _bound(timeout: float, outage: bool, delay: float) -> float:
    return 3 * timeout + (RECONNECT if outage else 0.0) + DELAY_FACTOR * delay + SLACK


def find_stalls(points: Sequence[Point], *, min_seconds: float = 2.0) -> list[Stall]:
    """Every stretch of ``min_seconds`` or more without progress while a quorum could
    talk and work waited, from the last progress (or from when a quorum could talk again)
    to the next progress (or until it could not), with its bound (module docstring)."""
    out: list[Stall] = []
    since: float | None = None
    outage, delay, timeout, head = False, 0.0, 0.0, 0
    last_head = points[0].head if points else 0
    prev_talkable = True
    for p in points:
        eligible = p.talkable and p.pending
        progressed = p.head > last_head
        last_head = max(last_head, p.head)
        if since is not None and (progressed or not eligible):
            if p.t - since >= min_seconds:
                out.append(Stall(since, p.t, _bound(timeout, outage, delay), outage, head))
            since = None
        if eligible and since is None:
            since, outage = p.t, not prev_talkable or p.recovering
            delay, timeout, head = p.delay, p.timeout, p.head
        elif since is not None:
            delay, outage = max(delay, p.delay), outage or p.recovering
        prev_talkable = p.talkable
    if since is not None and points and points[-1].t - since >= min_seconds:
        out.append(Stall(since, points[-1].t, _bound(timeout, outage, delay), outage, head))
    return out


def longest(stalls: Sequence[Stall]) -> Stall | None:
    return max(stalls, key=lambda s: s.seconds, default=None)
