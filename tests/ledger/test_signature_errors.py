"""A refused signature says what is wrong with it (a 65-byte signature with recovery id
4 used to be told it "must be 65 bytes")."""

from __future__ import annotations

import pytest

from consensus.crypto import InvalidSignature, hash32, recover
from node.ledger.tx import SignedTransaction
from node.runtime.txpool import Reason, TxPool, TxRejected
from tests.ledger.support import ALICE, CHAIN, GROUP
from tests.ledger.test_byte_limits import build


def with_v(signature: bytes, v: int) -> bytes:
    return signature[:64] + bytes([v])


@pytest.mark.parametrize("v", [4, 27, 255])
def test_a_bad_recovery_id_is_named(v: int) -> None:
    digest = hash32(b"x")
    signature = with_v(ALICE.sign(digest), v)
    assert len(signature) == 65
    with pytest.raises(InvalidSignature, match=rf"recovery id v is {v}; it must be 0\.\.3") as info:
        recover(digest, signature)
    assert "65 bytes" not in str(info.value)


def test_wrong_lengths_say_what_they_got() -> None:
    digest = hash32(b"x")
    with pytest.raises(InvalidSignature, match=r"must be 65 bytes r\|\|s\|\|v, got 64"):
        recover(digest, ALICE.sign(digest)[:64])
    with pytest.raises(InvalidSignature, match="digest must be 32 bytes, got 31"):
        recover(digest[:31], ALICE.sign(digest))


def test_the_pool_passes_the_reason_on() -> None:
    stx = build().sign(ALICE)
    bad = SignedTransaction(stx.tx, with_v(stx.signature, 4))
    pool = TxPool(chain_id=CHAIN, group_id=GROUP, in_chain=lambda h: False)
    with pytest.raises(TxRejected) as info:
        pool.admit(bad.encoded, 0)
    assert info.value.reason is Reason.INVALID_SIGNATURE
    assert "recovery id v is 4" in info.value.detail
