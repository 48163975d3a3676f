"""Shared fuzzing machinery: settings, a msgpack writer that can lie, and mutations.

Random bytes rarely get past a msgpack parser, so most strategies here start from a
VALID encoding and break it where decoders break:

* byte level: flip, set, delete, insert, truncate, duplicate, extend;
* structure level: one (possibly nested) field replaced by a boundary value (0, -1,
  2^63, 2^64 - 1, int64 minimum, 19/20/21/31/32/33/64/65-byte strings, 2^256 as 33
  bytes...), a value of another msgpack type (nil, bool, float, map, ext, str for bin),
  a raw header that claims a huge length (array32 / bin32 / str32 / map32 of 2^32 - 1),
  deep nesting, or a field list that is cut short or grows;
* non-canonical re-encodings of the same value (an int, str, bin or array header wider
  than needed), which every decoder that promises one encoding per object must refuse.

Cost. ``fuzz(n)`` is the settings of one fuzz test: ``n`` examples (a CI "fuzz smoke"),
derandomized so a run is repeatable. ``LEDGERLAB_FUZZ_EXAMPLES=N`` runs every fuzz test
with ``N`` examples instead, with fresh random draws each run (a soak)::

    LEDGERLAB_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/fuzz -p no:cacheprovider

(the per-test time limits, :func:`time_limit`, are then lifted).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

ENV = "LEDGERLAB_FUZZ_EXAMPLES"


def examples(default: int) -> int:
    raw = os.environ.get(ENV)
    return int(raw) if raw else default


def time_limit(seconds: float) -> float:
    """A fuzz test's pytest-timeout budget: ``seconds`` for the smoke, none for a soak."""
    return 0 if os.environ.get(ENV) else seconds


