"""Signed transactions: the FISCO BCOS shape in canonical msgpack.

Theory of operation. A :class:`Transaction` holds the unsigned fields; its canonical
encoding (``body``) is an 8-element msgpack array, and the client signs
``signing_hash = hash32(body)`` with a 65-byte recoverable secp256k1 signature. The
signed wire form is the same array with the signature appended as a 9th element, so a
node rebuilds the body from the decoded fields with one ``pack`` and no second parse.
``SignedTransaction.hash`` is ``hash32`` of the exact signed bytes: two different
signatures over the same body are two different transactions, and anyone can compute
the hash of what they sent. Decoding re-encodes and insists on byte equality, so every
transaction has exactly one accepted encoding (no malleable re-encodings); recovery
rejects high-``s`` signatures for the same reason. Recovering the sender costs ~30 us,
so the node does it once at admission and carries the result as a :class:`VerifiedTx`.

Arguments are strings (msgpack str) or uint256 numbers, which travel as exactly 32
big-endian bytes (msgpack bin 32) because msgpack integers stop at 64 bits. Every text
limit is in UTF-8 bytes (:data:`MAX_NAME_BYTES`, :data:`MAX_ARG_BYTES`), defined here
once and used by decoding, admission, ``call`` and the console alike, so a string a node
admits is one every node can execute and store. The exact layout is in
docs/wire-format.md.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from consensus.codec import DecodeError, pack, unpack, unpack_failure
from consensus.crypto import (
    ADDRESS_SIZE,
    SIGNATURE_SIZE,
    InvalidSignature,
    KeyPair,
    address_of,
    hash32,
    recover,
)
from node.ledger.accounts import parse_address

TX_VERSION = 0
MAX_TX_SIZE = 8 * 1024
MAX_ARGS = 16
MAX_ARG_BYTES = 256
"""Longest string argument, in UTF-8 bytes (what a state key built from it costs)."""
MAX_NAME_BYTES = 64
"""Longest chain id, group id, nonce and method name, in UTF-8 bytes (at least 1)."""
_SURE_ARG_CHARS = MAX_ARG_BYTES // 4
"""A str of at most this many characters fits MAX_ARG_BYTES (UTF-8: <= 4 bytes each)."""
UINT64_MAX = 2**64 - 1
UINT256_MAX = 2**256 - 1
_HALF_ORDER_BYTES = (
    0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141 // 2
).to_bytes(32, "big")

# The 9-element signed array is the 8-element body (fixarray 0x98) with another header
# byte and the signature (msgpack bin 8 of 65 bytes) appended.
_SIGNED_HEADER = b"\x99"
_SIGNATURE_PREFIX = b"\xc4\x41"
_BODY_HEADER = b"\x98"
_SIGNATURE_TAIL = len(_SIGNATURE_PREFIX) + SIGNATURE_SIZE

Arg = str | int
_new = object.__new__
_unpackb = msgpack.unpackb
_MAX_TX_MAP = MAX_TX_SIZE // 2

pack_fields: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack
""":func:`consensus.codec.pack` with one reused Packer: the same bytes, ~0.3 us cheaper
per call on the admission and execution paths. Safe to share between threads: the
Packer runs entirely under the GIL on plain lists, ints, str and bytes."""


def utf8_fits(value: str, max_bytes: int) -> bool:
    """Whether the str ``value`` has a UTF-8 form of at most ``max_bytes`` bytes.

    False for a str with lone surrogates (it has no UTF-8 form; a JSON ``"\\ud800"`` is
    one). An ASCII str is measured by its length alone (``isascii`` is a flag test in
    CPython); anything else is encoded once.
    """
    if len(value) > max_bytes:  # every character is at least one byte
        return False
    if value.isascii():
        return True
    try:
        return len(value.encode()) <= max_bytes
    except UnicodeEncodeError:
        return False


def _decoded_fits(value: str, max_bytes: int) -> bool:
    """:func:`utf8_fits` for a str msgpack decoded (valid UTF-8, so no surrogates):
    one of at most ``max_bytes // 4`` characters needs no encoding."""
    n = len(value)
    return n * 4 <= max_bytes or (
        n <= max_bytes and (value.isascii() or len(value.encode()) <= max_bytes)
    )


def _size_problem(value: str, max_bytes: int) -> str:
    """Why a str that failed :func:`utf8_fits` does not fit (for error messages)."""
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        return "is not valid UTF-8 (it holds a lone surrogate)"
    return f"is {size} UTF-8 bytes, more than {max_bytes}"


