"""A deterministic stand-in for the node's executor, and the workload's payload format.

Payload: ``pack([proposer, variant, [tx ids]])``. A proposal is valid when its payload
decodes, is not empty, and none of its transactions is repeated or already committed on
this node's chain (the integrity rule a real txpool/executor enforces with nonces).
``state_root = hash32(pack([parent_state_root, payload]))`` and
``block_hash = hash32(pack(["block", height, parent_hash, proposal digest, state_root]))``.

The sealer list is chain state too: a block that changes it (:func:`next_sealers`, from
the scenario's membership changes and the block's proposer) mixes the new list into its
state root, so two nodes that disagreed on it could not agree on the block.
"""

from __future__ import annotations

from consensus.codec import DecodeError, expect_int, expect_list, expect_seq, pack, unpack
from consensus.crypto import hash32
from consensus.messages import Proposal
from consensus.sim.scenario import LEADER, MembershipChange

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


def payload_proposer(payload: bytes) -> int | None:
    """The node that made a payload (its index in the run, not a sealer index)."""
    try:
        return expect_int(expect_list(unpack(payload), 3, "payload")[0], "proposer")
    except DecodeError:
        return None


def next_sealers(
    sealers: tuple[int, ...], changes: list[MembershipChange], payload: bytes
) -> tuple[int, ...]:
    """The sealer list after a block whose changes are ``changes`` (nodes by run index)."""
    out = list(sealers)
    for c in changes:
        node = payload_proposer(payload) if c.node == LEADER else c.node
        if c.op == "add" and node is not None and node not in out:
            out.append(node)
        elif c.op == "remove" and node in out and len(out) > 1:
            out.remove(node)
    return tuple(out)


def execute(
    proposal: Proposal,
    parent_state_root: bytes,
    committed: set[int],
    total_txs: int,
    new_sealers: tuple[int, ...] | None = None,
) -> tuple[bool, bytes, bytes]:
    """(ok, block_hash, state_root) of ``proposal`` on top of the given parent state;
    ``new_sealers`` when the block changes the sealer list."""
    txs = payload_txs(proposal.payload)
    if (
        not txs
        or len(set(txs)) != len(txs)
        or any(t in committed or not 0 <= t < total_txs for t in txs)
    ):
        return False, bytes(32), bytes(32)
    state: list[object] = [parent_state_root, proposal.payload]
    if new_sealers is not None:
        state.append(list(new_sealers))
    state_root = hash32(pack(state))
    block_hash = hash32(
        pack(["block", proposal.height, proposal.parent_hash, proposal.digest, state_root])
    )
    return True, block_hash, state_root
