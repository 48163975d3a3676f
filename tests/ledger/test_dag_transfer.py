"""DagTransfer (0x5002): every method and every code, in open and permissioned mode."""

from __future__ import annotations

import pytest

from node.ledger.precompiles import NO_PERMISSION, PRECOMPILED_ERROR
from node.ledger.precompiles.dag_transfer import (
    BALANCE_OVERFLOW,
    INSUFFICIENT_BALANCE,
    INVALID_AMOUNT,
    INVALID_USER_NAME,
    USER_ALREADY_EXIST,
    USER_NOT_EXIST,
    parse_record,
)
from node.ledger.tx import UINT256_MAX
from tests.ledger.support import ADMIN, ADMIN2, ALICE, BOB, Chain, make_tx

# ------------------------------------------------------------------ open mode (FISCO)


def test_user_add_creates_and_refuses_duplicates(open_chain: Chain) -> None:
    c = open_chain
    assert c.status(make_tx(ALICE, "userAdd", "alice", 100)) == 0
    assert c.balance("alice") == 100
    assert c.status(make_tx(BOB, "userAdd", "alice", 5)) == USER_ALREADY_EXIST
    assert c.balance("alice") == 100


def test_user_add_accepts_zero_balance_like_fisco(open_chain: Chain) -> None:
    assert open_chain.status(make_tx(ALICE, "userAdd", "zero", 0)) == 0
    assert open_chain.balance("zero") == 0


def test_user_add_empty_name(open_chain: Chain) -> None:
    assert open_chain.status(make_tx(ALICE, "userAdd", "", 1)) == INVALID_USER_NAME
    assert open_chain.state_items() == []


def test_user_save_adds_and_creates(open_chain: Chain) -> None:
    c = open_chain
    assert c.statuses(
        make_tx(ALICE, "userAdd", "alice", 10),
        make_tx(BOB, "userSave", "alice", 5),
        make_tx(BOB, "userSave", "carol", 7),  # a missing user is created
    ) == [0, 0, 0]
    assert c.balance("alice") == 15
    assert c.balance("carol") == 7


def test_user_save_errors(open_chain: Chain) -> None:
    c = open_chain
    c.run(make_tx(ALICE, "userAdd", "big", UINT256_MAX - 1))
    assert c.statuses(
        make_tx(ALICE, "userSave", "", 1),
        make_tx(ALICE, "userSave", "big", 0),
        make_tx(ALICE, "userSave", "", 0),  # the name is checked first
        make_tx(ALICE, "userSave", "big", 2),
    ) == [INVALID_USER_NAME, INVALID_AMOUNT, INVALID_USER_NAME, BALANCE_OVERFLOW]
    assert c.balance("big") == UINT256_MAX - 1
    assert c.status(make_tx(ALICE, "userSave", "big", 1)) == 0
    assert c.balance("big") == UINT256_MAX


def test_user_draw(open_chain: Chain) -> None:
    c = open_chain
    c.run(make_tx(ALICE, "userAdd", "alice", 10))
    assert c.statuses(
        make_tx(BOB, "userDraw", "alice", 4),
        make_tx(BOB, "userDraw", "", 4),
        make_tx(BOB, "userDraw", "alice", 0),
        make_tx(BOB, "userDraw", "nobody", 1),
        make_tx(BOB, "userDraw", "alice", 7),
        make_tx(BOB, "userDraw", "alice", 6),
    ) == [0, INVALID_USER_NAME, INVALID_AMOUNT, USER_NOT_EXIST, INSUFFICIENT_BALANCE, 0]
    assert c.balance("alice") == 0
    assert c.record("alice") is not None  # drawing to zero keeps the user


def test_user_balance(open_chain: Chain) -> None:
    c = open_chain
    c.run(make_tx(ALICE, "userAdd", "alice", 2**200))
    assert c.call("userBalance", "alice") == (0, (2**200,))
    assert c.call("userBalance", "nobody") == (USER_NOT_EXIST, ())
    assert c.call("userBalance", "") == (INVALID_USER_NAME, ())
    # As a transaction it changes nothing and reports the same code.
    result = c.run(make_tx(BOB, "userBalance", "nobody"), make_tx(BOB, "userBalance", "alice"))
    assert [r.status for r in result.receipts] == [USER_NOT_EXIST, 0]
    assert result.write_set == ()


