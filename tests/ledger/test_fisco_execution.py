"""FISCO-format transactions executed beside native ones: FISCO receipts, same state.

Transactions and calldata are built by tests/ledger/fisco_support.py (independent
libraries); outputs are read with eth-abi.
"""

from __future__ import annotations

import eth_abi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.ledger.fisco.abi import AbiError, decode_args, encode_values
from node.ledger.genesis import GenesisConfig
from node.ledger.precompiles import CALL_ADDRESS_ERROR
from node.ledger.precompiles.dag_transfer import (
    INSUFFICIENT_BALANCE,
    INVALID_AMOUNT,
    USER_ALREADY_EXIST,
)
from node.ledger.tx import SignedTransaction, VerifiedTx
from tests.ledger import fisco_support as fs
from tests.ledger.support import ADMIN, ALICE, GOVERNOR, SEALERS, Chain, make_tx

SECRET = bytes([7]) * 32
_randomid = iter(range(1, 10**6))


def fisco(signature: str, *args: object, to: bytes = fs.DAG, secret: bytes = SECRET) -> VerifiedTx:
    raw = fs.fisco_tx(
        secret,
        data=fs.calldata(signature, *args),
        block_limit=900,
        to=to,
        randomid=next(_randomid),
    )
    return SignedTransaction.decode(raw).verified()


def code(output: bytes) -> int:
    (value,) = eth_abi.decode(["int256"], output)
    return int(value)


@pytest.fixture
def chain() -> Chain:
    return Chain(
        GenesisConfig(chain_id="1", group_id="1", sealers=SEALERS, governors=(GOVERNOR.address,))
    )


def native(method: str, *args: object) -> VerifiedTx:
    return make_tx(ALICE, method, *args, chain_id="1", group_id="1")  # type: ignore[arg-type]


def test_mixed_block_fisco_receipts_and_native_receipts(chain: Chain) -> None:
    result = chain.run(
        fisco("userAdd(string,uint256)", "alice", 100),
        native("userAdd", "bob", 5),
        fisco("userAdd(string,uint256)", "alice", 1),  # exists: code in the output
        fisco("userTransfer(string,string,uint256)", "alice", "bob", 30),
        native("userTransfer", "bob", "alice", 50),  # native failure: the status
        fisco("userTransfer(string,string,uint256)", "alice", "carol", 500),
        fisco("userDraw(string,uint256)", "alice", 0),
        fisco("userSave(string,uint256)", "dave", 9),
        fisco("userBalance(string)", "alice"),
    )
    r = result.receipts
    assert [x.status for x in r] == [0, 0, 0, 0, INSUFFICIENT_BALANCE, 0, 0, 0, 0]
    assert [code(r[i].output) for i in (0, 2, 3, 5, 6, 7)] == [
        0,
        USER_ALREADY_EXIST,
        0,
        INSUFFICIENT_BALANCE,
        INVALID_AMOUNT,
        0,
    ]
    assert r[1].output == b"" and r[4].output == b""  # native receipts unchanged
    assert eth_abi.decode(["int256", "uint256"], r[8].output) == (0, 70)
    assert r[0].sender == fs.address_of(SECRET) and r[1].sender == ALICE.address
    assert (chain.balance("alice"), chain.balance("bob"), chain.balance("carol")) == (70, 35, None)
    assert chain.balance("dave") == 9
    assert result.failed_txs == 1  # FISCO counts a business failure as a successful tx


def test_block_and_receipts_roundtrip_through_storage(chain: Chain) -> None:
    txs = [fisco("userAdd(string,uint256)", "x", 1), native("userAdd", "y", 2)]
    chain.run(*txs)
    block = chain.blocks[-1]
    again = block.decode_transactions()
    assert [type(t).__name__ for t in again] == ["FiscoSignedTransaction", "SignedTransaction"]
    assert [t.hash for t in again] == [v.tx.hash for v in txs] == block.tx_hashes()
    assert block.tx_root_matches()  # what sync checks before importing
    assert again[0].recover_sender() == fs.address_of(SECRET)


def test_userbalance_of_a_missing_user_and_unknown_calls(chain: Chain) -> None:
    r = chain.run(
        fisco("userBalance(string)", "nobody"),
        fisco("userBalance(string)", "alice", to=bytes(19) + b"\x01"),
        fisco("notAMethod(string)", "alice"),
    ).receipts
    assert eth_abi.decode(["int256", "uint256"], r[0].output) == (-51402, 0)
    assert (r[1].status, r[1].output) == (CALL_ADDRESS_ERROR, b"")
    assert (r[2].status, code(r[2].output)) == (0, -50100)


def test_data_shorter_than_a_selector_is_an_unknown_call(chain: Chain) -> None:
    # docs/fisco-format.md: admitted, output -50100 with status 0, method 0x + the bytes
    txs = [
        SignedTransaction.decode(
            fs.fisco_tx(SECRET, data=data, block_limit=900, to=fs.DAG, randomid=next(_randomid))
        ).verified()
        for data in (b"", b"\x01\x02\x03")
    ]
    r = chain.run(*txs).receipts
    assert [(x.status, code(x.output)) for x in r] == [(0, -50100), (0, -50100)]
    assert [v.tx.tx.method for v in txs] == ["0x", "0x010203"]


def test_system_config_and_consensus_outputs(chain: Chain) -> None:
    r = chain.run(
        fisco(
            "setValueByKey(string,string)", "tx_count_limit", "500", to=fs.SYS, secret=b"\x05" * 32
        ),
        fisco(
            "setValueByKey(string,string)", "tx_count_limit", "0", to=fs.SYS, secret=b"\x05" * 32
        ),
        fisco("addObserver(string)", "zz", to=fs.CONSENSUS, secret=b"\x05" * 32),
    ).receipts
    # The FISCO address of this key is not a governor (only GOVERNOR's native one is)
    assert [(x.status, code(x.output)) for x in r] == [(0, -50000)] * 3


