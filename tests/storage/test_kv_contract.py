"""The KVStore contract (storage/kv.py docstring), checked on every backend."""

from __future__ import annotations

import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import BACKENDS, KVStore, StorageError, WriteBatch, open_store
from storage.kv import MAX_KEY_LEN, key_range, prefix_end

from .conftest import PERSISTENT, OpenStore

KEYS = [b"\x00", b"a", b"a\x00", b"a\xff", b"ab", b"abc", b"b", b"b\xff\xff", b"\xff", b"\xff\xff"]


def fill(kv: KVStore, keys: list[bytes] = KEYS) -> None:
    batch = WriteBatch()
    for key in keys:
        batch.put(key, b"v" + key)
    kv.write(batch)


def keys_of(pairs: object) -> list[bytes]:
    return [k for k, _ in pairs]  # type: ignore[attr-defined]


# -- point operations ---------------------------------------------------------------


def test_get_put_delete(kv: KVStore) -> None:
    assert kv.get(b"k") is None
    kv.put(b"k", b"1")
    assert kv.get(b"k") == b"1"
    kv.put(b"k", b"2")
    assert kv.get(b"k") == b"2"
    kv.delete(b"k")
    assert kv.get(b"k") is None
    kv.delete(b"k")  # deleting a missing key is not an error
    kv.put(b"empty", b"")
    assert kv.get(b"empty") == b""  # an empty value is a value, not absence


