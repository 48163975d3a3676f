"""``recover`` calls libsecp256k1 through coincurve's cffi binding; it must accept and
refuse exactly what coincurve's public API does (docs/performance.md, "What each
optimisation bought")."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import crypto
from consensus.crypto import InvalidSignature, KeyPair, hash32, recover

ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
KEY = KeyPair.generate(random.Random(5))


def outcome(fn, digest: bytes, signature: bytes) -> bytes | str:
    try:
        return fn(digest, signature)
    except InvalidSignature:
        return "invalid"


def both(digest: bytes, signature: bytes) -> tuple[bytes | str, bytes | str]:
    return (
        outcome(crypto._recover_cffi, digest, signature),
        outcome(crypto._recover_public_api, digest, signature),
    )


def test_the_fast_path_is_in_use() -> None:
    assert crypto._lib is not None  # else every node pays coincurve's wrapper again


def test_valid_signatures_recover_the_same_key() -> None:
    for i in range(50):
        digest = hash32(i.to_bytes(4, "big"))
        signature = KEY.sign(digest)
        assert recover(digest, signature) == KEY.public_key
        fast, public = both(digest, signature)
        assert fast == public == KEY.public_key


def scalar(n: int) -> bytes:
    return n.to_bytes(32, "big")


@pytest.mark.parametrize(
    ("r", "s"),
    [(0, 1), (1, 0), (0, 0), (ORDER, 1), (1, ORDER), (ORDER - 1, ORDER - 1), (2**256 - 1, 5)],
)
@pytest.mark.parametrize("v", [0, 1, 2, 3])
def test_edge_scalars_agree(r: int, s: int, v: int) -> None:
    digest = hash32(b"edge")
    assert len(set(both(digest, scalar(r) + scalar(s) + bytes([v])))) == 1


def test_a_high_s_twin_and_a_flipped_v_agree() -> None:
    digest = hash32(b"twin")
    signature = KEY.sign(digest)
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    high = r + scalar(ORDER - s) + bytes([v ^ 1])
    flipped = signature[:64] + bytes([v ^ 1])
    for sig in (high, flipped):
        fast, public = both(digest, sig)
        assert fast == public
    assert both(digest, flipped)[0] != KEY.public_key


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=64, max_size=64), st.integers(0, 3))
def test_random_bytes_agree(digest: bytes, rs: bytes, v: int) -> None:
    fast, public = both(digest, rs + bytes([v]))
    assert fast == public


def test_bytes_likes_are_taken_and_other_types_refused_with_the_typed_error() -> None:
    digest = hash32(b"like")
    signature = KEY.sign(digest)
    assert recover(bytearray(digest), memoryview(signature)) == KEY.public_key
    with pytest.raises(InvalidSignature):
        recover("x" * 32, signature)  # type: ignore[arg-type]


def test_threads_recovering_at_once_each_get_their_own_key() -> None:
    """The reused C buffers are per thread: cffi releases the GIL inside libsecp256k1."""
    import threading

    keys = [KeyPair.generate(random.Random(100 + i)) for i in range(4)]
    signed = [(k, hash32(bytes([i])), k.sign(hash32(bytes([i])))) for i, k in enumerate(keys)]
    wrong: list[int] = []

    def work(index: int) -> None:
        key, digest, signature = signed[index]
        for _ in range(300):
            if recover(digest, signature) != key.public_key:
                wrong.append(index)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(keys))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    bad = bytearray(signed[0][2])
    bad[:32] = ORDER.to_bytes(32, "big")  # r not below the order: the parse fails
    with pytest.raises(InvalidSignature):
        recover(signed[0][1], bytes(bad))
    assert recover(signed[1][1], signed[1][2]) == keys[1].public_key  # buffers still good
