"""The state root: one 32-byte digest that names the whole state after a block.

It is a hash chain over state diffs, not a Merkle tree: ``root(n) = H(root(n-1) || diff(n))``.
Two nodes that applied the same write sets from genesis hold the same root, which is all
consensus needs (replicas sign the executed header, so a divergent executor is caught at
the block where it diverged). It cannot prove a single key's value; a Merkle trie could,
at several times the cost per block. ``H`` is SHA3-256, computed with :mod:`hashlib`
because storage does not import consensus.

Encoding of a write set (sorted by key, keys unique)::

    "ledgerlab/state-root/v1" || parent_root ||
    for each (key, value): u32be(len(key)) || key ||
                           (0x00                               if value is None (deleted)
                            0x01 || u32be(len(value)) || value  otherwise)

The lengths make the encoding unambiguous, so different write sets never collide short
of a SHA3 collision. An empty write set leaves the root unchanged: a block that does not
touch the state (or writes back what was there) keeps its parent's root.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from operator import itemgetter

GENESIS_STATE_ROOT = bytes(32)
"""The root of the empty state before block 0: 32 zero bytes."""

_DOMAIN = b"ledgerlab/state-root/v1"
_U32 = struct.Struct(">I").pack
_KEY = itemgetter(0)


def next_state_root(parent_root: bytes, write_set: Sequence[tuple[bytes, bytes | None]]) -> bytes:
    """The root after applying ``write_set`` (in any order; keys unique) to ``parent_root``.

    Raises ``ValueError`` for a duplicated key (which write wins would be ambiguous) and
    ``TypeError`` for anything that is not bytes.
    """
    if not isinstance(parent_root, bytes) or len(parent_root) != 32:
        raise ValueError("parent_root must be 32 bytes")
    if not write_set:
        return parent_root
    # The whole encoding joined and hashed at once: one update instead of five per key.
    chunks = [_DOMAIN, parent_root]
    extend = chunks.extend
    u32 = _U32
    previous: bytes | None = None
    for key, value in sorted(write_set, key=_KEY):
        if type(key) is not bytes and not isinstance(key, bytes):
            raise TypeError(f"state keys are bytes, not {type(key).__name__}")
        if key == previous:
            raise ValueError(f"key {key!r} appears twice in the write set")
        previous = key
        if value is None:
            extend((u32(len(key)), key, b"\x00"))
        elif type(value) is bytes or isinstance(value, bytes):
            extend((u32(len(key)), key, b"\x01", u32(len(value)), value))
        else:
            raise TypeError(f"state values are bytes or None, not {type(value).__name__}")
    return hashlib.sha3_256(b"".join(chunks)).digest()
