"""Quorum arithmetic, checked exhaustively for every cluster size 1..31."""

from __future__ import annotations

import pytest

from consensus.quorum import leader_of, max_faulty, quorum, weak_quorum

SIZES = range(1, 32)


@pytest.mark.parametrize("n", SIZES)
def test_fault_bound_is_largest_safe_f(n: int) -> None:
    f = max_faulty(n)
    assert n >= 3 * f + 1  # tolerating f needs 3f + 1 sealers
    assert n < 3 * (f + 1) + 1  # and f + 1 would need more than n


@pytest.mark.parametrize("n", SIZES)
def test_two_quorums_share_an_honest_sealer(n: int) -> None:
    f, q = max_faulty(n), quorum(n)
    assert 2 * q - n >= f + 1  # safety: the overlap cannot be all faulty


@pytest.mark.parametrize("n", SIZES)
def test_honest_sealers_alone_form_a_quorum(n: int) -> None:
    assert n - max_faulty(n) >= quorum(n)  # liveness with f silent


@pytest.mark.parametrize("n", SIZES)
def test_weak_quorum_meets_every_quorum_in_an_honest_sealer(n: int) -> None:
    f = max_faulty(n)
    assert weak_quorum(n) == f + 1
    assert weak_quorum(n) + quorum(n) - n >= 1


@pytest.mark.parametrize("n", [n for n in SIZES if n % 3 == 1])
def test_quorum_is_minimal_for_3f_plus_1(n: int) -> None:
    f, q = max_faulty(n), quorum(n)
    assert q == 2 * f + 1
    # one vote fewer would let two quorums overlap in faulty sealers only
    assert 2 * (q - 1) - n < f + 1


def test_known_values() -> None:
    assert [(n, max_faulty(n), quorum(n)) for n in (1, 2, 3, 4, 7, 10, 100)] == [
        (1, 0, 1),
        (2, 0, 2),
        (3, 0, 3),
        (4, 1, 3),
        (7, 2, 5),
        (10, 3, 7),
        (100, 33, 67),
    ]


@pytest.mark.parametrize("n", SIZES)
def test_leader_rotates_through_all_sealers(n: int) -> None:
    for period in (1, 2, 3):
        leaders = {leader_of(0, h, n, period) for h in range(n * period)}
        assert leaders == set(range(n))
        # a view change always moves the leader (when there is anyone to move to)
        for h in range(1, 5):
            assert (leader_of(1, h, n, period) != leader_of(0, h, n, period)) == (n > 1)


def test_leader_formula_matches_fisco() -> None:
    assert leader_of(0, 1, 4) == 1 and leader_of(2, 5, 4) == 3  # (v + h) % n
    assert leader_of(1, 7, 4, 3) == (1 + 7 // 3) % 4


def test_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        max_faulty(0)
    with pytest.raises(ValueError):
        leader_of(0, 1, 4, 0)
