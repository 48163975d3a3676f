"""A deterministic stand-in for the node's executor, and the workload's payload format.

Payload: ``pack([proposer, variant, [tx ids]])``. A proposal is valid when its payload
decodes, is not empty, and none of its transactions is repeated or already committed on
this node's chain (the integrity rule a real txpool/executor enforces with nonces).
``state_root = hash32(pack([parent_state_root, payload]))`` and
``block_hash = hash32(pack(["block", height, parent_hash, proposal digest, state_root]))``.
"""

from __future__ import annotations

from consensus.codec import DecodeError, expect_int, expect_list, expect_seq, pack, unpack
from consensus.crypto import hash32
from consensus.messages import Proposal

GENESIS_HASH = hash32(b"ledgerlab-sim-genesis")
GENESIS_STATE_ROOT = hash32(b"ledgerlab-sim-genesis-state")


def make_payload(proposer: int, txs: list[int], variant: int = 0) -> bytes:
    return pack([proposer, variant, txs])


def payload_txs(payload: bytes) -> list[int] | None:
    """The transaction ids of a payload, or None when it is not a valid payload."""
    try:
        fields = expect_list(unpack(payload), 3, "payload")
        expect_int(fields[0], "proposer")
        expect_int(fields[1], "variant")
        return [expect_int(t, "tx") for t in expect_seq(fields[2], "txs", max_len=1 << 20)]
    except DecodeError:
        return None


def execute(
    proposal: Proposal, parent_state_root: bytes, committed: set[int], total_txs: int
) -> tuple[bool, bytes, bytes]:
    """(ok, block_hash, state_root) of ``proposal`` on top of the given parent state."""
    txs = payload_txs(proposal.payload)
    if (
        not txs
        or len(set(txs)) != len(txs)
        or any(t in committed or not 0 <= t < total_txs for t in txs)
    ):
        return False, bytes(32), bytes(32)
    state_root = hash32(pack([parent_state_root, proposal.payload]))
    block_hash = hash32(
        pack(["block", proposal.height, proposal.parent_hash, proposal.digest, state_root])
    )
    return True, block_hash, state_root
