"""next_state_root: determinism, sensitivity to every change, and the documented encoding."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from storage import GENESIS_STATE_ROOT, next_state_root

_write_sets = st.dictionaries(
    st.binary(min_size=1, max_size=6), st.none() | st.binary(max_size=6), max_size=8
).map(lambda d: list(d.items()))
_roots = st.binary(min_size=32, max_size=32)


def reference_root(parent: bytes, writes: list[tuple[bytes, bytes | None]]) -> bytes:
    """The encoding as docs/storage.md spells it, written out independently."""
    if not writes:
        return parent
    out = b"ledgerlab/state-root/v1" + parent
    for key, value in sorted(writes):
        out += len(key).to_bytes(4, "big") + key
        out += b"\x00" if value is None else b"\x01" + len(value).to_bytes(4, "big") + value
    return hashlib.sha3_256(out).digest()


def test_genesis_and_empty_write_set() -> None:
    assert bytes(32) == GENESIS_STATE_ROOT
    assert next_state_root(GENESIS_STATE_ROOT, []) == GENESIS_STATE_ROOT
    root = next_state_root(GENESIS_STATE_ROOT, [(b"k", b"v")])
    assert len(root) == 32 and root != GENESIS_STATE_ROOT
    assert next_state_root(root, ()) == root


@settings(max_examples=200)
@given(parent=_roots, writes=_write_sets, seed=st.randoms())
def test_deterministic_and_order_free(parent: bytes, writes: list, seed: object) -> None:  # type: ignore[type-arg]
    shuffled = list(writes)
    seed.shuffle(shuffled)  # type: ignore[attr-defined]
    root = next_state_root(parent, writes)
    assert root == next_state_root(parent, shuffled)
    assert root == reference_root(parent, writes)


@settings(max_examples=300)
@given(parent=_roots, writes=_write_sets, data=st.data())
def test_any_change_changes_the_root(parent: bytes, writes: list, data: st.DataObject) -> None:  # type: ignore[type-arg]
    assume(writes)
    root = next_state_root(parent, writes)
    i = data.draw(st.integers(0, len(writes) - 1))
    key, value = writes[i]
    others = writes[:i] + writes[i + 1 :]
    variants = [
        others,  # one write fewer
        [*others, (key, None if value is not None else b"")],  # deleted vs empty
        [*others, (key, (value or b"") + b"\x00")],  # value grows
        [*others, (key + b"\x00", value)],  # key changes
    ]
    other = data.draw(st.binary(min_size=1, max_size=6))
    if other not in dict(writes):
        variants.append([*writes, (other, b"")])  # one write more
    for variant in variants:
        if len({k for k, _ in variant}) == len(variant):
            assert next_state_root(parent, variant) != root, variant
    flipped = bytes([parent[0] ^ 1]) + parent[1:]
    assert next_state_root(flipped, writes) != root


def test_length_prefixes_keep_boundaries_apart() -> None:
    a = next_state_root(GENESIS_STATE_ROOT, [(b"ab", b"c")])
    b = next_state_root(GENESIS_STATE_ROOT, [(b"a", b"bc")])
    c = next_state_root(GENESIS_STATE_ROOT, [(b"a", b""), (b"b", b"c")])
    assert len({a, b, c}) == 3


def test_bad_input_is_a_typed_error() -> None:
    with pytest.raises(ValueError, match="twice"):
        next_state_root(GENESIS_STATE_ROOT, [(b"k", b"1"), (b"k", b"2")])
    with pytest.raises(ValueError, match="32 bytes"):
        next_state_root(b"short", [(b"k", b"1")])
    with pytest.raises(TypeError):
        next_state_root(GENESIS_STATE_ROOT, [("k", b"1")])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        next_state_root(GENESIS_STATE_ROOT, [(b"k", 1)])  # type: ignore[list-item]
