"""FISCO BCOS 2.x transactions (standard crypto suite): strict decoding and signing.

Theory of operation. The wire form is one RLP list of 13 byte strings ``[randomid,
gasPrice, gasLimit, blockLimit, to, value, data, fiscoChainId, groupId, extraData, v, r,
s]``. The signing hash is Keccak-256 of the RLP of the first 10 (no EIP-155 step), the
transaction hash Keccak-256 of all 13, the sender the last 20 bytes of Keccak-256 of the
64-byte public key. :func:`decode_fisco_transaction` accepts only the canonical RLP,
minimal integers, sizes within the limits below, ``v`` in {27, 28}, ``0 < r < n`` and a
low ``s``, and refuses anything else with :class:`FiscoTxError` (a
:class:`consensus.codec.DecodeError`, so every decoder of ledgerlab treats it as
malformed). Known precompile calldata is ABI-decoded here too (node.ledger.fisco.abi).

The result is a :class:`FiscoSignedTransaction`: a
:class:`node.ledger.tx.SignedTransaction` whose inner :class:`node.ledger.tx.Transaction`
carries the native view (chain id and group id as decimal strings, the nonce as the
randomid's hex, the method and its arguments), so the txpool's rules, gossip, blocks,
execution, storage and sync need no second path. What differs: its ``encoded`` bytes
and ``hash`` are FISCO's, its sender is the Keccak address, and the executor turns its
results into FISCO outputs (:meth:`FiscoSignedTransaction.abi_result`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import NamedTuple

from consensus.codec import DecodeError
from consensus.crypto import InvalidSignature, KeyPair, recover
from node.ledger.accounts import parse_address
from node.ledger.fisco import rlp
from node.ledger.fisco.abi import AbiError, FiscoMethod, code_result, decode_calldata
from node.ledger.fisco.keccak import fisco_address, keccak256
from node.ledger.tx import (  # the native slot setters: one home for how a tx is filled
    MAX_TX_SIZE,
    UINT64_MAX,
    Arg,
    SignedTransaction,
    Transaction,
    _tx_args,
    _tx_block_limit,
    _tx_body,
    _tx_chain_id,
    _tx_group_id,
    _tx_method,
    _tx_nonce,
    _tx_signing_hash,
    _tx_to,
)

FIELD_COUNT = 13
MAX_EXTRA_DATA = 1024
"""Longest ``extraData``, in bytes (Caliper sends 1 byte, the python-sdk none)."""
MAX_ID_BYTES = 8
"""``fiscoChainId`` and ``groupId`` are at most uint64 (their decimal is the native id)."""
DEFAULT_GAS = 30_000_000
"""gasPrice and gasLimit the python-sdk sends (ledgerlab charges no gas; kept as sent)."""
_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = _ORDER // 2


class FiscoTxError(DecodeError):
    """A FISCO-format transaction that is malformed: bad RLP, field, size, ABI or signature
    shape. The txpool answers it as ``Malformed`` (JSON-RPC error 10003)."""


def is_fisco_encoding(data: bytes) -> bool:
    """Whether ``data`` starts like an RLP list (native transactions start ``0x9_``)."""
    return bool(data) and data[0] >= 0xC0


class FiscoFields(NamedTuple):
    """The 13 fields as numbers and bytes (what clients see of the raw transaction)."""

    randomid: int
    gas_price: int
    gas_limit: int
    block_limit: int
    to: bytes
    value: int
    data: bytes
    chain_id: int
    group_id: int
    extra_data: bytes
    v: int
    r: int
    s: int

    def unsigned_items(self) -> list[bytes]:
        u = rlp.encode_uint
        return [
            u(self.randomid),
            u(self.gas_price),
            u(self.gas_limit),
            u(self.block_limit),
            self.to,
            u(self.value),
            self.data,
            u(self.chain_id),
            u(self.group_id),
            self.extra_data,
        ]

    def encode(self) -> bytes:
        """The signed transaction's RLP (13 items)."""
        u = rlp.encode_uint
        return rlp.encode_flat_list([*self.unsigned_items(), u(self.v), u(self.r), u(self.s)])

    def unsigned_encoding(self) -> bytes:
        """The RLP of the first 10 items, whose Keccak-256 is the signing hash."""
        return rlp.encode_flat_list(self.unsigned_items())


