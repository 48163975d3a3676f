"""Ledger-core objects -> the plain data :class:`node.rpc.backend.NodeBackend` returns.

Conveniences for the runtime, so its backend methods stay one-liners; the RPC layer
itself never sees these classes.
"""

from __future__ import annotations

from collections.abc import Sequence

from node.ledger.block import Block, Receipt
from node.ledger.fisco import FiscoSignedTransaction
from node.ledger.tx import SignedTransaction
from node.rpc.backend import BlockData, ReceiptData, TxData
from node.rpc.calldata import encode_call


def tx_data(
    stx: SignedTransaction,
    sender: bytes,
    *,
    block_number: int | None = None,
    block_hash: bytes | None = None,
    index: int | None = None,
) -> TxData:
    """A transaction; leave the location out for one still pending in the pool.

    A FISCO-format one shows its raw ABI calldata as ``input`` and its randomid as the
    ``0x`` hex nonce, as FISCO's RPC does (docs/fisco-format.md)."""
    tx = stx.tx
    fisco = type(stx) is FiscoSignedTransaction
    return {
        "hash": stx.hash,
        "sender": sender,
        "to": tx.to,
        "method": tx.method,
        "args": list(tx.args),
        "input": _input(stx),
        "nonce": "0x" + tx.nonce if fisco else tx.nonce,
        "block_limit": tx.block_limit,
        "chain_id": tx.chain_id,
        "group_id": tx.group_id,
        "signature": stx.signature,
        "block_number": block_number,
        "block_hash": block_hash,
        "index": index,
    }


def receipt_data(receipt: Receipt, *, block_hash: bytes, tx: SignedTransaction) -> ReceiptData:
    """A receipt with the hash of its block and the transaction it belongs to."""
    return {
        "tx_hash": receipt.tx_hash,
        "block_number": receipt.block_number,
        "block_hash": block_hash,
        "index": receipt.index,
        "status": receipt.status,
        "output": receipt.output,
        "events": [
            {"address": e.address, "topics": list(e.topics), "data": e.data} for e in receipt.events
        ],
        "sender": receipt.sender,
        "to": receipt.to,
        "input": _input(tx),
    }


def _input(stx: SignedTransaction) -> bytes:
    """The call's bytes: FISCO's raw ABI calldata, or ledgerlab's msgpack call data."""
    if type(stx) is FiscoSignedTransaction:
        return stx.input
    return encode_call(stx.tx.method, stx.tx.args)


def block_data(
    block: Block, *, full_txs: bool, senders: Sequence[bytes] | None = None
) -> BlockData:
    """A committed block. With ``full_txs``, pass ``senders`` (e.g. from the block's
    receipts) to avoid recovering every signature again (~30 us each)."""
    h = block.header
    out: BlockData = {
        "number": h.number,
        "hash": h.hash,
        "parent_hash": h.parent_hash,
        "timestamp": h.timestamp,
        "tx_root": h.tx_root,
        "receipt_root": h.receipt_root,
        "state_root": h.state_root,
        "sealer": h.sealer,
        "sealer_list": list(h.sealer_list),
        "extra_data": h.extra_data,
        "signatures": list(block.seal.signatures),
        "tx_hashes": block.tx_hashes(),
    }
    if full_txs:
        stxs = block.decode_transactions()
        if senders is None or len(senders) != len(stxs):
            senders = [s.recover_sender() for s in stxs]
        out["transactions"] = [
            tx_data(s, sender, block_number=h.number, block_hash=h.hash, index=i)
            for i, (s, sender) in enumerate(zip(stxs, senders, strict=True))
        ]
    return out
