"""``Receipt.executed`` and ``Receipt.pack_executed`` (the executor's fast path) give
exactly what the constructor and ``encode`` give, for receipts with and without events."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger.block import LogEvent, Receipt

hashes = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20)
events = st.lists(
    st.builds(
        LogEvent,
        addresses,
        st.lists(hashes, max_size=4).map(tuple),
        st.binary(max_size=64),
    ),
    max_size=3,
).map(tuple)


@settings(max_examples=100, deadline=None)
@given(
    hashes,
    st.integers(0, 2**64 - 1),
    st.integers(0, 9999),
    st.integers(-(2**31), 2**31 - 1),
    st.binary(max_size=64),
    events,
    addresses,
    addresses,
)
def test_executed_matches_the_constructor(
    tx_hash: bytes,
    number: int,
    index: int,
    status: int,
    output: bytes,
    logs: tuple[LogEvent, ...],
    sender: bytes,
    to: bytes,
) -> None:
    fields = (tx_hash, number, index, status, output, logs, sender, to)
    receipt, raw = Receipt.executed(*fields)
    reference = Receipt(*fields)
    assert receipt == reference
    assert raw == reference.encode()
    assert Receipt.pack_executed(*fields) == raw
    assert Receipt.decode(raw) == reference
