"""StateOverlay: fall-through reads, nested mark/revert, and the net write set."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from storage import MemoryKV, StateOverlay, next_state_root
from storage.state_root import GENESIS_STATE_ROOT


def base_with(**items: bytes) -> MemoryKV:
    kv = MemoryKV()
    for key, value in items.items():
        kv.put(key.encode(), value)
    return kv


def test_reads_fall_through_until_written() -> None:
    base = base_with(a=b"1", b=b"2")
    o = StateOverlay(base)
    assert (o.get(b"a"), o.get(b"b"), o.get(b"c")) == (b"1", b"2", None)
    o.put(b"a", b"9")
    o.delete(b"b")
    o.put(b"c", b"3")
    assert (o.get(b"a"), o.get(b"b"), o.get(b"c")) == (b"9", None, b"3")
    assert (base.get(b"a"), base.get(b"b"), base.get(b"c")) == (b"1", b"2", None)
    base.put(b"d", b"4")  # the base moving is visible through untouched keys
    assert o.get(b"d") == b"4"


def test_nested_mark_and_revert() -> None:
    o = StateOverlay(base_with(a=b"base"))
    o.put(b"a", b"tx0")
    tx1 = o.mark()
    o.put(b"a", b"tx1")
    o.put(b"b", b"tx1")
    inner = o.mark()
    o.delete(b"a")
    o.put(b"c", b"inner")
    o.revert(inner)
    assert (o.get(b"a"), o.get(b"b"), o.get(b"c")) == (b"tx1", b"tx1", None)
    o.revert(tx1)
    assert (o.get(b"a"), o.get(b"b"), o.get(b"c")) == (b"tx0", None, None)
    assert o.write_set() == [(b"a", b"tx0")]
    o.revert(0)
    assert o.get(b"a") == b"base"
    assert o.write_set() == []


def test_revert_restores_an_overlay_delete() -> None:
    o = StateOverlay(base_with(a=b"base"))
    o.delete(b"a")
    m = o.mark()
    o.put(b"a", b"again")
    o.revert(m)
    assert o.get(b"a") is None
    assert o.write_set() == [(b"a", None)]


def test_write_set_is_sorted_and_drops_no_ops() -> None:
    o = StateOverlay(base_with(a=b"1", b=b"2", z=b"26"))
    o.put(b"z", b"changed")
    o.put(b"a", b"1")  # same as committed
    o.put(b"b", b"x")
    o.put(b"b", b"2")  # written back
    o.put(b"n", b"new")
    o.delete(b"n")  # created and deleted again
    o.delete(b"missing")  # deleting what is not there
    o.delete(b"c")
    o.put(b"m", b"")  # an empty value is a change from absent
    assert o.write_set() == [(b"m", b""), (b"z", b"changed")]


def test_a_block_of_no_ops_keeps_the_root() -> None:
    o = StateOverlay(base_with(a=b"1"))
    o.put(b"a", b"2")
    o.put(b"a", b"1")
    o.delete(b"gone")
    root = next_state_root(GENESIS_STATE_ROOT, [(b"a", b"1")])
    assert o.write_set() == []
    assert next_state_root(root, o.write_set()) == root


_keys = st.sampled_from([b"a", b"b", b"c", b"d"])
_values = st.none() | st.sampled_from([b"", b"1", b"2"])
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), _keys, _values),
        st.tuples(st.just("mark"), st.none(), st.none()),
        st.tuples(st.just("revert"), st.none(), st.none()),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ops=_ops)
def test_matches_a_model_of_nested_savepoints(
    ops: list[tuple[str, bytes | None, bytes | None]],
) -> None:
    base = base_with(a=b"1", b=b"2")
    o = StateOverlay(base)
    model = {b"a": b"1", b"b": b"2"}
    saved: list[tuple[int, dict[bytes, bytes]]] = []
    for op, key, value in ops:
        if op == "write":
            assert key is not None
            if value is None:
                o.delete(key)
                model.pop(key, None)
            else:
                o.put(key, value)
                model[key] = value
        elif op == "mark":
            saved.append((o.mark(), dict(model)))
        elif saved:
            mark, model = saved.pop()
            o.revert(mark)
    for key in (b"a", b"b", b"c", b"d"):
        assert o.get(key) == model.get(key)
    committed = {k: v for k, v in base.scan()}
    expected = sorted(
        (k, model.get(k)) for k in set(committed) | set(model) if committed.get(k) != model.get(k)
    )
    assert o.write_set() == expected


@settings(max_examples=100, deadline=None)
@given(
    final=st.dictionaries(_keys, _values, min_size=1),
    noise=st.lists(st.tuples(_keys, _values), max_size=10),
    seed=st.integers(0, 2**32),
)
def test_order_of_application_does_not_change_the_write_set(
    final: dict[bytes, bytes | None], noise: list[tuple[bytes, bytes | None]], seed: int
) -> None:
    """Same final values, reached by different orders and detours: same write set and root."""

    def apply(order: list[tuple[bytes, bytes | None]]) -> list[tuple[bytes, bytes | None]]:
        o = StateOverlay(base_with(a=b"1", b=b"2"))
        for key, value in [*order, *final.items()]:
            o.put(key, value) if value is not None else o.delete(key)
        shuffled = list(final.items())
        random.Random(seed).shuffle(shuffled)
        for key, value in shuffled:  # last writes again, shuffled
            o.put(key, value) if value is not None else o.delete(key)
        return o.write_set()

    noise = [(k, v) for k, v in noise if k in final]  # detours on keys that end up in final
    one, two = apply(noise), apply(list(reversed(noise)))
    assert one == two
    assert next_state_root(GENESIS_STATE_ROOT, one) == next_state_root(GENESIS_STATE_ROOT, two)
