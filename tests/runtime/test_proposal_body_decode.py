"""``ProposalBody.decode`` checks every tx hash (one fast pass, the typed error otherwise)."""

from __future__ import annotations

import pytest

from consensus.codec import DecodeError, pack
from node.ledger.chain import ProposalBody

GOOD = [bytes([i]) * 32 for i in range(5)]


def test_a_valid_payload_round_trips() -> None:
    body = ProposalBody(1_700_000_000_000, 3, tuple(GOOD))
    assert ProposalBody.decode(body.encode()) == body


@pytest.mark.parametrize(
    "bad,message",
    [(b"\x01" * 31, "expected 32 bytes, got 31"), ("ab" * 16, "expected bytes, got str")],
)
def test_a_bad_hash_anywhere_is_named(bad: object, message: str) -> None:
    for index in (0, 2, 4):
        hashes = list(GOOD)
        hashes[index] = bad
        with pytest.raises(DecodeError, match=f"tx hash: {message}"):
            ProposalBody.decode(pack([1, 0, hashes]))


def test_the_timestamp_is_checked_before_the_hashes() -> None:
    with pytest.raises(DecodeError, match="proposal timestamp"):
        ProposalBody.decode(pack([-1, 0, [b"\x01"]]))
