"""Issue 9's rule as a property: what one honest node admits, it can execute and store.

Any transaction ``TxPool.admit`` accepts goes through seal, execute and commit (the
runtime's ``_propose`` -> ``_run_proposal`` -> ``_commit``, here without the event loop)
without an exception, on every KV backend, and ends in a stored receipt with a status.
The transactions are adversarial: strings of 1-4-byte UTF-8 characters at and around
every byte limit, every method of DagTransfer (0x5002) and SystemConfig (0x1000), unknown
methods and addresses, up to 17 arguments of any type (uint256 extremes included), names
and nonces at their limits, repeated nonces, block limits in and out of the window, and
senders with and without governor rights. They are built field by field on the wire,
not through ``Transaction``, so nothing but admission filters them.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from consensus.codec import pack
from consensus.crypto import KeyPair, hash32
from node.ledger.accounts import parse_address
from node.ledger.block import Receipt
from node.ledger.tx import MAX_ARG_BYTES, MAX_ARGS, MAX_NAME_BYTES, UINT256_MAX
from node.runtime.txpool import TxRejected
from storage import BACKENDS, MemoryKV
from tests.runtime.chains import CLIENT, GENESIS, GOVERNOR, NodeChain, node_chain

WIDTHS = {1: "az09_/", 2: "éßж", 3: "€中\u2028", 4: "😀\U0001f680\U00010000"}
BOUNDARIES = sorted(
    {0, 1, 2, 3, 4, 5, 15, 16, 17}
    | {n + d for n in (MAX_NAME_BYTES, MAX_ARG_BYTES) for d in (-4, -3, -2, -1, 0, 1, 2, 3, 4)}
)
DAG = parse_address("0x5002")
SYS = parse_address("0x1000")
METHODS = {
    DAG: ["userAdd", "userSave", "userDraw", "userBalance", "userTransfer"],
    SYS: ["setValueByKey", "getValueByKey"],
}
CONFIG_KEYS = ["tx_count_limit", "consensus_timeout", "leader_period", "s_config", "€" * 3]
STRANGER = KeyPair.generate(random.Random(404))
PERMISSIONED = replace(GENESIS, asset_admins=(CLIENT.address,))


def _cycle(pattern: list[str], count: int) -> str:
    """``count`` characters repeating ``pattern`` (cheap for hypothesis to draw: long
    strings from a few choices, not hundreds)."""
    return "".join(pattern[i % len(pattern)] for i in range(count))


@st.composite
def sized_text(draw: st.DrawFn, sizes: list[int] = BOUNDARIES) -> str:
    """A str of a chosen UTF-8 byte size (at and around the limits) of one width."""
    size = draw(st.sampled_from(sizes))
    width = draw(st.sampled_from([1, 2, 3, 4]))
    pattern = draw(st.lists(st.sampled_from(WIDTHS[width]), min_size=1, max_size=4))
    return _cycle(pattern, size // width) + "a" * (size % width)


@st.composite
def counted_text(draw: st.DrawFn) -> str:
    """A str of a chosen *character* count at the limits (what issue 9's client sent:
    256 characters of 3 bytes), so a limit counted in characters would show."""
    count = draw(st.sampled_from([16, 17, 63, 64, 65, 85, 86, 127, 128, 255, 256, 257]))
    width = draw(st.sampled_from([2, 3, 4]))
    return _cycle(draw(st.lists(st.sampled_from(WIDTHS[width]), min_size=1, max_size=4)), count)


names = st.one_of(sized_text(), counted_text(), st.text(max_size=70))
uint256 = st.one_of(
    st.sampled_from([0, 1, 2, UINT256_MAX, UINT256_MAX - 1, 2**255, 2**64, 2**64 - 1]),
    st.integers(0, UINT256_MAX),
)
wire_arg = st.one_of(
    names,
    st.sampled_from([*CONFIG_KEYS, "0", "1", "3", "10000", "10001", "99999999999999999999999"]),
    uint256.map(lambda n: n.to_bytes(32, "big")),
    st.binary(max_size=40),  # a uint256 must be exactly 32 bytes
    st.integers(-(2**63), 2**64 - 1),  # a msgpack int is no argument at all
)
wire_args = st.one_of(
    st.lists(wire_arg, max_size=4),
    st.lists(wire_arg, min_size=MAX_ARGS - 1, max_size=MAX_ARGS + 1),
)


SIGNATURES: dict[str, list[type]] = {
    "userAdd": [str, int, str],
    "userSave": [str, int],
    "userDraw": [str, int],
    "userBalance": [str],
    "userTransfer": [str, str, int],
    "setValueByKey": [str, str],
    "getValueByKey": [str],
}
user_names = st.one_of(st.sampled_from(["alice", "bob", "carol", ""]), names)
config_values = st.sampled_from(["0", "1", "3", "999", "10000", "10001", "1e3", "", "99" * 12])


@st.composite
def typed_args(draw: st.DrawFn, method: str) -> list[Any]:
    """Arguments of the method's own types (so execution gets past the type check)."""
    out: list[Any] = []
    for index, kind in enumerate(SIGNATURES.get(method, [])):
        if method == "userAdd" and index == 2 and draw(st.booleans()):
            break  # the owner is optional
        if kind is int:
            out.append(draw(uint256).to_bytes(32, "big"))
        elif method == "setValueByKey" and index == 1:
            out.append(draw(config_values))
        elif method.endswith("ValueByKey"):
            out.append(draw(st.sampled_from(CONFIG_KEYS)))
        elif method == "userAdd" and index == 2:
            out.append(draw(st.sampled_from(["0x" + "ab" * 20, "0x5002", "not hex", ""])))
        else:
            out.append(draw(user_names))
    return out


