"""The simulator's shared signature memo answers exactly what a fresh check answers: it
cannot make a replica accept what ``verify`` refuses, it stays bounded, and turning it off
changes nothing in a run (same trace byte for byte, same chain, same counters)."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest

from consensus.crypto import KeyPair, hash32, verify
from consensus.sim import Scenario, run_scenario
from consensus.sim.keys import SIGNATURE_MEMO_ENV, memo_verifier, real_keys
from consensus.sim.summary import chain_hash
from consensus.sim.trace import JsonlTrace
from tests.consensus.test_sim_determinism import busy_scenario


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


def test_memo_never_accepts_what_a_fresh_check_refuses() -> None:
    rng = random.Random(5)
    alice, bob = KeyPair.generate(rng), KeyPair.generate(rng)
    d1, d2 = hash32(b"one"), hash32(b"two")
    s1, s1_bob, s2 = alice.sign(d1), bob.sign(d1), alice.sign(d2)
    checks: list[tuple[Any, Any, Any]] = [
        (alice.public_key, d1, s1),  # valid: goes into the memo first
        (alice.public_key, d1, s1_bob),  # same digest, another (valid) signature
        (alice.public_key, d1, s2),  # same digest, a signature over another digest
        (alice.public_key, d2, s1),  # same signature, another digest
        (bob.public_key, d1, s1),  # same digest and signature, another key (forged sender)
        (alice.public_key, d1, flip(s1, 10)),  # corrupted r
        (alice.public_key, d1, flip(s1, 64)),  # corrupted recovery id
        (alice.public_key, d1, s1[:64] + b"\x07"),  # v out of range
        (alice.public_key, d1, s1[:64]),  # too short
        (alice.public_key, d1[:31], s1),  # short digest
        (alice.public_key, d1, bytes(65)),  # r = s = 0: does not recover
        (alice.public_key, bytearray(d1), s1),  # not bytes: checked fresh
        (bob.public_key, d1, s1_bob),
        (alice.public_key, d2, s2),
    ]
    memo = memo_verifier()
    for _ in range(2):  # the second pass answers from the memo
        assert [memo(*c) for c in checks] == [verify(*c) for c in checks]
    assert [memo(*c) for c in checks].count(True) == 4  # the valid ones, bytearray too
    assert memo.cache_info().hits > 0  # type: ignore[attr-defined]
    # and in the other order: refusals memoised first must not block the valid one
    fresh = memo_verifier()
    assert [fresh(*c) for c in reversed(checks)] == [verify(*c) for c in reversed(checks)]


def test_memo_is_bounded() -> None:
    key = KeyPair.generate(random.Random(6))
    memo = memo_verifier(entries=8)
    for i in range(40):
        digest = hash32(i.to_bytes(4, "big"))
        assert memo(key.public_key, digest, key.sign(digest))
    assert memo.cache_info().currsize == 8  # type: ignore[attr-defined]


def test_the_environment_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNATURE_MEMO_ENV, "0")
    assert real_keys(2, random.Random(1)).verifier is verify
    monkeypatch.delenv(SIGNATURE_MEMO_ENV)
    assert real_keys(2, random.Random(1)).verifier is not verify
    assert real_keys(2, random.Random(1), memo=False).verifier is verify


def forging_scenario(seed: int) -> Scenario:
    return Scenario(nodes=5, blocks=4, seed=seed, byzantine={3: "bad-signature"})


def run(s: Scenario, monkeypatch: pytest.MonkeyPatch, memo: bool) -> tuple[Any, ...]:
    with monkeypatch.context() as m:
        m.setenv(SIGNATURE_MEMO_ENV, "1" if memo else "0")
        buf = io.StringIO()
        sim = run_scenario(s, trace=JsonlTrace(buf))
    assert (sim.keys.verifier is verify) is not memo
    counters = [n.replica.counters.snapshot() for n in sim.nodes if n.replica is not None]
    return buf.getvalue(), chain_hash(sim), counters, sim


@pytest.mark.parametrize("scenario", [busy_scenario(11), forging_scenario(3)], ids=str)
def test_turning_the_memo_off_gives_the_identical_run(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    on, off = run(scenario, monkeypatch, True), run(scenario, monkeypatch, False)
    assert len(on[0]) > 5_000
    assert on[:3] == off[:3]
    assert on[3].keys.verifier.cache_info().hits > 0


def test_forged_and_corrupted_votes_are_refused_by_every_honest_replica(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    *_, sim = run(forging_scenario(3), monkeypatch, True)
    honest = [n.replica for n in sim.nodes if n.index != 3 and n.replica is not None]
    assert len(honest) == 4
    assert all(r.counters.drops["bad_signature"] > 0 for r in honest)
