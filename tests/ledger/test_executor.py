"""The executor: per-transaction rollback, status codes, block checks, determinism."""

from __future__ import annotations

from dataclasses import replace

import pytest

from node.ledger.accounts import parse_address
from node.ledger.block import EMPTY_ROOT, Block, Receipt, merkle_root
from node.ledger.executor import ExecutionError, Executor, receipt_root_of
from node.ledger.precompiles import CALL_ADDRESS_ERROR, PRECOMPILED_ERROR, UNKNOWN_FUNCTION
from node.ledger.precompiles.dag_transfer import INSUFFICIENT_BALANCE
from node.ledger.tx import decode_values
from storage.memory import MemoryKV
from storage.overlay import StateOverlay
from storage.state_root import GENESIS_STATE_ROOT, next_state_root
from tests.ledger.support import ALICE, BOB, Chain, make_tx, open_genesis


def test_failed_transaction_reverts_only_itself(open_chain: Chain) -> None:
    c = open_chain
    c.run(make_tx(ALICE, "userAdd", "alice", 10))
    result = c.run(
        make_tx(ALICE, "userTransfer", "alice", "bob", 4),
        make_tx(ALICE, "userTransfer", "alice", "carol", 7),  # fails: 6 left
        make_tx(ALICE, "userTransfer", "alice", "carol", 6),
    )
    assert [r.status for r in result.receipts] == [0, INSUFFICIENT_BALANCE, 0]
    assert (c.balance("alice"), c.balance("bob"), c.balance("carol")) == (0, 4, 6)


def test_exception_inside_a_precompile_is_a_failed_receipt(open_chain: Chain) -> None:
    # A lone surrogate cannot be UTF-8 encoded: the precompile raises while building the
    # key. It only arrives through ``call`` (a transaction could not carry it).
    status, _ = open_chain.executor.call(
        open_chain.store.state, "0x5002", "userBalance", ["\ud800"]
    )
    assert status == PRECOMPILED_ERROR


def test_writes_before_an_exception_are_reverted(
    open_chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the general path's savepoints: without the fast paths, which never see the patch
    open_chain.executor = Executor(open_chain.genesis, fast_paths=False)
    methods = type(open_chain.executor.precompiles[parse_address("0x5002")]).methods
    spec = methods["userAdd"]

    def add_then_explode(self, ctx, user, balance, owner=""):  # type: ignore[no-untyped-def]
        spec.func(self, ctx, user, balance, owner)
        raise ZeroDivisionError

    monkeypatch.setitem(methods, "userAdd", replace(spec, func=add_then_explode))
    result = open_chain.run(make_tx(ALICE, "userAdd", "x", 1), make_tx(ALICE, "userSave", "y", 2))
    assert [r.status for r in result.receipts] == [PRECOMPILED_ERROR, 0]
    assert open_chain.record("x") is None
    assert open_chain.balance("y") == 2


def test_unknown_address_and_method(open_chain: Chain) -> None:
    assert open_chain.statuses(
        make_tx(ALICE, "userAdd", "a", 1, to=parse_address("0x5003")),
        make_tx(ALICE, "userMint", "a", 1),
    ) == [CALL_ADDRESS_ERROR, UNKNOWN_FUNCTION]
    assert open_chain.executor.call(open_chain.store.state, "0x9999", "x") == (
        CALL_ADDRESS_ERROR,
        b"",
    )


def test_call_rejects_out_of_range_and_odd_arguments(open_chain: Chain) -> None:
    ex, state = open_chain.executor, open_chain.store.state
    assert ex.call(state, "0x5002", "userAdd", ["a", 2**256])[0] == PRECOMPILED_ERROR
    assert ex.call(state, "0x5002", "userAdd", ["a", -1])[0] == PRECOMPILED_ERROR
    assert ex.call(state, "0x5002", "userAdd", ["a", True])[0] == PRECOMPILED_ERROR
    assert ex.call(state, "0x5002", "userAdd", ["a" * 257, 1])[0] == PRECOMPILED_ERROR
    assert ex.call(state, "0x5002", ["userAdd"], [])[0] == PRECOMPILED_ERROR  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ex.call(state, "not an address", "userBalance", ["a"])


def test_call_writes_nothing(open_chain: Chain) -> None:
    c = open_chain
    assert c.executor.call(c.store.state, "0x5002", "userAdd", ["dry", 5]) == (0, b"")
    assert c.record("dry") is None


def test_receipts_and_roots(open_chain: Chain) -> None:
    txs = [make_tx(ALICE, "userAdd", "a", 1), make_tx(BOB, "userDraw", "a", 5)]
    result = open_chain.execute(txs)
    r0, r1 = result.receipts
    assert r0 == Receipt(txs[0].hash, 1, 0, 0, b"", (), ALICE.address, txs[0].tx.tx.to)
    assert (r1.index, r1.status, r1.sender) == (1, INSUFFICIENT_BALANCE, BOB.address)
    assert result.tx_hashes == tuple(t.hash for t in txs)
    assert result.tx_root == merkle_root([t.hash for t in txs])
    assert result.encoded_receipts == (r0.encode(), r1.encode())
    assert result.receipt_root == receipt_root_of(result.encoded_receipts)
    assert result.receipt_root == merkle_root([r0.hash, r1.hash])
    assert result.state_root == next_state_root(GENESIS_STATE_ROOT, result.write_set)
    assert result.state_root != GENESIS_STATE_ROOT


def test_empty_block_keeps_the_root(open_chain: Chain) -> None:
    result = open_chain.execute([])
    assert (result.tx_root, result.receipt_root) == (EMPTY_ROOT, EMPTY_ROOT)
    assert result.state_root == GENESIS_STATE_ROOT and result.write_set == ()


def test_execution_does_not_touch_the_given_state(open_chain: Chain) -> None:
    before = open_chain.state_items()
    open_chain.execute([make_tx(ALICE, "userAdd", "a", 1)])
    assert open_chain.state_items() == before


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(chain_id="other"), "another chain"),
        (dict(group_id="group9"), "another chain"),
        (dict(block_limit=0), "block limit"),
    ],
)
def test_invalid_blocks_raise(open_chain: Chain, bad: dict[str, object], match: str) -> None:
    good = make_tx(ALICE, "userAdd", "a", 1)
    with pytest.raises(ExecutionError, match=match):
        open_chain.execute([good, make_tx(ALICE, "userAdd", "b", 1, **bad)])  # type: ignore[arg-type]