def fuzz(default: int = 200, **kw: Any) -> settings:
    """Settings for one fuzz test: ``default`` examples, or ``$LEDGERLAB_FUZZ_EXAMPLES``."""
    soak = bool(os.environ.get(ENV))
    opts: dict[str, Any] = {
        "max_examples": examples(default),
        "deadline": None,
        "derandomize": not soak,
        "database": None,
        "suppress_health_check": [
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    }
    opts.update(kw)
    return settings(**opts)


# -- a msgpack writer that can lie -----------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """Bytes inserted as they are where a value would be encoded."""

    data: bytes


@dataclass(frozen=True)
class Wide:
    """``value`` with a header ``extra`` widths larger than the shortest (same value)."""

    value: Any
    extra: int = 1


def _int(v: int, extra: int) -> bytes:
    if v >= 0:
        forms = []
        if v < 0x80:
            forms.append(bytes([v]))
        for code, fmt, lim in ((0xCC, ">B", 1 << 8), (0xCD, ">H", 1 << 16),
                               (0xCE, ">I", 1 << 32), (0xCF, ">Q", 1 << 64)):  # fmt: skip
            if v < lim:
                forms.append(bytes([code]) + struct.pack(fmt, v))
    else:
        forms = []
        if v >= -32:
            forms.append(struct.pack(">b", v))
        for code, fmt, lim in ((0xD0, ">b", 1 << 7), (0xD1, ">h", 1 << 15),
                               (0xD2, ">i", 1 << 31), (0xD3, ">q", 1 << 63)):  # fmt: skip
            if v >= -lim:
                forms.append(bytes([code]) + struct.pack(fmt, v))
    if not forms:
        raise ValueError(f"{v} has no msgpack integer form")
    return forms[min(extra, len(forms) - 1)]


def _sized(n: int, fix: tuple[int, int] | None, codes: list[tuple[int, str, int]],
           extra: int) -> bytes:  # fmt: skip
    forms = []
    if fix is not None and n < fix[1]:
        forms.append(bytes([fix[0] | n]))
    for code, fmt, lim in codes:
        if n < lim:
            forms.append(bytes([code]) + struct.pack(fmt, n))
    return forms[min(extra, len(forms) - 1)]


_STR = [(0xD9, ">B", 1 << 8), (0xDA, ">H", 1 << 16), (0xDB, ">I", 1 << 32)]
_BIN = [(0xC4, ">B", 1 << 8), (0xC5, ">H", 1 << 16), (0xC6, ">I", 1 << 32)]
_ARR = [(0xDC, ">H", 1 << 16), (0xDD, ">I", 1 << 32)]
_MAP = [(0xDE, ">H", 1 << 16), (0xDF, ">I", 1 << 32)]


def mp(value: Any, extra: int = 0) -> bytes:
    """msgpack of ``value`` (shortest forms unless ``extra``), with :class:`Raw` and
    :class:`Wide` leaves honoured."""
    if isinstance(value, Raw):
        return value.data
    if isinstance(value, Wide):
        return mp(value.value, value.extra)
    if value is None:
        return b"\xc0"
    if value is True or value is False:
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        return _int(value, extra)
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        return _sized(len(data), (0xA0, 32), _STR, extra) + data
    if isinstance(value, (bytes, bytearray)):
        return _sized(len(value), None, _BIN, extra) + bytes(value)
    if isinstance(value, (list, tuple)):
        return _sized(len(value), (0x90, 16), _ARR, extra) + b"".join(mp(v) for v in value)
    if isinstance(value, dict):
        head = _sized(len(value), (0x80, 16), _MAP, extra)
        return head + b"".join(mp(k) + mp(v) for k, v in value.items())
    if isinstance(value, msgpack.ExtType):
        return msgpack.packb(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def unpack_tree(data: bytes) -> Any:
    """A valid sample's value tree (lists, so it can be edited in place)."""
    return msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False)


# -- value pools -------------------------------------------------------------------------------

BOUNDARY_INTS = [0, 1, -1, 2, 31, 32, 127, 128, 255, 256, 2**15, 2**16 - 1, 2**16, 2**31 - 1,
                 2**31, 2**32 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -32, -33,
                 -128, -129, -(2**31), -(2**63)]  # fmt: skip
BYTE_SIZES = [0, 1, 8, 19, 20, 21, 31, 32, 33, 63, 64, 65, 66, 128, 257]
TEXTS = ["", "a", "a" * 64, "a" * 65, "é" * 32, "é" * 33, "😀" * 16, "\x00", "a" * 256,
         "a" * 257, "chain0", "group0", "userTransfer", "0x5002"]  # fmt: skip

HUGE_HEADERS = [
    b"\xdd\xff\xff\xff\xff",  # array32 of 2^32 - 1 items (none follow)
    b"\xdc\xff\xff",  # array16 of 65535
    b"\xc6\xff\xff\xff\xff",  # bin32 of 4 GiB
    b"\xc5\xff\xff",  # bin16 of 65535
    b"\xdb\xff\xff\xff\xff",  # str32 of 4 GiB
    b"\xdf\xff\xff\xff\xff",  # map32
    b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",  # uint64 2^64 - 1
    b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",  # int64 minimum
    b"\xc1",  # the one byte msgpack never uses
    b"\xd4\x01\x00",  # fixext 1
    b"\xc7\x00\x05",  # ext8 of length 0
    b"\xca\x7f\xc0\x00\x00",  # float32 NaN
    b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00",  # float64 +inf
]


def deep(depth: int, inner: bytes = b"\x90") -> bytes:
    """``depth`` nested one-element arrays around ``inner``."""
    return b"\x91" * depth + inner


leaves: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(BOUNDARY_INTS),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from(BYTE_SIZES).map(lambda n: b"\xff" * n),
    st.sampled_from(BYTE_SIZES).map(lambda n: bytes(n)),
    st.just((2**256).to_bytes(33, "big")),  # 2^256: one byte too many for a uint256
    st.just((2**256 - 1).to_bytes(32, "big")),
    st.binary(max_size=80),
    st.sampled_from(TEXTS),
    st.text(max_size=40),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.builds(list),
    st.builds(dict),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2),
    st.just(msgpack.ExtType(1, b"x")),
    st.sampled_from(HUGE_HEADERS).map(Raw),
    st.integers(2, 3000).map(lambda d: Raw(deep(d))),
)
values: st.SearchStrategy[Any] = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=4), max_leaves=8
)