def test_user_transfer(open_chain: Chain) -> None:
    c = open_chain
    c.run(make_tx(ALICE, "userAdd", "alice", 100), make_tx(ALICE, "userAdd", "bob", 1))
    assert c.statuses(
        make_tx(BOB, "userTransfer", "alice", "bob", 30),  # anyone may move in open mode
        make_tx(BOB, "userTransfer", "alice", "dave", 20),  # a missing recipient is created
    ) == [0, 0]
    assert (c.balance("alice"), c.balance("bob"), c.balance("dave")) == (50, 31, 20)


def test_user_transfer_errors(open_chain: Chain) -> None:
    c = open_chain
    c.run(make_tx(ALICE, "userAdd", "alice", 100), make_tx(ALICE, "userAdd", "max", UINT256_MAX))
    before = c.state_items()
    assert c.statuses(
        make_tx(ALICE, "userTransfer", "", "bob", 1),
        make_tx(ALICE, "userTransfer", "alice", "", 1),
        make_tx(ALICE, "userTransfer", "alice", "bob", 0),
        make_tx(ALICE, "userTransfer", "nobody", "bob", 1),
        make_tx(ALICE, "userTransfer", "alice", "bob", 101),
        make_tx(ALICE, "userTransfer", "alice", "max", 1),
    ) == [
        INVALID_USER_NAME,
        INVALID_USER_NAME,
        INVALID_AMOUNT,
        USER_NOT_EXIST,
        INSUFFICIENT_BALANCE,
        BALANCE_OVERFLOW,
    ]
    assert c.state_items() == before
    assert c.record("bob") is None  # a failed transfer does not create the recipient


def test_transfer_to_self_is_a_noop(open_chain: Chain) -> None:
    c = open_chain
    c.run(make_tx(ALICE, "userAdd", "alice", 5))
    result = c.run(
        make_tx(ALICE, "userTransfer", "alice", "alice", 1000),  # no balance check: no-op
        make_tx(ALICE, "userTransfer", "ghost", "ghost", 1),  # not even existence
        make_tx(ALICE, "userTransfer", "alice", "alice", 0),  # amount is still checked
    )
    assert [r.status for r in result.receipts] == [0, 0, INVALID_AMOUNT]
    assert result.write_set == ()


def test_open_mode_stores_bare_balances(open_chain: Chain) -> None:
    open_chain.run(make_tx(ALICE, "userAdd", "alice", 9, BOB.address.hex()))
    assert open_chain.record("alice") == (9).to_bytes(32, "big")


# ------------------------------------------------------------------ permissioned mode


def test_only_admins_mint(perm_chain: Chain) -> None:
    c = perm_chain
    assert c.statuses(
        make_tx(ALICE, "userAdd", "alice", 10),
        make_tx(ALICE, "userSave", "alice", 10),
        make_tx(ALICE, "userAdd", "", 10),  # permission is checked before anything else
        make_tx(ADMIN, "userAdd", "alice", 10),
        make_tx(BOB, "userSave", "alice", 10),
        make_tx(ADMIN2, "userSave", "alice", 5),
    ) == [NO_PERMISSION, NO_PERMISSION, NO_PERMISSION, 0, NO_PERMISSION, 0]
    assert c.balance("alice") == 15


def test_user_add_binds_owner(perm_chain: Chain) -> None:
    c = perm_chain
    c.run(
        make_tx(ADMIN, "userAdd", "alice", 10, "0x" + ALICE.address.hex()),
        make_tx(ADMIN, "userAdd", "treasury", 10),  # default owner: the sender
        make_tx(ADMIN, "userSave", "saved", 3),  # created by save: owned by the sender
    )
    assert parse_record(c.record("alice") or b"") == (10, ALICE.address)
    assert parse_record(c.record("treasury") or b"") == (10, ADMIN.address)
    assert parse_record(c.record("saved") or b"") == (3, ADMIN.address)
    # Saving into an existing user keeps its owner.
    c.run(make_tx(ADMIN2, "userSave", "alice", 1))
    assert parse_record(c.record("alice") or b"") == (11, ALICE.address)


