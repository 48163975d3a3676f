"""Byzantine behaviours: what a faulty sealer sends instead of what its replica asked for.

FOR TESTING ONLY. The simulator (``consensus/sim/engine.py``) and the node runtime
(``node/runtime/byzantine.py``, ``python -m node --byzantine B``) both use these
functions, so a behaviour proven harmless on the model is the same one thrown at real
processes. The replica itself stays honest; a behaviour only transforms the consensus
messages that leave the node (the outcome of a ``Send`` or ``Broadcast`` action):

* ``silent``: sends no consensus message at all.
* ``withhold``: never sends its Commits.
* ``bad-signature``: every message either names another sender (forged, still signed by
  us) or carries a signature with one bit flipped.
* ``equivocate``: each PrePrepare it leads goes out in two versions, the replica's to the
  first half of the targets and another valid proposal, signed, to the second half.
* ``double-vote``: each Prepare and Commit goes out with a fake block hash (signed) to
  every other target, some of which also get the true one.
* ``spam``: every message twice, and now and then (:func:`spam_burst`) stale-view,
  far-future and garbage messages, validly signed where it matters.

The functions are pure apart from the injected random source (a ``random.Random`` or
anything with its methods; the replica core draws no random numbers, so nor does this
module) and the injected signer. Targets are opaque to them (the simulator passes run
indices, the runtime node ids). :func:`outgoing` is a generator that draws its random
numbers only as it is consumed: the simulator interleaves its own network draws with
it, and a seed replays the same run byte for byte.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

from consensus.crypto import Signer
from consensus.messages import (
    Commit,
    Message,
    Prepare,
    PrePrepare,
    Proposal,
    ViewChange,
    commit_digest,
    prepare_digest,
    preprepare_digest,
    viewchange_digest,
)

BEHAVIOURS = ("silent", "equivocate", "double-vote", "bad-signature", "spam", "withhold")
"""Behaviours that transform outgoing messages (the simulator also knows ``crash`` and
``twins``, which are about the node's life, not its messages)."""

T = TypeVar("T")
Out = tuple[T, bytes, str]
"""``(target, bytes to send, kind)``; ``kind`` is the message type name or ``garbage``."""

Alternative = Callable[[Proposal], Proposal]
"""For ``equivocate``: another proposal for the same height and parent."""


class Rng(Protocol):
    """The part of ``random.Random`` the behaviours use (injected, seeded by the caller)."""

    def random(self) -> float: ...

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int: ...

    def randbytes(self, n: int) -> bytes: ...

    def uniform(self, a: float, b: float) -> float: ...

    def choice(self, seq: Sequence[int]) -> int: ...


def outgoing(
    behaviour: str | None,
    msg: Message,
    targets: Sequence[T],
    *,
    signer: Signer,
    rng: Rng,
    forge_as: Sequence[int] = (),
    alternative: Alternative | None = None,
    both: int = 0,
) -> Iterator[Out[T]]:
    """What to send to whom for ``msg`` under ``behaviour`` (None or an unknown name:
    what an honest node sends, once to each target, in order).

    ``forge_as``: sender indices a ``bad-signature`` node may pretend to be.
    ``alternative``: the other proposal of an ``equivocate`` node (without one it sends
    PrePrepares honestly). ``both``: how many targets of the second half also get the
    replica's PrePrepare after the other one (:func:`equivocate`).
    """
    if behaviour == "silent":
        return
    if behaviour == "withhold" and isinstance(msg, Commit):
        return
    if behaviour == "bad-signature":
        msg = corrupt(msg, rng, forge_as)
    if behaviour == "equivocate" and isinstance(msg, PrePrepare) and alternative is not None:
        yield from equivocate(msg, targets, signer, alternative, both=both)
        return
    if behaviour == "double-vote" and isinstance(msg, Prepare | Commit):
        yield from double_vote(msg, targets, signer, rng)
        return
    data = msg.encode()
    for target in targets:
        yield target, data, msg.NAME
    if behaviour == "spam":
        for target in targets:
            yield target, data, msg.NAME  # duplicates


def corrupt(msg: Message, rng: Rng, forge_as: Sequence[int] = ()) -> Message:
    """``msg`` with a forged sender (one of ``forge_as``; our own signature, so it fails
    the check) half of the time when there is someone to forge, else with one bit of its
    signature flipped."""
    if forge_as and rng.random() < 0.5:
        other = rng.choice(forge_as)
        return dataclasses.replace(msg, sender=other)
    sig = bytearray(msg.signature)
    sig[rng.randrange(64)] ^= 1 << rng.randrange(8)
    return dataclasses.replace(msg, signature=bytes(sig))


def equivocate(
    msg: PrePrepare,
    targets: Sequence[T],
    signer: Signer,
    alternative: Alternative,
    *,
    both: int = 0,
) -> Iterator[Out[T]]:
    """The replica's PrePrepare to the first ``len(targets) // 2`` targets, a signed
    PrePrepare of ``alternative(msg.proposal)`` to the rest.

    A receiver can prove the equivocation only if it sees both, so the first ``both``
    targets of the second half also get the replica's version, after the other one
    (the simulator passes 0; the runtime 1, so an honest node holds the evidence).
    """
    alt = alternative(msg.proposal)
    sig = signer(preprepare_digest(msg.view, alt.height, alt.digest))
    alt_msg = PrePrepare(msg.view, alt, msg.sender, sig)
    half = len(targets) // 2
    a, b = msg.encode(), alt_msg.encode()
    for pos, target in enumerate(targets):
        if pos < half:
            yield target, a, msg.NAME
        else:
            yield target, b, msg.NAME
            if pos - half < both:
                yield target, a, msg.NAME


def double_vote(
    msg: Prepare | Commit, targets: Sequence[T], signer: Signer, rng: Rng
) -> Iterator[Out[T]]:
    """The true vote to even positions; a signed vote for a fake block hash to odd ones,
    each of which also gets the true vote with probability 1/2 (so it holds evidence)."""
    fake_hash = bytes(rng.randbytes(32))
    fn = prepare_digest if isinstance(msg, Prepare) else commit_digest
    sig = signer(fn(msg.view, msg.height, msg.proposal_digest, fake_hash, msg.state_root))
    other = dataclasses.replace(msg, block_hash=fake_hash, signature=sig)
    a, b = msg.encode(), other.encode()
    for pos, target in enumerate(targets):
        if pos % 2 == 0:
            yield target, a, msg.NAME
        else:
            yield target, b, msg.NAME
            if rng.random() < 0.5:
                yield target, a, msg.NAME


def spam_burst(
    height: int, view: int, me: int, signer: Signer, rng: Rng
) -> list[tuple[bytes, str]]:
    """One burst of junk from sealer ``me`` at (``height``, ``view``): Prepares for a
    stale view, a far-future height and a far-future view, a ViewChange 500 views ahead,
    a ViewChange for an old height (from view 1 on), and random garbage bytes. Every
    message is validly signed, so only the replica's windows and rules stop it."""
    junk: list[tuple[bytes, str]] = []
    fake = bytes(rng.randbytes(32))
    for v, h in ((max(0, view - 1), height), (view, height + 1000), (view + 1000, height)):
        sig = signer(prepare_digest(v, h, fake, fake, fake))
        junk.append((Prepare(v, h, fake, fake, fake, me, sig).encode(), Prepare.NAME))
    sig = signer(viewchange_digest(view + 500, height, None))
    junk.append((ViewChange(view + 500, height, None, me, sig).encode(), ViewChange.NAME))
    if view > 0:
        old = max(1, height - 1)
        sig = signer(viewchange_digest(view, old, None))
        junk.append((ViewChange(view, old, None, me, sig).encode(), ViewChange.NAME))
    junk.append((bytes(rng.randbytes(rng.randrange(1, 64))), "garbage"))
    return junk


def spam_interval_ms(rng: Rng) -> float:
    """Milliseconds until the next :func:`spam_burst`."""
    return rng.uniform(50, 400)


__all__ = [
    "BEHAVIOURS",
    "Alternative",
    "Out",
    "Rng",
    "corrupt",
    "double_vote",
    "equivocate",
    "outgoing",
    "spam_burst",
    "spam_interval_ms",
]