@pytest.mark.parametrize(
    ("key", "error"),
    [("k", TypeError), (bytearray(b"k"), TypeError), (b"", ValueError),
     (b"x" * (MAX_KEY_LEN + 1), ValueError)],
)  # fmt: skip
def test_bad_keys_are_refused(kv: KVStore, key: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        kv.put(key, b"v")  # type: ignore[arg-type]
    with pytest.raises(error):
        WriteBatch().put(key, b"v")  # type: ignore[arg-type]


def test_keys_that_cannot_be_stored_read_as_absent(kv: KVStore) -> None:
    """An RPC may look up any bytes it was sent; that must not be an engine error."""
    assert kv.get(b"") is None
    assert kv.get(b"x" * (MAX_KEY_LEN + 100)) is None
    snap = kv.snapshot()
    assert snap.get(b"") is None
    assert snap.get(b"x" * (MAX_KEY_LEN + 100)) is None
    snap.close()


def test_longest_key_and_binary_values(kv: KVStore) -> None:
    key = b"\xff" * MAX_KEY_LEN
    value = bytes(range(256)) * 1000
    kv.put(key, value)
    assert kv.get(key) == value


# -- scans ------------------------------------------------------------------------


def test_scan_is_bytewise_ordered(kv: KVStore) -> None:
    fill(kv, list(reversed(KEYS)))
    assert list(kv.scan()) == [(k, b"v" + k) for k in sorted(KEYS)]


@pytest.mark.parametrize(
    ("start", "end", "prefix"),
    [
        (b"", None, b"a"),
        (b"", None, b"ab"),
        (b"", None, b"b\xff"),
        (b"", None, b"\xff"),
        (b"", None, b"zz"),
        (b"", None, b""),
        (b"a\x00", b"b", None),
        (b"ab", None, None),
        (b"", b"ab", None),
        (b"b", b"a", None),  # empty range
        (b"a\x00", b"abc", b"a"),  # range inside a prefix
        (b"", b"a\xff", b"a"),
        (b"c", None, b"a"),  # start past the prefix
    ],
)
def test_range_and_prefix_scans(
    kv: KVStore, start: bytes, end: bytes | None, prefix: bytes | None
) -> None:
    fill(kv)
    expected = [
        k
        for k in sorted(KEYS)
        if k >= start and (end is None or k < end) and (prefix is None or k.startswith(prefix))
    ]
    assert keys_of(kv.scan(start, end, prefix=prefix)) == expected


def test_prefix_helpers() -> None:
    assert prefix_end(b"a") == b"b"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") is None
    assert prefix_end(b"") is None
    assert key_range(b"", None, b"ab") == (b"ab", b"ac")
    assert key_range(b"abz", b"ab\x05", b"ab") == (b"abz", b"ab\x05")


def test_scan_sees_the_store_as_of_the_call(kv: KVStore) -> None:
    fill(kv)
    scan = kv.scan(prefix=b"a")
    first = next(scan)
    kv.put(b"aa", b"new")  # inside the range, after the cursor
    kv.delete(b"abc")
    assert [first, *scan] == [(k, b"v" + k) for k in sorted(KEYS) if k.startswith(b"a")]


# -- batches ----------------------------------------------------------------------


def test_batch_applies_everything_in_order(kv: KVStore) -> None:
    kv.put(b"gone", b"x")
    batch = WriteBatch()
    batch.put(b"k1", b"1")
    batch.put(b"k2", b"2")
    batch.delete(b"k2")  # later op wins
    batch.delete(b"k3")
    batch.put(b"k3", b"3")
    batch.delete(b"gone")
    assert len(batch) == 6
    kv.write(batch)
    assert list(kv.scan()) == [(b"k1", b"1"), (b"k3", b"3")]


def test_bad_op_in_batch_writes_nothing(kv: KVStore) -> None:
    batch = WriteBatch()
    batch.put(b"k1", b"1")
    batch.ops.append((b"k2", "not bytes"))  # type: ignore[arg-type]  # bypasses put()
    with pytest.raises(TypeError):
        kv.write(batch)
    assert kv.get(b"k1") is None
    assert list(kv.scan()) == []


def test_empty_batch(kv: KVStore) -> None:
    kv.write(WriteBatch())
    assert list(kv.scan()) == []


# -- snapshots -------------------------------------------------------------------


def test_snapshot_ignores_later_writes(kv: KVStore) -> None:
    fill(kv)
    snap = kv.snapshot()
    batch = WriteBatch()
    batch.put(b"a", b"changed")
    batch.delete(b"ab")
    batch.put(b"aa", b"added")
    kv.write(batch)
    kv.put(b"zz", b"added")
    assert snap.get(b"a") == b"va"
    assert snap.get(b"ab") == b"vab"
    assert snap.get(b"aa") is None
    assert snap.get(b"zz") is None
    assert list(snap.scan()) == [(k, b"v" + k) for k in sorted(KEYS)]
    assert keys_of(snap.scan(prefix=b"a")) == [k for k in sorted(KEYS) if k.startswith(b"a")]
    assert kv.get(b"a") == b"changed"  # while the store moved on
    snap.close()
    with pytest.raises(StorageError):
        snap.get(b"a")
    with pytest.raises(StorageError):
        list(snap.scan())


def test_long_snapshot_scans_interleave(kv: KVStore) -> None:
    """Two scans of one snapshot, stepped in turn, each see every key once."""
    keys = [i.to_bytes(2, "big") for i in range(700)]
    fill(kv, keys)
    snap = kv.snapshot()
    kv.put(keys[500], b"changed")
    outer, inner = snap.scan(), snap.scan(keys[100])
    pairs = list(zip(outer, inner, strict=False))
    assert [a for a, _ in pairs] == [(k, b"v" + k) for k in keys[:600]]
    assert [b for _, b in pairs] == [(k, b"v" + k) for k in keys[100:700]]
    assert snap.get(keys[500]) == b"v" + keys[500]
    snap.close()


def test_two_snapshots_see_their_own_versions(kv: KVStore) -> None:
    kv.put(b"k", b"1")
    s1 = kv.snapshot()
    kv.put(b"k", b"2")
    s2 = kv.snapshot()
    kv.delete(b"k")
    assert (s1.get(b"k"), s2.get(b"k"), kv.get(b"k")) == (b"1", b"2", None)
    s1.close()
    s2.close()


# -- lifecycle ---------------------------------------------------------------------


def test_closed_store_raises(kv: KVStore) -> None:
    kv.put(b"k", b"v")
    kv.close()
    kv.close()  # idempotent
    for call in (
        lambda: kv.get(b"k"),
        lambda: kv.put(b"k", b"v"),
        lambda: kv.delete(b"k"),
        lambda: kv.write(WriteBatch()),
        lambda: list(kv.scan()),
        kv.snapshot,
    ):
        with pytest.raises(StorageError):
            call()


@pytest.mark.parametrize("backend", PERSISTENT)
def test_reopen_keeps_data(backend: str, reopen: OpenStore) -> None:
    kv = reopen()
    fill(kv)
    kv.delete(b"ab")
    kv.snapshot()  # left open on purpose: close() must still release the files
    kv = reopen()
    assert list(kv.scan()) == [(k, b"v" + k) for k in sorted(KEYS) if k != b"ab"]


def test_open_store_rejects_unknown_backend(tmp_path: object) -> None:
    with pytest.raises(ValueError, match="unknown storage backend"):
        open_store(str(tmp_path), "leveldb")
    with pytest.raises(ValueError):
        open_store(str(tmp_path), "memory")


@pytest.mark.parametrize("backend", PERSISTENT)
def test_open_store_on_a_file_is_a_storage_error(backend: str, tmp_path: object) -> None:
    path = f"{tmp_path}/file"
    with open(path, "w") as f:
        f.write("not a database")
    with pytest.raises(StorageError):
        open_store(path, backend)


# -- model check -----------------------------------------------------------------

_key = st.binary(min_size=1, max_size=4)
_op = st.tuples(_key, st.none() | st.binary(max_size=8))


@pytest.mark.parametrize("name", BACKENDS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(st.lists(_op, max_size=12), max_size=6),
    prefix=st.binary(max_size=2),
    start=st.binary(max_size=3),
)
def test_matches_a_dict_model(
    name: str, batches: list[list[tuple[bytes, bytes | None]]], prefix: bytes, start: bytes
) -> None:
    model: dict[bytes, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        kv = open_store(None if name == "memory" else tmp, name, sync=False)
        try:
            for ops in batches:
                batch = WriteBatch()
                for key, value in ops:
                    if value is None:
                        batch.delete(key)
                        model.pop(key, None)
                    else:
                        batch.put(key, value)
                        model[key] = value
                kv.write(batch)
            assert list(kv.scan()) == sorted(model.items())
            assert list(kv.scan(start, prefix=prefix)) == sorted(
                (k, v) for k, v in model.items() if k.startswith(prefix) and k >= start
            )
            for key, _ in (op for ops in batches for op in ops):
                assert kv.get(key) == model.get(key)
        finally:
            kv.close()
