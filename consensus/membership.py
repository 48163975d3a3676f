"""Membership changes: the sealer list in force at a height, and moving messages across a change.

The sealer list is chain state (the Consensus precompile); a change committed in block
``h`` applies from ``h + 1``. A message names its sender by index into the list of its
height, but no digest covers that index (see :mod:`consensus.messages`): a signature says
which *key* signed what. So when the list changes, a message a replica already verified
can be carried into the new list by its signer's key -- :func:`reindex` -- instead of being
verified again or lost; a key that left the list takes its messages with it.

A NewView is the exception: its own signature covers its proofs' indices, so it cannot be
re-indexed, only checked again under the new list.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

from consensus.crypto import PUBLIC_KEY_SIZE
from consensus.messages import Commit, Prepare, PrePrepare, ViewChange

Remap = dict[int, int]
"""Old sealer index -> new sealer index, for the keys in both lists."""

M = TypeVar("M", bound=PrePrepare | Prepare | Commit | ViewChange)


def check_sealers(sealers: Sequence[bytes]) -> tuple[bytes, ...]:
    """The list as a tuple of distinct 64-byte keys, or ValueError (a runtime bug)."""
    keys = tuple(bytes(k) for k in sealers)
    if not keys:
        raise ValueError("the sealer list cannot be empty")
    if any(len(k) != PUBLIC_KEY_SIZE for k in keys):
        raise ValueError("sealer public keys must be 64 bytes")
    if len(set(keys)) != len(keys):
        raise ValueError("sealer public keys must be distinct")
    return keys


def remap(old: Sequence[bytes], new: Sequence[bytes]) -> Remap:
    """Where each key of ``old`` that stays sits in ``new``."""
    position = {key: j for j, key in enumerate(new)}
    return {i: position[key] for i, key in enumerate(old) if key in position}


def reindex(msg: M, moves: Remap) -> M | None:
    """``msg`` with its sender's index in the new list; None if its signer left the list.

    A ViewChange's certificate keeps its indices: it certifies the sender's height, which
    the sender numbered with the list in force there.
    """
    j = moves.get(msg.sender)
    if j is None:
        return None
    return msg if j == msg.sender else dataclasses.replace(msg, sender=j)
