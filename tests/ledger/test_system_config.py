"""SystemConfig (0x1000): governors only, bounds, and the next-block rule."""

from __future__ import annotations

import pytest

from consensus.crypto import hash32
from node.ledger.executor import ExecutionError
from node.ledger.precompiles import NO_PERMISSION
from node.ledger.precompiles.system_config import INVALID_CONFIGURATION_VALUES, SET_TOPIC
from node.ledger.tx import decode_values
from tests.ledger.support import ALICE, GOVERNOR, SYS, Chain, make_tx, open_genesis


def set_tx(kp: object, key: str, value: str):  # type: ignore[no-untyped-def]
    return make_tx(kp, "setValueByKey", key, value, to=SYS)  # type: ignore[arg-type]


def get(chain: Chain, key: str) -> tuple[int, tuple[object, ...]]:
    return chain.call("getValueByKey", key, to=SYS)


def test_defaults_come_from_genesis() -> None:
    chain = Chain(open_genesis(tx_count_limit=7, consensus_timeout=5))
    assert get(chain, "tx_count_limit") == (0, ("7",))
    assert get(chain, "consensus_timeout") == (0, ("5",))
    assert get(chain, "leader_period") == (0, ("1",))
    config = chain.executor.system_config(chain.store.state)
    assert (config.tx_count_limit, config.consensus_timeout, config.leader_period) == (7, 5, 1)


def test_only_governors_set(open_chain: Chain) -> None:
    assert open_chain.status(set_tx(ALICE, "tx_count_limit", "5")) == NO_PERMISSION
    assert get(open_chain, "tx_count_limit") == (0, ("1000",))
    result = open_chain.run(set_tx(GOVERNOR, "tx_count_limit", "5"))
    assert result.receipts[0].status == 0
    (event,) = result.receipts[0].events
    assert event.address == SYS and event.topics == (SET_TOPIC,)
    assert hash32(b"setValueByKey(string,string)") == SET_TOPIC
    assert decode_values(event.data) == ("tx_count_limit", "5")
    assert get(open_chain, "tx_count_limit") == (0, ("5",))


@pytest.mark.parametrize(
    "key,value",
    [
        ("tx_count_limit", "0"),
        ("tx_count_limit", "10001"),
        ("tx_count_limit", "-1"),
        ("tx_count_limit", "1e3"),
        ("tx_count_limit", " 5"),
        ("tx_count_limit", ""),
        ("tx_count_limit", "٣"),  # a non-ASCII digit
        ("consensus_timeout", "2"),
        ("leader_period", "0"),
        ("no_such_key", "1"),
        ("", "1"),
    ],
)
def test_bad_values_are_refused(open_chain: Chain, key: str, value: str) -> None:
    result = open_chain.run(set_tx(GOVERNOR, key, value))
    assert result.receipts[0].status == INVALID_CONFIGURATION_VALUES
    assert result.receipts[0].events == ()
    assert result.write_set == ()


def test_get_unknown_key(open_chain: Chain) -> None:
    assert get(open_chain, "gas_limit") == (INVALID_CONFIGURATION_VALUES, ())


def test_boundary_values_are_accepted(open_chain: Chain) -> None:
    assert open_chain.statuses(
        set_tx(GOVERNOR, "tx_count_limit", "1"),
        set_tx(GOVERNOR, "consensus_timeout", "3"),
        set_tx(GOVERNOR, "leader_period", "1000"),
        set_tx(GOVERNOR, "tx_count_limit", "0010"),  # leading zeros: stored as 10
    ) == [0, 0, 0, 0]
    assert get(open_chain, "tx_count_limit") == (0, ("10",))


def test_change_takes_effect_from_the_next_block(open_chain: Chain) -> None:
    c = open_chain
    # Block 1 lowers the limit to 2 and still holds 3 transactions: it ran under 1000.
    result = c.run(
        set_tx(GOVERNOR, "tx_count_limit", "2"),
        make_tx(ALICE, "userAdd", "a", 1),
        make_tx(ALICE, "userAdd", "b", 1),
    )
    assert result.config.tx_count_limit == 1000
    assert [r.status for r in result.receipts] == [0, 0, 0]
    # Block 2 runs under the new limit.
    three = [make_tx(ALICE, "userAdd", f"u{i}", 1) for i in range(3)]
    with pytest.raises(ExecutionError, match="tx_count_limit"):
        c.execute(three)
    assert c.run(*three[:2]).config.tx_count_limit == 2


def test_call_context_sees_parent_config(open_chain: Chain) -> None:
    c = open_chain
    c.run(set_tx(GOVERNOR, "consensus_timeout", "9"))
    assert c.executor.system_config(c.store.state).consensus_timeout == 9
