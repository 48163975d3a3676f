"""Issue 9: two inputs from a client written from docs/ alone halted a live 4-node chain.

Both run against real node processes (``ledgerlab init`` + ``up``: TCP with mutual TLS on
loopback), one fresh chain per test, because on a node without the fixes the chain never
moves again:

1. a DagTransfer ``userAdd`` whose user name is 256 characters but 768 UTF-8 bytes was
   admitted, then no node could store the block (state key 784 > 511 bytes), and the
   head stayed put, across ``down`` / ``up`` too;
2. two transactions with the same nonce sent at the same moment to two disjoint pairs
   of sealers: each node refused the other's transaction, also when fetching a
   proposal's missing transactions, so no proposal reached 2f+1 votes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial.harness import (
    ALREADY_KNOWN,
    MALFORMED,
    MAX_ARG_BYTES,
    NONCE_CHECK_FAIL,
    LiveChain,
    send_at_once,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[LiveChain]:
    live = LiveChain(tmp_path / "chain").start()
    try:
        yield live
    finally:
        live.down()


def test_poison_pill_user_name_does_not_halt_the_chain(chain: LiveChain) -> None:
    chain.assert_live("before the pill")
    name = "€" * MAX_ARG_BYTES  # as many characters as the limit allows bytes: 3x too long
    assert len(name.encode()) == 3 * MAX_ARG_BYTES
    pill = chain.tx("userAdd", [name, 1])
    answer = chain.send(0, pill)

    chain.assert_live("after a userAdd with a 768-byte name")
    chain.down()
    chain.up()
    chain.assert_live("after down / up")

    # The documented answer for a string argument over the byte limit: Malformed.
    assert answer.get("error", {}).get("code") == MALFORMED, answer
    for i in range(chain.n):
        assert chain.result(i, "getTransactionByHash", pill.hash) is None


def test_same_nonce_to_different_nodes_at_once_does_not_stall(chain: LiveChain) -> None:
    chain.assert_live("before the conflicting pair")
    budget = 2 * chain.consensus_timeout()
    splits = 0
    for _ in range(5):
        nonce = secrets.token_hex(16)
        x = chain.tx("userSave", ["carol", 7], nonce=nonce)
        y = chain.tx("userSave", ["dave", 9], nonce=nonce)
        answers = send_at_once(chain, x, y)
        accepted = set()
        for i, a in answers.items():
            mine = x if i % 2 == 0 else y
            code = a.get("error", {}).get("code")
            if a.get("result") == mine.hash or code == ALREADY_KNOWN:  # held (gossip was first)
                accepted.add(mine.hash)
            else:  # the other one got there first: the documented refusal
                assert code == NONCE_CHECK_FAIL, (i, a)
        splits += len(accepted) == 2

        # ordinary traffic goes on, and exactly one of the pair commits
        ordinary = [chain.tx("userSave", [f"erin{k}", 1]) for k in range(8)]
        for k, tx in enumerate(ordinary):
            chain.send_ok(k % chain.n, tx)
        chain.wait_committed(
            [t.hash for t in ordinary], budget, "ordinary transfers after a same-nonce pair"
        )
        committed = [
            t.hash for t in (x, y) if all(chain.receipt(i, t.hash) for i in range(chain.n))
        ]
        assert len(committed) == 1, (committed, answers)
        chain.assert_same_head()
        if splits >= 2:
            break
    assert splits, "no round split the pair between the nodes; the test proved nothing"
    chain.assert_live("after same-nonce pairs")