@dataclass(frozen=True, slots=True)
class FiscoSignedTransaction(SignedTransaction):
    """A FISCO-format transaction. Made by :func:`decode_fisco_transaction` or
    :func:`sign_fisco_tx` (never by the dataclass constructor)."""

    fields: FiscoFields = field(default=None, compare=False)  # type: ignore[assignment]
    call: FiscoMethod | None = field(default=None, compare=False)
    """The precompile method ``data`` calls (None: no such method at ``to``)."""

    def __post_init__(self) -> None:
        raise TypeError("use decode_fisco_transaction() or sign_fisco_tx()")

    @property
    def input(self) -> bytes:
        """The raw ABI calldata (what FISCO's RPC shows as ``input``)."""
        return self.fields.data

    def recover_sender(self) -> bytes:
        """The sender's FISCO (Keccak) address; :class:`InvalidSignature` if it does not
        recover. ``s`` and ``v`` were checked when it was decoded."""
        return fisco_address(recover(self.tx.signing_hash, self.signature))

    def abi_result(self, status: int, output: bytes) -> tuple[int, bytes]:
        """The receipt ``(status, output)`` FISCO gives for the native result."""
        if self.call is None:
            return code_result(status)
        return self.call.abi_result(status, output)


_new = object.__new__


def _build(
    f: FiscoFields,
    encoded: bytes,
    unsigned: bytes,
    spec: FiscoMethod | None,
    args: tuple[Arg, ...],
) -> FiscoSignedTransaction:
    """Both objects from checked fields, through their slots (no native validation: the
    FISCO rules are not the native ones, e.g. a 64-hex-digit nonce)."""
    tx = _new(Transaction)
    _tx_chain_id(tx, str(f.chain_id))
    _tx_group_id(tx, str(f.group_id))
    _tx_nonce(tx, format(f.randomid, "x"))
    _tx_block_limit(tx, f.block_limit)
    _tx_to(tx, f.to)
    _tx_method(tx, spec.method if spec is not None else "0x" + f.data[:4].hex())
    _tx_args(tx, args)
    _tx_body(tx, unsigned)
    _tx_signing_hash(tx, keccak256(unsigned))
    stx = _new(FiscoSignedTransaction)
    _stx_tx(stx, tx)
    _stx_signature(stx, f.r.to_bytes(32, "big") + f.s.to_bytes(32, "big") + bytes((f.v - 27,)))
    _stx_encoded(stx, encoded)
    _stx_hash(stx, keccak256(encoded))
    _stx_fields(stx, f)
    _stx_call(stx, spec)
    return stx


_stx_tx, _stx_signature, _stx_encoded, _stx_hash, _stx_fields, _stx_call = (
    getattr(FiscoSignedTransaction, name).__set__
    for name in ("tx", "signature", "encoded", "hash", "fields", "call")
)


def _check_signature_shape(v: int, r: int, s: int) -> None:
    if v not in (27, 28):
        raise FiscoTxError(f"fisco tx: v must be 27 or 28, got {v}")
    if not 0 < r < _ORDER:
        raise FiscoTxError("fisco tx: r outside 1..n-1")
    if not 0 < s <= _HALF_ORDER:
        raise FiscoTxError("fisco tx: s outside 1..n/2 (high-s signatures are not canonical)")