def _check_fields(
    chain_id: Any,
    group_id: Any,
    nonce: Any,
    block_limit: Any,
    to: Any,
    method: Any,
    fits: Callable[[str, int], bool] = utf8_fits,
) -> None:
    """ValueError unless the scalar fields have their types and sizes (one fast test)."""
    if (
        type(chain_id) is str
        and 0 < len(chain_id) <= MAX_NAME_BYTES
        and (chain_id.isascii() or fits(chain_id, MAX_NAME_BYTES))
        and type(group_id) is str
        and 0 < len(group_id) <= MAX_NAME_BYTES
        and (group_id.isascii() or fits(group_id, MAX_NAME_BYTES))
        and type(nonce) is str
        and 0 < len(nonce) <= MAX_NAME_BYTES
        and (nonce.isascii() or fits(nonce, MAX_NAME_BYTES))
        and type(method) is str
        and 0 < len(method) <= MAX_NAME_BYTES
        and (method.isascii() or fits(method, MAX_NAME_BYTES))
        and type(block_limit) is int
        and 0 <= block_limit <= UINT64_MAX
        and type(to) is bytes
        and len(to) == ADDRESS_SIZE
    ):
        return
    for value, what in (
        (chain_id, "chain_id"),
        (group_id, "group_id"),
        (nonce, "nonce"),
        (method, "method"),
    ):
        check_name(value, what)
    if type(to) is not bytes or len(to) != ADDRESS_SIZE:
        raise ValueError(f"to must be {ADDRESS_SIZE} bytes")
    raise ValueError("block_limit must be a uint64")


def check_name(value: Any, what: str) -> str:
    """``value`` if it is a valid chain id, group id, nonce or method name, else ValueError.

    The rule: a non-empty str of at most :data:`MAX_NAME_BYTES` UTF-8 bytes.
    """
    if type(value) is not str or not value:
        raise ValueError(f"{what} must be a non-empty str of at most {MAX_NAME_BYTES} UTF-8 bytes")
    if not utf8_fits(value, MAX_NAME_BYTES):
        raise ValueError(f"{what} {_size_problem(value, MAX_NAME_BYTES)}")
    return value


def _wire_arg(value: Any) -> str | bytes:
    """One argument in its wire form (uint256 -> 32 bytes); ValueError if it has none."""
    if type(value) is str:
        if not utf8_fits(value, MAX_ARG_BYTES):
            raise ValueError(f"string argument {_size_problem(value, MAX_ARG_BYTES)}")
        return value
    if type(value) is int:
        if not 0 <= value <= UINT256_MAX:
            raise ValueError("integer argument outside uint256")
        return value.to_bytes(32, "big")
    raise ValueError(f"arguments are str or uint256 int, not {type(value).__name__}")


def _native_arg(value: Any) -> Arg:
    """One argument from its wire form; DecodeError for anything else."""
    if type(value) is str:
        if len(value) * 4 > MAX_ARG_BYTES and not _decoded_fits(value, MAX_ARG_BYTES):
            raise DecodeError(f"string argument {_size_problem(value, MAX_ARG_BYTES)}")
        return value
    if type(value) is bytes and len(value) == 32:
        return int.from_bytes(value, "big")
    raise DecodeError("an argument must be a str or 32 bytes (uint256)")


def valid_arg(value: Any) -> bool:
    """Whether ``value`` is an argument a transaction can carry (str or uint256 int)."""
    if type(value) is str:
        return utf8_fits(value, MAX_ARG_BYTES)
    return type(value) is int and 0 <= value <= UINT256_MAX


def encode_values(values: Sequence[Arg]) -> bytes:
    """Strings and uint256 numbers as one msgpack array (args, call outputs)."""
    return pack([_wire_arg(v) for v in values])


def decode_values(data: bytes, *, max_items: int = MAX_ARGS) -> tuple[Arg, ...]:
    """The inverse of :func:`encode_values`; DecodeError for anything malformed."""
    items = unpack(data, max_size=MAX_TX_SIZE)
    if type(items) is not list or len(items) > max_items:
        raise DecodeError(f"expected a list of at most {max_items} values")
    return tuple(_native_arg(v) for v in items)