# -- mutations ---------------------------------------------------------------------------------


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with 1..4 byte-level edits."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "delete", "insert", "truncate", "dup", "extend"]))
        pos = draw(st.integers(0, max(len(out) - 1, 0)))
        if op == "flip" and out:
            out[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and out:
            out[pos] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x90, 0xC0, 0xC1, 0xC4, 0xCF,
                                             0xD9, 0xDD, 0xFF]) | st.integers(0, 255))  # fmt: skip
        elif op == "delete":
            del out[pos : pos + draw(st.integers(1, 8))]
        elif op == "insert":
            out[pos:pos] = draw(st.binary(min_size=1, max_size=9))
        elif op == "truncate":
            del out[pos:]
        elif op == "dup":
            out[pos:pos] = out[pos : pos + draw(st.integers(1, 40))]
        else:
            out += draw(st.binary(min_size=1, max_size=16))
    return bytes(out)


def _paths(tree: Any, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    out = [prefix]
    if isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, (*prefix, i))
    return out


def _get(tree: Any, path: tuple[int, ...]) -> Any:
    for i in path:
        tree = tree[i]
    return tree


def _set(tree: Any, path: tuple[int, ...], value: Any) -> Any:
    if not path:
        return value
    _get(tree, path[:-1])[path[-1]] = value
    return tree


@st.composite
def mutated_tree(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` decoded, 1..3 (nested) fields replaced, grown or cut, and re-encoded."""
    tree = unpack_tree(data)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(tree)
        path = draw(st.sampled_from(paths))
        current = _get(tree, path)
        op = draw(st.sampled_from(["replace", "replace", "replace", "wide", "bin_as_str",
                                   "cut", "grow", "wrap"]))  # fmt: skip
        if op == "replace":
            tree = _set(tree, path, draw(values))
        elif op == "wide":
            tree = _set(tree, path, Wide(current, draw(st.integers(1, 3))))
        elif op == "bin_as_str" and isinstance(current, bytes):
            tree = _set(tree, path, current.decode("latin-1"))
        elif op == "cut" and isinstance(current, list) and current:
            del current[draw(st.integers(0, len(current) - 1)) :]
        elif op == "grow" and isinstance(current, list):
            current.extend(draw(st.lists(values, min_size=1, max_size=3)))
        elif op == "wrap":
            tree = _set(tree, path, [current])
    return mp(tree)


def _widenable(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return False
    if isinstance(value, int):
        return -(2**63) <= value < 2**32  # a wider integer form exists
    if isinstance(value, str):
        return len(value.encode()) < 2**16
    if isinstance(value, bytes):
        return len(value) < 2**16
    if isinstance(value, list):
        return len(value) < 2**16
    return False


@st.composite
def noncanonical(draw: st.DrawFn, data: bytes) -> bytes:
    """The same value tree as ``data`` with one header wider than the shortest form."""
    tree = unpack_tree(data)
    paths = [p for p in _paths(tree) if _widenable(_get(tree, p))]
    path = draw(st.sampled_from(paths))
    out = mp(_set(tree, path, Wide(_get(tree, path), draw(st.integers(1, 3)))))
    assert out != data and unpack_tree(out) == unpack_tree(data)
    return out


def inputs(samples: list[bytes]) -> st.SearchStrategy[bytes]:
    """Everything at once: random bytes, byte mutations, structure mutations, deep nesting."""
    base = st.sampled_from(samples)
    return st.one_of(
        st.binary(max_size=600),
        base.flatmap(mutated_bytes),
        base.flatmap(mutated_tree),
        base.flatmap(mutated_tree),
        st.sampled_from(HUGE_HEADERS),
        st.integers(1, 5000).map(deep),
        st.integers(1, 5000).map(lambda d: b"\x81\xa1k" * d + b"\xc0"),  # nested maps
    )


def assert_only(errors: tuple[type[BaseException], ...], fn: Callable[[], Any]) -> Any:
    """``fn()``'s result, or None when it raised one of ``errors``; anything else fails."""
    try:
        return fn()
    except errors:
        return None