def test_user_add_bad_owner(perm_chain: Chain) -> None:
    assert perm_chain.status(make_tx(ADMIN, "userAdd", "x", 1, "0xnothex")) == PRECOMPILED_ERROR
    assert perm_chain.record("x") is None


def test_only_owner_draws(perm_chain: Chain) -> None:
    c = perm_chain
    c.run(make_tx(ADMIN, "userAdd", "alice", 10, ALICE.address.hex()))
    assert c.statuses(
        make_tx(BOB, "userDraw", "alice", 1),
        make_tx(ADMIN, "userDraw", "alice", 1),  # admins do not own other users
        make_tx(ALICE, "userDraw", "alice", 11),
        make_tx(ALICE, "userDraw", "alice", 4),
        make_tx(BOB, "userDraw", "nobody", 1),  # existence is checked before permission
    ) == [NO_PERMISSION, NO_PERMISSION, INSUFFICIENT_BALANCE, 0, USER_NOT_EXIST]
    assert c.balance("alice") == 6


def test_only_owner_transfers(perm_chain: Chain) -> None:
    c = perm_chain
    c.run(
        make_tx(ADMIN, "userAdd", "alice", 10, ALICE.address.hex()),
        make_tx(ADMIN, "userAdd", "bob", 10, BOB.address.hex()),
    )
    before = c.state_items()
    assert c.statuses(
        make_tx(BOB, "userTransfer", "alice", "bob", 5),
        make_tx(ADMIN, "userTransfer", "alice", "bob", 5),
    ) == [NO_PERMISSION, NO_PERMISSION]
    assert c.state_items() == before
    assert c.status(make_tx(ALICE, "userTransfer", "alice", "bob", 5)) == 0
    assert (c.balance("alice"), c.balance("bob")) == (5, 15)


def test_transfer_created_user_is_held_by_admins(perm_chain: Chain) -> None:
    c = perm_chain
    c.run(make_tx(ADMIN, "userAdd", "alice", 10, ALICE.address.hex()))
    assert c.status(make_tx(ALICE, "userTransfer", "alice", "newbie", 4)) == 0
    assert parse_record(c.record("newbie") or b"") == (4, b"")
    assert c.statuses(
        make_tx(ALICE, "userTransfer", "newbie", "alice", 1),  # the payer does not own it
        make_tx(BOB, "userDraw", "newbie", 1),
        make_tx(ADMIN2, "userTransfer", "newbie", "alice", 1),  # any admin may move it
        make_tx(ADMIN, "userDraw", "newbie", 1),
    ) == [NO_PERMISSION, NO_PERMISSION, 0, 0]
    assert (c.balance("alice"), c.balance("newbie")) == (7, 2)


def test_permissioned_balance_is_public(perm_chain: Chain) -> None:
    perm_chain.run(make_tx(ADMIN, "userAdd", "alice", 10, ALICE.address.hex()))
    assert perm_chain.call("userBalance", "alice") == (0, (10,))
    assert perm_chain.status(make_tx(BOB, "userBalance", "alice")) == 0


@pytest.mark.parametrize("method,args", [("userAdd", ("u",)), ("userDraw", ("u", 1, 2))])
def test_wrong_argument_count(open_chain: Chain, method: str, args: tuple[object, ...]) -> None:
    assert open_chain.status(make_tx(ALICE, method, *args)) == PRECOMPILED_ERROR  # type: ignore[arg-type]


def test_wrong_argument_type(open_chain: Chain) -> None:
    c = open_chain
    assert (
        c.statuses(
            make_tx(ALICE, "userAdd", 5, 5),
            make_tx(ALICE, "userAdd", "a", "5"),
            make_tx(ALICE, "userTransfer", "a", "b", "1"),
        )
        == [PRECOMPILED_ERROR] * 3
    )