@dataclass(frozen=True, slots=True)
class Transaction:
    """The unsigned fields. Build with :meth:`build`, then :meth:`sign`."""

    chain_id: str
    group_id: str
    nonce: str
    block_limit: int
    to: bytes
    method: str
    args: tuple[Arg, ...]
    body: bytes = field(init=False, repr=False, compare=False)
    """Canonical encoding of the unsigned fields."""
    signing_hash: bytes = field(init=False, repr=False, compare=False)
    """``hash32(body)``: what the sender signs."""

    def __post_init__(self) -> None:
        _check_fields(
            self.chain_id, self.group_id, self.nonce, self.block_limit, self.to, self.method
        )
        args = self.args
        if type(args) is not tuple:
            if not isinstance(args, (list, tuple)):
                raise ValueError("args must be a list or tuple")
            args = tuple(args)
            object.__setattr__(self, "args", args)
        if len(args) > MAX_ARGS:
            raise ValueError(f"more than {MAX_ARGS} arguments")
        body = pack(
            [
                TX_VERSION,
                self.chain_id,
                self.group_id,
                self.nonce,
                self.block_limit,
                self.to,
                self.method,
                [_wire_arg(a) for a in args],
            ]
        )
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "signing_hash", hash32(body))

    @classmethod
    def build(
        cls,
        *,
        chain_id: str,
        group_id: str,
        to: str | bytes | int,
        method: str,
        args: Sequence[Arg] = (),
        block_limit: int,
        nonce: str | None = None,
    ) -> Transaction:
        """A transaction with a fresh random nonce unless one is given."""
        return cls(
            chain_id=chain_id,
            group_id=group_id,
            nonce=secrets.token_hex(16) if nonce is None else nonce,
            block_limit=block_limit,
            to=parse_address(to),
            method=method,
            args=tuple(args),
        )

    def sign(self, keypair: KeyPair) -> SignedTransaction:
        return SignedTransaction(self, keypair.sign(self.signing_hash))


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A transaction with its signature. Made by :meth:`Transaction.sign` or :meth:`decode`."""

    tx: Transaction
    signature: bytes
    encoded: bytes = field(init=False, repr=False, compare=False)
    """The canonical wire bytes."""
    hash: bytes = field(init=False, repr=False, compare=False)
    """``hash32(encoded)``: unique per signed transaction."""

    def __post_init__(self) -> None:
        if type(self.signature) is not bytes or len(self.signature) != SIGNATURE_SIZE:
            raise ValueError(f"signature must be {SIGNATURE_SIZE} bytes")
        if type(self.tx) is not Transaction:
            raise ValueError("tx must be a Transaction")
        encoded = _SIGNED_HEADER + self.tx.body[1:] + _SIGNATURE_PREFIX + self.signature
        object.__setattr__(self, "encoded", encoded)
        object.__setattr__(self, "hash", hash32(encoded))

    def encode(self) -> bytes:
        return self.encoded

    @classmethod
    def decode(cls, data: bytes) -> SignedTransaction:
        """Parse wire bytes; any malformed input raises :class:`DecodeError`.

        Bytes that start with an RLP list header (``0xc0..0xff``) are a FISCO BCOS 2.x
        transaction and decode to a :class:`node.ledger.fisco.FiscoSignedTransaction`.

        Checks size, field count, types and ranges, and that ``data`` is the canonical
        encoding. Does not check the signature (see :meth:`recover_sender`).
        """
        if type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise DecodeError(f"expected bytes, got {type(data).__name__}")
            data = bytes(data)
        if data and data[0] >= 0xC0:  # an RLP list: FISCO BCOS 2.x format (docs/fisco-format.md)
            from node.ledger.fisco.tx import decode_fisco_transaction

            return decode_fisco_transaction(data)
        if len(data) > MAX_TX_SIZE:
            raise DecodeError(f"transaction of {len(data)} bytes exceeds {MAX_TX_SIZE}")
        try:  # consensus.codec.unpack inline: its type and size checks are done above
            fields = _unpackb(
                data,
                raw=False,
                use_list=True,
                strict_map_key=True,
                max_bin_len=MAX_TX_SIZE,
                max_str_len=MAX_TX_SIZE,
                max_array_len=MAX_TX_SIZE,
                max_map_len=_MAX_TX_MAP,
                max_ext_len=0,
            )
        except Exception as exc:  # msgpack raises several unrelated types
            raise unpack_failure(exc) from None
        if type(fields) is not list or len(fields) != 9:
            raise DecodeError("transaction: expected a list of 9 fields")
        version, chain_id, group_id, nonce, block_limit, to, method, args, signature = fields
        if type(version) is not int or version != TX_VERSION:
            raise DecodeError(f"transaction: unsupported version {version!r}")
        if type(args) is not list or len(args) > MAX_ARGS:
            raise DecodeError(f"transaction: args must be a list of at most {MAX_ARGS}")
        if type(signature) is not bytes or len(signature) != SIGNATURE_SIZE:
            raise DecodeError(f"transaction: signature must be {SIGNATURE_SIZE} bytes")
        try:
            _check_fields(chain_id, group_id, nonce, block_limit, to, method, _decoded_fits)
        except ValueError as exc:
            raise DecodeError(f"transaction: {exc}") from None
        # _native_arg inline for the two common cases (a str short enough that it fits
        # whatever its characters, a uint256); anything else goes through it to be checked.
        native = tuple(
            [
                a
                if type(a) is str and len(a) <= _SURE_ARG_CHARS
                else (
                    int.from_bytes(a, "big")
                    if type(a) is bytes and len(a) == 32
                    else _native_arg(a)
                )
                for a in args
            ]
        )
        # The fields are valid, so packing them gives the canonical encoding, which the
        # input must be exactly; the body is that array without the signature.
        if pack_fields(fields) != data:
            raise DecodeError("transaction: not the canonical encoding")
        body = _BODY_HEADER + data[1:-_SIGNATURE_TAIL]
        # Everything is checked: fill both objects through their slots, skipping
        # __post_init__ (this is the admission hot path).
        tx = _new(Transaction)
        _tx_chain_id(tx, chain_id)
        _tx_group_id(tx, group_id)
        _tx_nonce(tx, nonce)
        _tx_block_limit(tx, block_limit)
        _tx_to(tx, to)
        _tx_method(tx, method)
        _tx_args(tx, native)
        _tx_body(tx, body)
        _tx_signing_hash(tx, _sha3(body).digest())
        stx = _new(cls)
        _stx_tx(stx, tx)
        _stx_signature(stx, signature)
        _stx_encoded(stx, data)
        _stx_hash(stx, _sha3(data).digest())
        return stx

    def recover_sender(self) -> bytes:
        """The sender's address; :class:`InvalidSignature` if the signature is bad."""
        if self.signature[32:64] > _HALF_ORDER_BYTES:  # big-endian: bytes order = int order
            raise InvalidSignature("high-s signature (not canonical)")
        return address_of(recover(self.tx.signing_hash, self.signature))

    def verified(self) -> VerifiedTx:
        """This transaction with its recovered sender; raises :class:`InvalidSignature`."""
        sender = self.recover_sender()
        vtx = _new(VerifiedTx)  # the constructor's two frozen-field writes, as slot sets
        _vtx_tx(vtx, self)
        _vtx_sender(vtx, sender)
        return vtx


