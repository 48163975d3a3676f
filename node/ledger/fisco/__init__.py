"""FISCO BCOS 2.x formats beside ledgerlab's own: RLP transactions, Keccak-256, ABI calldata.

A FISCO-format transaction is told from a native one by its first byte (an RLP list
header ``0xc0..0xff``; native transactions are msgpack arrays ``0x9_``), decoded strictly
by :func:`decode_fisco_transaction` into a :class:`FiscoSignedTransaction` -- a
:class:`node.ledger.tx.SignedTransaction` whose inner fields (nonce, block limit, chain and
group ids, method, args) are those of the native format, so the txpool, blocks, execution,
storage and sync treat both alike. docs/fisco-format.md is the reference.
"""

from node.ledger.fisco.abi import (
    AbiError,
    FiscoMethod,
    decode_calldata,
    decode_output,
    encode_calldata,
)
from node.ledger.fisco.keccak import fisco_address, keccak256
from node.ledger.fisco.tx import (
    FiscoSignedTransaction,
    FiscoTxError,
    decode_fisco_transaction,
    is_fisco_encoding,
    sign_fisco_tx,
)

__all__ = [
    "AbiError",
    "FiscoMethod",
    "FiscoSignedTransaction",
    "FiscoTxError",
    "decode_calldata",
    "decode_fisco_transaction",
    "decode_output",
    "encode_calldata",
    "fisco_address",
    "is_fisco_encoding",
    "keccak256",
    "sign_fisco_tx",
]