def test_duplicate_transaction_raises(open_chain: Chain) -> None:
    tx = make_tx(ALICE, "userAdd", "a", 1)
    with pytest.raises(ExecutionError, match="twice"):
        open_chain.execute([tx, tx])


def test_block_commit_checks_the_block(open_chain: Chain) -> None:
    result = open_chain.execute([make_tx(ALICE, "userAdd", "a", 1)])
    with pytest.raises(ExecutionError):
        result.block_commit(open_chain.head)


def test_two_executors_agree() -> None:
    a, b = Chain(open_genesis()), Chain(open_genesis())
    txs = [make_tx(ALICE, "userAdd", f"u{i}", i) for i in range(20)]
    txs += [make_tx(BOB, "userTransfer", f"u{i}", f"u{i + 1}", 3) for i in range(19)]
    ra, rb = a.run(*txs), b.run(*txs)
    assert ra == rb
    assert a.head.hash == b.head.hash
    assert a.state_items() == b.state_items()


def test_replaying_committed_blocks_reproduces_roots(open_chain: Chain) -> None:
    c = open_chain
    c.run(make_tx(ALICE, "userAdd", "a", 10), make_tx(ALICE, "userAdd", "b", 1))
    c.run(make_tx(BOB, "userTransfer", "a", "b", 4), make_tx(BOB, "userDraw", "b", 99))
    # A second node receives the block bytes, decodes, recovers senders, and re-executes.
    replica = Executor(open_genesis())
    state = StateOverlay(MemoryKV())
    root = GENESIS_STATE_ROOT
    for raw in (c.store.block_by_number(n) for n in (1, 2)):
        block = Block.decode(raw or b"")
        assert block.tx_root_matches()
        txs = [t.verified() for t in block.decode_transactions()]
        result = replica.execute_block(state, number=block.number, parent_state_root=root, txs=txs)
        assert (result.state_root, result.receipt_root) == (
            block.header.state_root,
            block.header.receipt_root,
        )
        for key, value in result.write_set:
            state.put(key, value) if value is not None else state.delete(key)
        root = result.state_root
    assert decode_values(replica.call(state, "0x5002", "userBalance", ["b"])[1]) == (5,)
