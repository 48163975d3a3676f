"""Wire format: round trips, strict decoding, signed digests and seal verification."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus import (
    DecodeError,
    PersistedState,
    Seal,
    decode_message,
    encode_message,
    prepare_digest,
    seal_digest,
    verify_seal,
)
from consensus.codec import pack, unpack
from consensus.crypto import hash32, verify
from tests.consensus import helpers as t
from tests.fuzz.support import fuzz

N = 4


def all_messages() -> list[object]:
    p = t.proposal(3, b"payload", hash32(b"parent"))
    cert = t.certificate(N, 1, p, [0, 1, 2])
    vcs = [t.view_change(N, i, 2, 3, cert if i == 0 else None) for i in range(3)]
    return [
        t.preprepare(N, 0, 1, p),
        t.prepare(N, 1, 1, p),
        t.commit(N, 2, 1, p),
        vcs[0],
        vcs[1],
        t.new_view(N, (2 + 3) % N, 2, 3, vcs, p),
    ]


@pytest.mark.parametrize("msg", all_messages(), ids=lambda m: type(m).__name__)
def test_round_trip_is_exact(msg: object) -> None:
    data = encode_message(msg)  # type: ignore[arg-type]
    back = decode_message(data)
    assert back == msg
    assert back.digest == msg.digest  # type: ignore[attr-defined]
    assert back.encode() == data


@pytest.mark.parametrize("msg", all_messages(), ids=lambda m: type(m).__name__)
def test_signatures_verify_against_sender_key(msg: object) -> None:
    m = decode_message(encode_message(msg))  # type: ignore[arg-type]
    assert verify(t.sealers(N)[m.sender], m.digest, m.signature)


def test_prepare_and_commit_sign_the_documented_digests() -> None:
    p = t.proposal()
    msg = t.prepare(N, 1, 5, p)
    bh, sr = t.block_of(p)
    expected = hash32(pack(["ledgerlab/pbft/1/prepare", 5, 1, p.digest, bh, sr]))
    assert msg.digest == expected == prepare_digest(5, 1, p.digest, bh, sr)
    sealed = hash32(pack(["ledgerlab/pbft/1/commit", 5, 1, p.digest, bh, sr]))
    assert t.commit(N, 1, 5, p).digest == sealed == seal_digest(5, 1, p.digest, bh, sr)
    assert p.digest == hash32(pack(["ledgerlab/pbft/1/proposal", 1, bytes(32), b"txs"]))


def test_commit_and_prepare_digests_differ() -> None:
    p = t.proposal()
    assert t.prepare(N, 1, 0, p).digest != t.commit(N, 1, 0, p).digest


@pytest.mark.parametrize(
    "fields",
    [
        [],
        [99, 1, 2],
        [2, 0, 1, b"x", b"y", b"z", 0, b"s"],  # short hashes
        [2, -1, 1, bytes(32), bytes(32), bytes(32), 0, bytes(65)],  # negative view
        [2, 0, 0, bytes(32), bytes(32), bytes(32), 0, bytes(65)],  # height 0
        [2, 0, 1, bytes(32), bytes(32), bytes(32), 0, bytes(64)],  # short signature
        [2, True, 1, bytes(32), bytes(32), bytes(32), 0, bytes(65)],  # bool is not int
        [4, 1, 1, [1, [1, bytes(32), b"p"], bytes(32), bytes(32), []], 0, bytes(65)],  # cert
        [4, 0, 1, None, 0, bytes(65)],  # view change to view 0
        [5, 1, 2, [], [1, bytes(32), b"p"], 0, bytes(65)],  # NewView proposal height mismatch
        [1, 0, [1, bytes(32), b"p"], 5000, bytes(65)],  # sender out of range
    ],
)
def test_malformed_fields_raise_decode_error(fields: list[object]) -> None:
    with pytest.raises(DecodeError):
        decode_message(pack(fields))


@fuzz(300)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise_anything_but_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_message(data)


@fuzz(300)
@given(st.data())
def test_mutated_messages_decode_or_raise_decode_error(data: st.DataObject) -> None:
    msg = data.draw(st.sampled_from(all_messages()))
    raw = bytearray(encode_message(msg))  # type: ignore[arg-type]
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        back = decode_message(bytes(raw))
    except DecodeError:
        return
    # whatever decoded must be self-consistent and re-encode canonically
    assert decode_message(back.encode()) == back


def seal_for(view: int, signers: list[int]) -> tuple[Seal, bytes, bytes, int]:
    p = t.proposal(7)
    bh, sr = t.block_of(p)
    sigs = tuple((i, t.commit(N, i, view, p).signature) for i in signers)
    return Seal(view, p.digest, sigs), bh, sr, 7


def test_verify_seal_accepts_a_quorum() -> None:
    seal, bh, sr, h = seal_for(2, [0, 2, 3])
    assert verify_seal(t.sealers(N), verify, h, bh, sr, seal)
    assert verify_seal(t.sealers(N), verify, h, bh, sr, Seal.decode(seal.encode()))


@pytest.mark.parametrize(
    "case", ["too_few", "repeat", "bad_sig", "out_of_range", "height", "hash", "view", "not_a_seal"]
)
def test_verify_seal_rejects(case: str) -> None:
    seal, bh, sr, h = seal_for(2, [0, 1, 2])
    sealers = t.sealers(N)
    if case == "too_few":
        seal = Seal(seal.view, seal.proposal_digest, seal.signatures[:2])
    elif case == "repeat":
        seal = Seal(seal.view, seal.proposal_digest, seal.signatures[:2] + seal.signatures[:1])
    elif case == "bad_sig":
        i, sig = seal.signatures[0]
        seal = Seal(
            seal.view,
            seal.proposal_digest,
            ((i, bytes([sig[0] ^ 1]) + sig[1:]), *seal.signatures[1:]),
        )
    elif case == "out_of_range":
        seal = Seal(
            seal.view, seal.proposal_digest, ((9, seal.signatures[0][1]), *seal.signatures[1:])
        )
    elif case == "height":
        h += 1
    elif case == "hash":
        bh = hash32(b"other")
    elif case == "view":
        seal = Seal(seal.view + 1, seal.proposal_digest, seal.signatures)
    else:
        assert not verify_seal(sealers, verify, h, bh, sr, object())
        return
    assert not verify_seal(sealers, verify, h, bh, sr, seal)


def test_persisted_state_round_trip_and_errors() -> None:
    p = t.proposal(2)
    st_ = PersistedState(3, t.certificate(N, 3, p, [0, 1, 3]))
    assert PersistedState.decode(st_.encode()) == st_
    assert PersistedState.decode(PersistedState(0).encode()) == PersistedState(0)
    for junk in (b"", b"\x93", pack([2, 0, None]), pack([1, -1, None])):
        with pytest.raises(DecodeError):
            PersistedState.decode(junk)
    with pytest.raises(DecodeError):
        Seal.decode(b"\xc1")
    assert unpack(Seal(0, bytes(32), ()).encode()) == [0, bytes(32), []]
