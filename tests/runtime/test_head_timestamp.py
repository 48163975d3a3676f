"""``Chain.head_timestamp`` after a commit comes from the committed block itself (no
decode of the head block per proposal) and equals what the stored block says."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.ledger.chain import Chain

from .chains import GENESIS, node_chain, signed


def test_the_head_timestamp_is_the_committed_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with node_chain("memory", tmp_path) as node:
        for i in range(3):
            block, _ = node.run([signed("userAdd", f"u{i}", 10)])
            chain = node.chain

            def no_decode(number: int) -> None:
                raise AssertionError("head_timestamp decoded the head block")

            monkeypatch.setattr(chain, "block", no_decode)
            assert chain.head_timestamp() == block.header.timestamp
            monkeypatch.undo()
            stored = chain.block(block.number)
            assert stored is not None and stored.header.timestamp == block.header.timestamp
        # a chain opened on the same store (no commit seen) reads it from the block
        assert Chain(node.store, GENESIS).head_timestamp() == block.header.timestamp