@dataclass(frozen=True, slots=True)
class VerifiedTx:
    """A signed transaction whose sender was recovered once, at admission."""

    tx: SignedTransaction
    sender: bytes

    @property
    def hash(self) -> bytes:
        return self.tx.hash


# Slot setters for SignedTransaction.decode (hash32 is SHA3-256; called directly there).
_sha3 = hashlib.sha3_256
(
    _tx_chain_id,
    _tx_group_id,
    _tx_nonce,
    _tx_block_limit,
    _tx_to,
    _tx_method,
    _tx_args,
    _tx_body,
    _tx_signing_hash,
) = (
    getattr(Transaction, name).__set__
    for name in (
        "chain_id",
        "group_id",
        "nonce",
        "block_limit",
        "to",
        "method",
        "args",
        "body",
        "signing_hash",
    )
)
_stx_tx, _stx_signature, _stx_encoded, _stx_hash = (
    getattr(SignedTransaction, name).__set__ for name in ("tx", "signature", "encoded", "hash")
)
_vtx_tx, _vtx_sender = (getattr(VerifiedTx, name).__set__ for name in ("tx", "sender"))


def tx_hash(raw: bytes) -> bytes:
    """The hash of a signed transaction from its bytes, in its own format: ``hash32``
    (SHA3-256) of a native one, Keccak-256 of a FISCO BCOS one (first byte >= 0xc0)."""
    if raw and raw[0] >= 0xC0:
        from node.ledger.fisco.keccak import keccak256

        return keccak256(raw)
    return _sha3(raw).digest()


def decode_transaction(data: bytes) -> SignedTransaction:
    """Shorthand for :meth:`SignedTransaction.decode`."""
    return SignedTransaction.decode(data)