def decode_fisco_transaction(data: bytes) -> FiscoSignedTransaction:
    """Parse a FISCO-format signed transaction; :class:`FiscoTxError` for anything malformed.

    Does not recover the signature (see :meth:`FiscoSignedTransaction.recover_sender`).
    """
    if type(data) is not bytes:
        if not isinstance(data, (bytearray, memoryview)):
            raise FiscoTxError(f"expected bytes, got {type(data).__name__}")
        data = bytes(data)
    if len(data) > MAX_TX_SIZE:
        raise FiscoTxError(f"fisco tx: {len(data)} bytes exceeds {MAX_TX_SIZE}")
    try:
        items, starts = rlp.decode_flat_list(data, max_items=FIELD_COUNT)
        if len(items) != FIELD_COUNT:
            raise DecodeError(f"{len(items)} fields, expected {FIELD_COUNT}")
        (
            randomid,
            gas_price,
            gas_limit,
            block_limit,
            to,
            value,
            calldata,
            chain_id,
            group_id,
            extra_data,
            v,
            r,
            s,
        ) = items
        uint = rlp.decode_uint
        fields = FiscoFields(
            uint(randomid, "randomid"),
            uint(gas_price, "gasPrice"),
            uint(gas_limit, "gasLimit"),
            uint(block_limit, "blockLimit", 8),
            to,
            uint(value, "value"),
            calldata,
            uint(chain_id, "fiscoChainId", MAX_ID_BYTES),
            uint(group_id, "groupId", MAX_ID_BYTES),
            extra_data,
            uint(v, "v", 1),
            uint(r, "r"),
            uint(s, "s"),
        )
    except DecodeError as exc:
        raise FiscoTxError(f"fisco tx: {exc}") from None
    if len(to) != 20:
        raise FiscoTxError(
            "fisco tx: to must be a 20-byte address (contract deployment is not supported)"
        )
    if fields.value:
        raise FiscoTxError("fisco tx: value must be 0 (ledgerlab has no native coin)")
    if len(extra_data) > MAX_EXTRA_DATA:
        raise FiscoTxError(f"fisco tx: extraData of {len(extra_data)} bytes > {MAX_EXTRA_DATA}")
    _check_signature_shape(fields.v, fields.r, fields.s)
    try:
        spec, args = decode_calldata(to, calldata)
    except AbiError as exc:
        raise FiscoTxError(f"fisco tx: data: {exc}") from None
    payload = data[starts[0] : starts[10]]  # the first 10 items, canonical as checked
    return _build(fields, data, rlp.list_header(len(payload)) + payload, spec, args)


def sign_fisco_tx(
    keypair: KeyPair,
    *,
    to: str | bytes | int,
    data: bytes,
    block_limit: int,
    chain_id: int = 1,
    group_id: int = 1,
    randomid: int | None = None,
    gas_price: int = DEFAULT_GAS,
    gas_limit: int = DEFAULT_GAS,
    extra_data: bytes = b"",
) -> FiscoSignedTransaction:
    """A signed FISCO-format transaction, as the python-sdk builds one (defaults included).

    ``data`` is ABI calldata (:func:`node.ledger.fisco.abi.encode_calldata`); ``randomid``
    defaults to a random 128-bit number. For the console, the benchmark and the channel
    server; the result decodes with :func:`decode_fisco_transaction`.
    """
    if not 0 <= block_limit <= UINT64_MAX:
        raise ValueError("block_limit must be a uint64")
    for value, what in ((chain_id, "chain_id"), (group_id, "group_id")):
        if not 0 <= value < 1 << (8 * MAX_ID_BYTES):
            raise ValueError(f"{what} must be a uint64")
    unsigned = FiscoFields(
        randomid=secrets.randbits(128) if randomid is None else randomid,
        gas_price=gas_price,
        gas_limit=gas_limit,
        block_limit=block_limit,
        to=parse_address(to),
        value=0,
        data=bytes(data),
        chain_id=chain_id,
        group_id=group_id,
        extra_data=bytes(extra_data),
        v=0,
        r=0,
        s=0,
    )
    digest = keccak256(unsigned.unsigned_encoding())
    sig = keypair.sign(digest)  # RFC 6979, low s
    if sig[64] > 1:
        raise InvalidSignature("recovery id above 1 has no FISCO v (probability ~2^-127)")
    signed = unsigned._replace(
        v=27 + sig[64], r=int.from_bytes(sig[:32], "big"), s=int.from_bytes(sig[32:64], "big")
    )
    return decode_fisco_transaction(signed.encode())
