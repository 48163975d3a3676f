"""Issue 9: what execution writes, the ledger can store, on every backend.

The longest state key is defined once (storage.ledger.MAX_STATE_KEY_LEN, from the KV key
limit and the state prefix); StateOverlay refuses a longer write at once, so a precompile
that tries one fails its own transaction (PRECOMPILED_ERROR, writes reverted) and the block
still commits everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from node.ledger.accounts import parse_address
from node.ledger.block import Receipt
from node.ledger.precompiles import PRECOMPILED_ERROR, CallContext, CallResult, Precompile
from node.ledger.precompiles.base import OK, MethodSpec
from node.ledger.precompiles.dag_transfer import TABLE_PREFIX, USER_ALREADY_EXIST
from node.ledger.tx import MAX_ARG_BYTES, decode_values
from storage import BACKENDS, MemoryKV, StateOverlay, StateWriteError
from storage.kv import MAX_KEY_LEN
from storage.ledger import MAX_STATE_KEY_LEN, P_STATE
from tests.runtime.chains import GENESIS, NodeChain, node_chain, signed

PROBE = parse_address("0x7e57")
LONGEST_NAME = "😀" * (MAX_ARG_BYTES // 4)  # 64 characters, 256 bytes


class Probe(Precompile):
    """A test-only precompile that writes what it is told to (never registered)."""

    address: ClassVar[bytes] = PROBE
    name: ClassVar[str] = "Probe"
    methods: ClassVar[dict[str, MethodSpec]] = {}

    def write(self, ctx: CallContext, size: int) -> CallResult:
        ctx.state.put(b"probe/first", b"written before the bad write")
        ctx.state.put(b"k" * size, b"v")
        return OK

    def delete(self, ctx: CallContext, size: int) -> CallResult:
        ctx.state.put(b"probe/first", b"written before the bad delete")
        ctx.state.delete(b"k" * size)
        return OK

    def bad_value(self, ctx: CallContext) -> CallResult:
        ctx.state.put(b"probe/first", b"x")
        ctx.state.put(b"probe/value", "not bytes")  # type: ignore[arg-type]
        return OK

    def out_of_memory(self, ctx: CallContext) -> CallResult:
        raise MemoryError


Probe.methods = {
    "write": MethodSpec("write", Probe.write, (int,), 1, False),
    "delete": MethodSpec("delete", Probe.delete, (int,), 1, False),
    "bad_value": MethodSpec("bad_value", Probe.bad_value, (), 0, False),
    "out_of_memory": MethodSpec("out_of_memory", Probe.out_of_memory, (), 0, False),
}


def with_probe(nc: NodeChain) -> NodeChain:
    nc.chain.executor.precompiles[PROBE] = Probe(GENESIS)
    return nc


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_longest_state_key_is_derived_from_the_kv_limit() -> None:
    assert MAX_STATE_KEY_LEN == MAX_KEY_LEN - len(P_STATE) == 510
    # the longest admissible user name leaves room to spare
    assert len(TABLE_PREFIX) + MAX_ARG_BYTES <= MAX_STATE_KEY_LEN


@pytest.mark.parametrize(
    ("key", "value"),
    [(b"k" * (MAX_STATE_KEY_LEN + 1), b"v"), (b"", b"v"), ("k", b"v"), (bytearray(b"k"), b"v"),
     (b"k", "v"), (b"k", None), (b"k", bytearray(b"v"))],
)  # fmt: skip
def test_overlay_refuses_what_the_ledger_cannot_store(key: Any, value: Any) -> None:
    overlay = StateOverlay(MemoryKV())
    with pytest.raises(StateWriteError):
        overlay.put(key, value)
    if isinstance(value, bytes):
        with pytest.raises(StateWriteError):
            overlay.delete(key)
    assert overlay.write_set() == [] and overlay.mark() == 0  # nothing journaled


def test_overlay_takes_the_longest_key() -> None:
    overlay = StateOverlay(MemoryKV())
    overlay.put(b"k" * MAX_STATE_KEY_LEN, b"v")
    overlay.delete(b"j" * MAX_STATE_KEY_LEN)
    assert overlay.get(b"k" * MAX_STATE_KEY_LEN) == b"v"


def test_longest_user_name_commits_and_reads_back(backend: str, tmp_path: Path) -> None:
    with node_chain(backend, tmp_path) as nc:
        executed = nc.run([signed("userAdd", LONGEST_NAME, 77)])[1]
        assert [r.status for r in executed.result.receipts] == [0]
        status, output = nc.chain.call(parse_address("0x5002"), "userBalance", [LONGEST_NAME])
        assert (status, decode_values(output)) == (0, (77,))
        key = TABLE_PREFIX + LONGEST_NAME.encode()
        assert len(P_STATE + key) == 272 and nc.store.state.get(key) is not None
        again = nc.run([signed("userAdd", LONGEST_NAME, 1)])[1]
        assert again.result.receipts[0].status == USER_ALREADY_EXIST
    if backend != "memory":
        with node_chain(backend, tmp_path) as nc:
            status, output = nc.chain.call(parse_address("0x5002"), "userBalance", [LONGEST_NAME])
            assert (status, decode_values(output)) == (0, (77,))
            assert nc.chain.head.number == 2


def _receipts(nc: NodeChain, block_number: int) -> list[Receipt]:
    block = nc.chain.block(block_number)
    assert block is not None
    out = []
    for stx in block.decode_transactions():
        raw = nc.store.receipt(stx.hash)
        assert raw is not None
        out.append(Receipt.decode(raw))
    return out


def test_a_state_key_over_the_limit_is_a_failed_receipt(backend: str, tmp_path: Path) -> None:
    """One byte over the storage limit: the tx fails (21), its earlier write is reverted,
    the other txs of the block keep theirs, and the block commits on this backend."""
    with node_chain(backend, tmp_path) as nc:
        with_probe(nc)
        txs = [
            signed("userAdd", "before", 5),
            signed("write", MAX_STATE_KEY_LEN + 1, to=PROBE),
            signed("delete", MAX_STATE_KEY_LEN + 1, to=PROBE),
            signed("bad_value", to=PROBE),
            signed("write", MAX_STATE_KEY_LEN, to=PROBE),  # the longest key is fine
            signed("userAdd", "after", 6),
        ]
        block, executed = nc.run(txs)
        statuses = [r.status for r in executed.result.receipts]
        assert statuses == [0, PRECOMPILED_ERROR, PRECOMPILED_ERROR, PRECOMPILED_ERROR, 0, 0]
        assert [r.status for r in _receipts(nc, block.number)] == statuses
        state = nc.store.state
        assert state.get(b"k" * MAX_STATE_KEY_LEN) == b"v"
        assert state.get(b"probe/first") == b"written before the bad write"  # from tx 4 only
        assert state.get(TABLE_PREFIX + b"before") is not None
        assert state.get(TABLE_PREFIX + b"after") is not None
        written = {k for k, _ in executed.result.write_set}
        assert b"probe/value" not in written and all(len(k) <= MAX_STATE_KEY_LEN for k in written)


def test_memory_error_in_a_precompile_is_not_a_receipt() -> None:
    """This node's problem, not the transaction's: it propagates (no divergent receipt)."""
    nc = with_probe(NodeChain(MemoryKV()))
    with pytest.raises(MemoryError):
        nc.run([signed("out_of_memory", to=PROBE)])
    assert nc.chain.head.number == 0


def test_a_precompile_bug_in_call_is_a_status_not_an_exception() -> None:
    nc = with_probe(NodeChain(MemoryKV()))
    assert nc.chain.call(PROBE, "write", [MAX_STATE_KEY_LEN + 1]) == (PRECOMPILED_ERROR, b"")
    assert nc.store.state.get(b"probe/first") is None  # call writes nothing, ever


def test_probe_is_not_registered() -> None:
    assert PROBE not in NodeChain(MemoryKV()).chain.executor.precompiles
