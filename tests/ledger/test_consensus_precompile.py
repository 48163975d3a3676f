"""Consensus (0x1003): governors only, FISCO's codes, list order, and the next-block rule."""

from __future__ import annotations

import pytest

from consensus.crypto import hash32
from consensus.messages import MAX_SEALERS
from node.ledger.accounts import parse_address
from node.ledger.genesis import GenesisConfig
from node.ledger.precompiles import NO_PERMISSION
from node.ledger.precompiles import consensus as pc
from node.ledger.precompiles.consensus import (
    ALREADY_IN_LIST,
    INVALID_NODE_ID,
    LAST_SEALER,
    MUST_BE_OBSERVER,
    NODE_NOT_EXIST,
    TOO_MANY_NODES,
    Membership,
    read_membership,
)
from node.ledger.tx import decode_values
from tests.ledger.support import ALICE, GOVERNOR, SEALERS, Chain, keypair, make_tx, open_genesis

CONS = parse_address("0x1003")
NEW = tuple(keypair(300 + i).public_key for i in range(3))

_nonces = iter(range(10**6))


def tx(method: str, node: bytes | str, kp: object = GOVERNOR):  # type: ignore[no-untyped-def]
    node_id = node.hex() if isinstance(node, bytes) else node
    return make_tx(kp, method, node_id, to=CONS, nonce=f"c{next(_nonces)}")  # type: ignore[arg-type]


def members(chain: Chain) -> Membership:
    return read_membership(chain.store.state, chain.genesis)


@pytest.fixture
def chain() -> Chain:
    return Chain(open_genesis())


def test_genesis_lists_until_changed(chain: Chain) -> None:
    assert members(chain) == (SEALERS, ())
    assert chain.store.state.get(pc.SEALERS_KEY) is None
    status, out = chain.call("getSealerList", to=CONS)
    assert status == 0 and out == (4, *(k.hex() for k in SEALERS))
    assert chain.call("getObserverList", to=CONS) == (0, (0,))


def test_only_governors_change_membership(chain: Chain) -> None:
    for method in ("addObserver", "addSealer", "remove"):
        assert chain.status(tx(method, NEW[0], ALICE)) == NO_PERMISSION
        assert chain.status(tx(method, SEALERS[1], ALICE)) == NO_PERMISSION
    assert chain.status(tx("addObserver", "nonsense", ALICE)) == NO_PERMISSION  # permission first
    assert members(chain) == (SEALERS, ())


@pytest.mark.parametrize(
    "node_id",
    ["", "ab", "zz" * 64, "0x" + "ab" * 63, "ab" * 65, " " + "ab" * 63 + "a", "00" * 64, "é" * 128],
)
def test_invalid_node_ids(chain: Chain, node_id: str) -> None:
    for method in ("addObserver", "addSealer", "remove"):
        assert chain.status(tx(method, node_id)) == INVALID_NODE_ID


def test_upper_case_hex_is_the_same_node(chain: Chain) -> None:
    assert chain.status(tx("addObserver", NEW[0].hex().upper())) == 0
    assert members(chain).observers == (NEW[0],)
    assert chain.status(tx("addObserver", NEW[0].hex())) == ALREADY_IN_LIST


def test_observer_first_then_sealer_appended_at_the_end(chain: Chain) -> None:
    assert chain.status(tx("addSealer", NEW[0])) == MUST_BE_OBSERVER
    result = chain.run(tx("addObserver", NEW[0]))
    (event,) = result.receipts[0].events
    assert event.address == CONS and event.topics == (hash32(b"addObserver(string)"),)
    assert decode_values(event.data) == (NEW[0].hex(),)
    assert members(chain) == (SEALERS, (NEW[0],))
    assert chain.status(tx("addObserver", NEW[0])) == ALREADY_IN_LIST
    assert chain.status(tx("addSealer", NEW[0])) == 0
    assert members(chain) == ((*SEALERS, NEW[0]), ())
    assert chain.status(tx("addSealer", NEW[0])) == ALREADY_IN_LIST
    assert chain.status(tx("addSealer", SEALERS[2])) == ALREADY_IN_LIST


def test_remove_shifts_later_sealers_down(chain: Chain) -> None:
    assert chain.status(tx("remove", SEALERS[1])) == 0
    assert members(chain) == ((SEALERS[0], SEALERS[2], SEALERS[3]), ())
    assert chain.status(tx("remove", SEALERS[1])) == NODE_NOT_EXIST
    assert chain.status(tx("remove", NEW[1])) == NODE_NOT_EXIST
    assert chain.statuses(tx("addObserver", NEW[1]), tx("remove", NEW[1])) == [0, 0]
    assert members(chain) == ((SEALERS[0], SEALERS[2], SEALERS[3]), ())


def test_add_observer_demotes_a_sealer_but_never_the_last(chain: Chain) -> None:
    assert chain.status(tx("addObserver", SEALERS[0])) == 0
    assert members(chain) == (SEALERS[1:], (SEALERS[0],))
    assert chain.statuses(tx("remove", SEALERS[1]), tx("remove", SEALERS[2])) == [0, 0]
    assert members(chain) == ((SEALERS[3],), (SEALERS[0],))
    assert chain.status(tx("remove", SEALERS[3])) == LAST_SEALER
    assert chain.status(tx("addObserver", SEALERS[3])) == LAST_SEALER
    assert members(chain) == ((SEALERS[3],), (SEALERS[0],))
    status, out = chain.call("getSealerList", to=CONS)
    assert (status, out) == (0, (1, SEALERS[3].hex()))


def test_failed_changes_write_nothing(chain: Chain) -> None:
    before = chain.state_items()
    chain.statuses(tx("addSealer", NEW[0]), tx("remove", NEW[0]), tx("addObserver", "x"))
    assert chain.state_items() == before


def test_lists_never_exceed_max_sealers() -> None:
    keys = tuple(keypair(1000 + i).public_key for i in range(MAX_SEALERS + 1))
    genesis = GenesisConfig(
        sealers=keys[: MAX_SEALERS - 1], observers=keys[-2:], governors=(GOVERNOR.address,)
    )
    chain = Chain(genesis)
    assert chain.status(tx("addSealer", keys[-2])) == 0  # 256 sealers: the most a seal names
    assert len(members(chain).sealers) == MAX_SEALERS
    assert chain.status(tx("addSealer", keys[-1])) == TOO_MANY_NODES
    assert members(chain).observers == (keys[-1],)
    # pages of 30 ids, from any start
    status, out = chain.call("getSealerList", 250, to=CONS)
    assert status == 0 and out[0] == MAX_SEALERS and len(out) == 1 + 6
    assert out[1:] == tuple(k.hex() for k in keys[250:256])
    status, out = chain.call("getSealerList", 0, to=CONS)
    assert len(out) == 1 + pc.PAGE and out[1] == keys[0].hex()


def test_a_change_applies_from_the_next_block(chain: Chain) -> None:
    first = chain.run(tx("addObserver", NEW[0]), tx("addSealer", NEW[0]), tx("remove", SEALERS[0]))
    assert [r.status for r in first.receipts] == [0, 0, 0]
    # the block that made the change still ran with (and names) the old list
    assert first.sealers == SEALERS and chain.head.header.sealer_list == SEALERS
    second = chain.run(make_tx(ALICE, "userSave", "a", 1))
    assert second.sealers == (*SEALERS[1:], NEW[0])
    assert chain.head.header.sealer_list == (*SEALERS[1:], NEW[0])
