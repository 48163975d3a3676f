"""The executor's fast path for DagTransfer (``FastMethod``) against the general dispatch.

Two executors of one genesis, one with its fast paths and one without, run the same random
blocks on the same committed state: receipts (objects and bytes), write sets and all three
roots must be identical, block after block. The blocks mix what the fast path decides
(transfers, saves, draws, adds, with missing users, empty names, zero amounts, balances
at the uint256 limit, transfers to oneself) with what it hands back to the general path
(wrong argument counts or types, ``userAdd`` with an owner, other methods and addresses),
so a failed general-path transaction is reverted after fast-path writes in the same block.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.ledger.block import Block
from node.ledger.executor import ExecutionResult, Executor
from node.ledger.genesis import GenesisConfig
from node.ledger.precompiles.dag_transfer import _fast_key
from node.ledger.tx import UINT256_MAX, SignedTransaction, Transaction, VerifiedTx
from storage.ledger import MAX_STATE_KEY_LEN, LedgerStore
from storage.memory import MemoryKV
from tests.ledger import fisco_support as fs
from tests.ledger.support import (
    ADMIN,
    ALICE,
    BOB,
    CHAIN,
    DAG,
    GROUP,
    SYS,
    open_genesis,
    permissioned_genesis,
)

USERS = ["a", "b", "c", "", "é", "ü" * 128, "x" * 256, "\U0001f600" * 64]
AMOUNTS = [0, 1, 2, 5, 7, 12, 10**6, 2**255, UINT256_MAX - 7, UINT256_MAX - 1, UINT256_MAX]
SEED_BALANCES = {"a": 5, "b": 7, "é": UINT256_MAX - 7}
"""Small balances and one at the limit: random amounts hit "exactly enough" and overflow."""
SENDERS = [ALICE.address, BOB.address, ADMIN.address]

user = st.sampled_from(list(SEED_BALANCES)) | st.sampled_from(USERS)
amount = st.sampled_from(AMOUNTS) | st.integers(0, 13) | st.integers(0, UINT256_MAX)
arg = user | amount
call = st.one_of(
    st.tuples(st.just("userTransfer"), st.tuples(user, user, amount)),
    st.tuples(st.just("userTransfer"), st.tuples(user, user, amount)),
    st.tuples(st.just("userSave"), st.tuples(user, amount)),
    st.tuples(st.just("userDraw"), st.tuples(user, amount)),
    st.tuples(st.just("userAdd"), st.tuples(user, amount)),
    st.tuples(
        st.just("userAdd"),
        st.tuples(user, amount, st.sampled_from(["", "0x01", "not hex", "0x" + "ab" * 20])),
    ),
    st.tuples(st.just("userBalance"), st.tuples(user)),
    st.tuples(
        st.sampled_from(["userTransfer", "userSave", "userDraw", "userAdd", "nope"]),
        st.lists(arg, max_size=4).map(tuple),  # any count, any types
    ),
)
tx_spec = st.tuples(call, st.sampled_from(SENDERS), st.sampled_from([DAG, DAG, DAG, SYS]))
blocks = st.lists(st.lists(tx_spec, min_size=1, max_size=25), min_size=1, max_size=4)


def _txs(specs: list[Any], number: int) -> list[VerifiedTx]:
    """Transactions with a fixed sender and a dummy signature: the executor never checks
    signatures (admission did), and signing would only slow hypothesis down."""
    out = []
    for i, ((method, args), sender, to) in enumerate(specs):
        tx = Transaction.build(
            chain_id=CHAIN,
            group_id=GROUP,
            to=to,
            method=method,
            args=args,
            block_limit=1000,
            nonce=f"n{number}-{i}",
        )
        out.append(VerifiedTx(SignedTransaction(tx, bytes(65)), sender))
    return out


def _same(fast: ExecutionResult, general: ExecutionResult) -> None:
    assert fast.encoded_receipts == general.encoded_receipts
    assert fast.receipts == general.receipts
    assert fast.write_set == general.write_set
    assert fast.tx_root == general.tx_root
    assert fast.receipt_root == general.receipt_root
    assert fast.state_root == general.state_root
    assert fast.failed_txs == general.failed_txs


def _run(genesis: GenesisConfig, block_specs: list[list[Any]]) -> list[ExecutionResult]:
    fast, general = Executor(genesis), Executor(genesis, fast_paths=False)
    assert not general.fast_paths
    store = LedgerStore(MemoryKV())
    store.commit_block(genesis.block_commit())
    parent = genesis.block()
    seed = [(("userAdd", (u, b)), ALICE.address, DAG) for u, b in SEED_BALANCES.items()]
    results = []
    for number, specs in enumerate([seed, *block_specs], start=1):
        txs = _txs(specs, number)
        kwargs: dict[str, Any] = {
            "number": number,
            "parent_state_root": parent.header.state_root,
            "txs": txs,
        }
        a = fast.execute_block(store.state, **kwargs)
        b = general.execute_block(store.state, **kwargs)
        _same(a, b)
        header = a.header(parent_hash=parent.hash, timestamp=number, sealer=0)
        parent = Block.build(header, [v.tx for v in txs])
        store.commit_block(a.block_commit(parent))
        results.append(a)
    return results


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks)
def test_fast_path_equals_general_path_on_random_blocks(block_specs: list[list[Any]]) -> None:
    _run(open_genesis(), block_specs)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks)
def test_permissioned_mode_has_no_fast_path(block_specs: list[list[Any]]) -> None:
    assert not Executor(permissioned_genesis()).fast_paths
    _run(permissioned_genesis(), block_specs)


def test_open_mode_takes_the_fast_path_for_the_four_writers() -> None:
    assert {m for a, m in Executor(open_genesis()).fast_paths if a == DAG} == {
        "userAdd",
        "userSave",
        "userDraw",
        "userTransfer",
    }


def test_every_status_of_a_transfer_block_matches() -> None:
    """One block with each outcome of userTransfer, on users at the balance limits."""
    setup = [
        (("userAdd", ("rich", UINT256_MAX)), ALICE.address, DAG),
        (("userAdd", ("poor", 5)), ALICE.address, DAG),
        (("userAdd", ("full", UINT256_MAX - 1)), ALICE.address, DAG),
    ]
    transfers = [
        (("userTransfer", ("poor", "rich", 1)), BOB.address, DAG),  # overflow
        (("userTransfer", ("poor", "full", 1)), BOB.address, DAG),  # ok: full is now max
        (("userTransfer", ("poor", "full", 1)), BOB.address, DAG),  # overflow now
        (("userTransfer", ("poor", "nobody", 4)), BOB.address, DAG),  # creates nobody
        (("userTransfer", ("poor", "x", 1)), BOB.address, DAG),  # insufficient (0 left)
        (("userTransfer", ("ghost", "poor", 1)), BOB.address, DAG),  # no such user
        (("userTransfer", ("", "poor", 1)), BOB.address, DAG),  # invalid name
        (("userTransfer", ("poor", "rich", 0)), BOB.address, DAG),  # invalid amount
        (("userTransfer", ("rich", "rich", 9)), BOB.address, DAG),  # to oneself: ok
        (("userTransfer", ("rich", "poor")), BOB.address, DAG),  # too few args
        (("userTransfer", ("rich", 1, 1)), BOB.address, DAG),  # wrong type
    ]
    results = _run(open_genesis(), [setup, transfers])
    assert [r.status for r in results[-1].receipts] == [
        -51405,
        0,
        -51405,
        0,
        -51404,
        -51402,
        -51400,
        -51401,
        0,
        21,
        21,
    ]


def test_fast_key_refuses_what_a_state_key_cannot_hold() -> None:
    assert _fast_key("a") == b"u_dag_transfer/a"
    assert _fast_key("\ud800") is None  # no UTF-8 form: the general path decides
    assert _fast_key("x" * (MAX_STATE_KEY_LEN + 1)) is None


def test_fisco_format_transactions_match_too() -> None:
    """FISCO-format transactions take the fast path as well (their receipt carries the
    code in the output): the same receipts either way, in a block mixed with native ones."""
    genesis = open_genesis(chain_id="1", group_id="1")
    secret = bytes([7]) * 32

    def fisco(i: int, signature: str, *args: object) -> VerifiedTx:
        data = fs.calldata(signature, *args)
        raw = fs.fisco_tx(secret, data=data, block_limit=900, randomid=1000 + i)
        return SignedTransaction.decode(raw).verified()

    def native(i: int, method: str, *args: Any) -> VerifiedTx:
        tx = Transaction.build(
            chain_id="1",
            group_id="1",
            to=DAG,
            method=method,
            args=args,
            block_limit=900,
            nonce=f"native-{i}",
        )
        return VerifiedTx(SignedTransaction(tx, bytes(65)), BOB.address)

    txs = [
        fisco(0, "userAdd(string,uint256)", "alice", 100),
        native(1, "userAdd", "bob", 5),
        fisco(2, "userAdd(string,uint256)", "alice", 1),
        fisco(3, "userTransfer(string,string,uint256)", "alice", "bob", 30),
        native(4, "userTransfer", "bob", "alice", 50),
        fisco(5, "userTransfer(string,string,uint256)", "alice", "carol", 500),
        fisco(6, "userDraw(string,uint256)", "alice", 0),
        fisco(7, "userSave(string,uint256)", "dave", 9),
        fisco(8, "userTransfer(string,string,uint256)", "alice", "alice", 1),
    ]
    store = LedgerStore(MemoryKV())
    store.commit_block(genesis.block_commit())
    kwargs: dict[str, Any] = {
        "number": 1,
        "parent_state_root": genesis.block().header.state_root,
        "txs": txs,
    }
    fast = Executor(genesis).execute_block(store.state, **kwargs)
    general = Executor(genesis, fast_paths=False).execute_block(store.state, **kwargs)
    _same(fast, general)
    assert [r.output != b"" for r in fast.receipts] == [
        True,
        False,
        True,
        True,
        False,
        True,
        True,
        True,
        True,
    ]