def test_governor_listed_by_its_fisco_address() -> None:
    gov = bytes([9]) * 32
    chain = Chain(
        GenesisConfig(chain_id="1", group_id="1", sealers=SEALERS, governors=(fs.address_of(gov),))
    )
    r = chain.run(
        fisco("setValueByKey(string,string)", "tx_count_limit", "500", to=fs.SYS, secret=gov),
        fisco("setValueByKey(string,string)", "tx_count_limit", "0", to=fs.SYS, secret=gov),
        fisco("remove(string)", SEALERS[0].hex(), to=fs.CONSENSUS, secret=gov),
    ).receipts
    assert [code(x.output) for x in r] == [1, -51300, 1]  # FISCO 2.x: rows written
    assert chain.executor.system_config(chain.store.state).tx_count_limit == 500


def test_permissioned_owner_is_the_fisco_address() -> None:
    admin_secret = bytes([11]) * 32
    chain = Chain(
        GenesisConfig(
            chain_id="1",
            group_id="1",
            sealers=SEALERS,
            asset_admins=(fs.address_of(admin_secret), ADMIN.address),
        )
    )
    r = chain.run(
        fisco("userAdd(string,uint256)", "a", 10, secret=admin_secret),
        fisco("userTransfer(string,string,uint256)", "a", "b", 1, secret=SECRET),  # not owner
        fisco("userTransfer(string,string,uint256)", "a", "b", 2, secret=admin_secret),
        make_tx(ADMIN, "userTransfer", "a", "b", 3, chain_id="1", group_id="1"),  # not owner
    ).receipts
    assert [code(x.output) for x in r[:3]] == [0, -50000, 0]
    assert r[3].status == -50000
    assert chain.balance("a") == 8


strings = st.text(max_size=40).filter(lambda s: len(s.encode()) <= 256)
uints = st.integers(min_value=0, max_value=2**256 - 1)


@given(st.lists(st.one_of(strings, uints), max_size=4))
def test_abi_codec_agrees_with_eth_abi(values: list[object]) -> None:
    kinds = ["string" if type(v) is str else "uint256" for v in values]
    data = eth_abi.encode(kinds, values)
    assert encode_values(kinds, values) == data
    assert decode_args(kinds, data) == tuple(values)


@given(st.lists(strings, max_size=5), st.integers(min_value=-(2**255), max_value=2**255 - 1))
def test_abi_outputs_agree_with_eth_abi(ids: list[str], code_value: int) -> None:
    assert encode_values(["uint256", "string[]"], [len(ids), ids]) == eth_abi.encode(
        ["uint256", "string[]"], [len(ids), ids]
    )
    assert encode_values(["int256"], [code_value]) == eth_abi.encode(["int256"], [code_value])


@given(st.binary(max_size=200))
def test_abi_decoder_refuses_or_roundtrips_anything(data: bytes) -> None:
    try:
        values = decode_args(["string", "uint256"], data)
    except AbiError:
        return
    assert eth_abi.encode(["string", "uint256"], list(values)) == data


@given(st.lists(st.sampled_from(["string", "uint256"]), max_size=3), st.binary(max_size=300))
def test_abi_strictness_equals_reencode_and_compare(kinds: list[str], data: bytes) -> None:
    try:
        values = decode_args(kinds, data)
    except AbiError:
        try:
            decoded = eth_abi.decode(kinds, data)
        except Exception:  # eth-abi refuses it too
            return
        # eth-abi is lenient (offsets anywhere, dirty padding): a refusal of ours must be
        # an input whose canonical re-encoding differs, or a limit of ours
        strings = [v for v in decoded if isinstance(v, str)]
        assert eth_abi.encode(kinds, list(decoded)) != data or any(
            len(v.encode()) > 256 for v in strings
        )
        return
    assert encode_values(kinds, list(values)) == data


def test_selectors_are_fisco_bcos_2x_ones() -> None:
    from node.ledger.fisco.abi import METHODS

    documented = {  # FISCO BCOS 2.x (its precompiles' Solidity interfaces)
        "userAdd(string,uint256)": "3fe8e3f5",
        "userSave(string,uint256)": "e555f3d9",
        "userDraw(string,uint256)": "ff2b0127",
        "userBalance(string)": "1536aedd",
        "userTransfer(string,string,uint256)": "0b37617b",
        "setValueByKey(string,string)": "bd291aef",
        "addSealer(string)": "89152d1f",
        "addObserver(string)": "2800efc0",
        "remove(string)": "80599e4b",
    }
    ours = {m.signature: m.selector.hex() for m in METHODS.values()}
    assert {k: ours[k] for k in documented} == documented
    assert all(fs.selector(sig).hex() == sel for sig, sel in ours.items())  # eth-hash agrees


def test_consensus_getters_answer_count_and_ids(chain: Chain) -> None:
    from node.ledger.fisco.abi import METHODS

    for signature, args in (("getSealerList()", ()), ("getSealerList(uint256)", (2,))):
        spec = METHODS[(fs.CONSENSUS, fs.selector(signature))]
        status, out = chain.executor.call(chain.store.state, fs.CONSENSUS, spec.method, args)
        status, out = spec.abi_result(status, out)
        count, ids = eth_abi.decode(["uint256", "string[]"], out)
        assert (status, count) == (0, 4)
        assert list(ids) == [k.hex() for k in SEALERS][args[0] if args else 0 :]
    r = chain.run(fisco("getObserverList()", to=fs.CONSENSUS)).receipts[0]
    assert (r.status, eth_abi.decode(["uint256", "string[]"], r.output)) == (0, (0, ()))