def valid_name(size_limit: int) -> st.SearchStrategy[str]:
    """Names that fit (at and under ``size_limit`` bytes), so a tx is mostly admissible."""
    return sized_text([n for n in BOUNDARIES if 0 < n <= size_limit])


MUTATIONS = ["none"] * 5 + ["chain", "limit", "nonce", "method", "to", "args", "wire args"]


@st.composite
def raw_tx(draw: st.DrawFn, head: int) -> bytes:
    """A signed transaction on the wire: well-formed but for at most one mutated field."""
    mutation = draw(st.sampled_from(MUTATIONS))
    to = draw(st.sampled_from([DAG, DAG, SYS]))
    if mutation == "to":
        to = draw(st.binary(min_size=20, max_size=20))
    method = draw(st.sampled_from(METHODS.get(to, METHODS[DAG])))
    if mutation == "method":
        method = draw(st.one_of(st.sampled_from(["nope", "", "userAdd "]), names))
    args = draw(typed_args(method))
    if mutation == "args":  # keep the count, break types and sizes
        args = [draw(wire_arg) for _ in args] or [draw(wire_arg)]
    elif mutation == "wire args":
        args = draw(wire_args)
    nonce = draw(st.one_of(st.uuids().map(str), valid_name(MAX_NAME_BYTES)))
    if mutation == "nonce":
        nonce = draw(st.one_of(st.sampled_from(["n0", "n1", ""]), names))
    block_limit = head + 500
    if mutation == "limit":
        block_limit = head + draw(st.sampled_from([0, 1, 2, 999, 1000, 1001, 10**6]))
    chain_id = GENESIS.chain_id if mutation != "chain" else draw(st.sampled_from(["other", ""]))
    body = [0, chain_id, GENESIS.group_id, nonce, block_limit, to, method, args]
    key = draw(st.sampled_from([CLIENT, GOVERNOR, STRANGER]))
    return pack([*body, key.sign(hash32(pack(body)))])


def commit_everything(nc: NodeChain) -> list[Receipt]:
    """Seal and commit until the pool is empty, as the leader would; every block's limit
    is the system config in force (a setValueByKey may have lowered it)."""
    receipts: list[Receipt] = []
    for _ in range(64):
        if not len(nc.pool):
            return receipts
        limit = nc.chain.executor.system_config(nc.store.state).tx_count_limit
        ran = nc.seal_and_run(limit)
        assert ran is not None, "admitted transactions that no block can include"
        receipts += ran[1].result.receipts
    raise AssertionError("the pool never emptied")


def admit_and_commit(nc: NodeChain, raws: list[bytes]) -> None:
    """The property, for one batch of client transactions."""
    head = nc.chain.head.number
    admitted = []
    for raw in raws:
        with contextlib.suppress(TxRejected):
            admitted.append(nc.pool.admit(raw, head))
    event(f"admitted {min(len(admitted), 3)}+ of {min(len(raws), 3)}+")
    txs_before = nc.store.total_tx_count()
    failed_before = nc.store.total_failed_tx_count()
    receipts = commit_everything(nc)
    committed = {r.tx_hash for r in receipts}
    # a tx whose block_limit came before a block had room for it expires (FISCO's rule:
    # e.g. after a setValueByKey lowered tx_count_limit to 1); every other one commits
    head_now = nc.chain.head.number
    expired = {v.hash for v in admitted if v.tx.tx.block_limit <= head_now} - committed
    assert sorted(committed) == sorted(v.hash for v in admitted if v.hash not in expired)
    assert len(receipts) == len(committed)
    admitted = [v for v in admitted if v.hash not in expired]
    for vtx in admitted:
        raw_receipt = nc.store.receipt(vtx.hash)
        assert raw_receipt is not None
        receipt = Receipt.decode(raw_receipt)
        assert type(receipt.status) is int and receipt.sender == vtx.sender
        event(f"status {receipt.status}")
    assert nc.store.total_tx_count() == txs_before + len(admitted)
    failed = sum(1 for r in receipts if r.status)
    assert nc.store.total_failed_tx_count() == failed_before + failed


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_admitted_transaction_commits_with_a_receipt(backend: str, data: Any) -> None:
    """A fresh chain per example (open or permissioned DagTransfer), 1-3 rounds of client
    batches (nonces carry over between rounds)."""
    genesis = data.draw(st.sampled_from([GENESIS, PERMISSIONED]), label="genesis")
    with (
        tempfile.TemporaryDirectory() as tmp,
        node_chain(backend, Path(tmp) / "db", genesis) as nc,
    ):
        for _ in range(data.draw(st.integers(1, 3), label="rounds")):
            head = nc.chain.head.number
            admit_and_commit(nc, data.draw(st.lists(raw_tx(head), min_size=1, max_size=10)))


def test_the_issue_9_transaction_never_reaches_a_block() -> None:
    nc = NodeChain(MemoryKV())
    body = [0, GENESIS.chain_id, GENESIS.group_id, "n", 10, DAG, "userAdd", ["€" * 256, bytes(32)]]
    raw = pack([*body, CLIENT.sign(hash32(pack(body)))])
    with pytest.raises(TxRejected, match="768 UTF-8 bytes"):
        nc.pool.admit(raw, 0)
