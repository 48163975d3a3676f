"""A small strict Solidity ABI codec for the precompiles' calldata and outputs.

Why not eth-abi: it is general (every type, via a registry of codec objects) and costs
several times more per call (docs/performance.md), on the admission path of every
FISCO-format transaction, while the precompiles need four types. This codec knows
``string`` and ``uint256`` arguments and ``int256``, ``uint256``, ``string`` and
``string[]`` outputs, and is strict: offsets, zero padding, lengths and trailing bytes
each have exactly one accepted form (:class:`AbiError` else). It checks the canonical
form directly (each offset where the previous tail ends); the tests hold that equal to
re-encoding and comparing, and check both directions against eth-abi. Strings are UTF-8
of at most :data:`node.ledger.tx.MAX_ARG_BYTES` bytes, as in native transactions.

:data:`METHODS` maps ``(precompile address, selector)`` to a :class:`FiscoMethod`: the
Solidity signature FISCO BCOS 2.x declares, the native method it runs, and how its
native result becomes FISCO's output (:meth:`FiscoMethod.abi_result`): FISCO returns a
precompile's code as ABI ``int256`` in the output with receipt status 0, even when the
business check fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from consensus.codec import DecodeError
from node.ledger.accounts import parse_address
from node.ledger.fisco.keccak import keccak256
from node.ledger.precompiles import CALL_ADDRESS_ERROR, PRECOMPILED_ERROR
from node.ledger.tx import MAX_ARG_BYTES, UINT256_MAX, Arg, decode_values

SELECTOR_SIZE = 4
_WORD = 32


class AbiError(DecodeError):
    """Not the canonical ABI encoding of the method's arguments."""


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % _WORD)


def _uint_word(value: int) -> bytes:
    return value.to_bytes(_WORD, "big")


def _int_word(value: int) -> bytes:
    return value.to_bytes(_WORD, "big", signed=True)


def _string_tail(value: str) -> bytes:
    raw = value.encode()
    return _uint_word(len(raw)) + _pad(raw)


def encode_values(kinds: Sequence[str], values: Sequence[Any]) -> bytes:
    """The ABI tuple encoding of ``values`` typed ``kinds`` (string, string[], uint256, int256)."""
    if len(kinds) != len(values):
        raise ValueError(f"{len(kinds)} types but {len(values)} values")
    head_size = _WORD * len(kinds)
    heads: list[bytes] = []
    tails: list[bytes] = []
    offset = head_size
    for kind, value in zip(kinds, values, strict=True):
        if kind == "uint256":
            if type(value) is not int or not 0 <= value <= UINT256_MAX:
                raise ValueError("uint256 out of range")
            heads.append(_uint_word(value))
            continue
        if kind == "int256":
            if type(value) is not int or not -(2**255) <= value < 2**255:
                raise ValueError("int256 out of range")
            heads.append(_int_word(value))
            continue
        if kind == "string":
            if type(value) is not str:
                raise ValueError("string value expected")
            tail = _string_tail(value)
        elif kind == "string[]":
            items = [_string_tail(v) for v in value]
            inner, pos = [], _WORD * len(items)
            for item in items:
                inner.append(_uint_word(pos))
                pos += len(item)
            tail = _uint_word(len(items)) + b"".join(inner) + b"".join(items)
        else:
            raise ValueError(f"unsupported ABI type {kind}")
        heads.append(_uint_word(offset))
        tails.append(tail)
        offset += len(tail)
    return b"".join(heads) + b"".join(tails)


def decode_args(kinds: Sequence[str], data: bytes) -> tuple[Arg, ...]:
    """Arguments (``string`` or ``uint256`` only) from ABI ``data``; AbiError unless canonical.

    Canonical, as :func:`encode_values` writes it: the heads in order, each string's
    offset exactly where the previous tail ends, lengths within the limit, zero padding,
    no trailing bytes (the tests hold this equal to re-encoding and comparing).
    """
    size = len(data)
    expected = _WORD * len(kinds)  # where the next string's tail must start
    if size < expected:
        raise AbiError(f"{size} bytes, shorter than the {len(kinds)} argument words")
    out: list[Arg] = []
    from_bytes = int.from_bytes
    for index, kind in enumerate(kinds):
        word = from_bytes(data[_WORD * index : _WORD * (index + 1)], "big")
        if kind == "uint256":
            out.append(word)
            continue
        if word != expected:
            raise AbiError(f"argument {index}: offset {word:#x} is not the canonical {expected:#x}")
        if word + _WORD > size:
            raise AbiError(f"argument {index}: truncated (no length word)")
        length = from_bytes(data[word : word + _WORD], "big")
        if length > MAX_ARG_BYTES:
            raise AbiError(f"argument {index}: string longer than {MAX_ARG_BYTES} bytes")
        start = word + _WORD
        end = start + length
        padded = start + (length + _WORD - 1) // _WORD * _WORD
        if padded > size:
            raise AbiError(f"argument {index}: truncated string")
        if data[end:padded].count(0) != padded - end:
            raise AbiError(f"argument {index}: non-zero padding")
        try:
            out.append(data[start:end].decode())
        except UnicodeDecodeError:
            raise AbiError(f"argument {index}: string is not valid UTF-8") from None
        expected = padded
    if size != expected:
        raise AbiError(f"{size - expected} trailing bytes after the arguments")
    return tuple(out)


# How a method's native result becomes its FISCO output.
CODE = "code"
"""int256 code: 0 ok, else the precompile's negative code."""
COUNT = "count"
"""int256: rows written (1) on success, as FISCO 2.x's SystemConfig and Consensus do."""
CODE_BALANCE = "code_balance"
"""(int256 code, uint256 balance): userBalance."""
PAGE = "page"
"""(uint256 count, string[] ids): ledgerlab's getSealerList/getObserverList pages."""

_OUTPUT_KINDS = {
    CODE: ("int256",),
    COUNT: ("int256",),
    CODE_BALANCE: ("int256", "uint256"),
    PAGE: ("uint256", "string[]"),
}


@dataclass(frozen=True, slots=True)
class FiscoMethod:
    """One ABI method of a precompile, as FISCO BCOS 2.x declares it."""

    address: bytes
    signature: str
    """e.g. ``userTransfer(string,string,uint256)``; its Keccak-256 gives the selector."""
    method: str
    """The native precompile method it runs."""
    arg_kinds: tuple[str, ...]
    output: str
    """One of CODE, COUNT, CODE_BALANCE, PAGE."""
    selector: bytes = field(init=False)
    """The first 4 bytes of Keccak-256 of :attr:`signature`."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "selector", keccak256(self.signature.encode())[:SELECTOR_SIZE])

    @property
    def output_kinds(self) -> tuple[str, ...]:
        return _OUTPUT_KINDS[self.output]

    def abi_result(self, status: int, output: bytes) -> tuple[int, bytes]:
        """``(receipt status, ABI output)`` for a native ``(status, output)`` of this method.

        A precompile's own code (0 or negative) goes into the output with status 0;
        PrecompiledError (21) and CallAddressError (26) stay statuses with an empty output.
        """
        if status in (PRECOMPILED_ERROR, CALL_ADDRESS_ERROR):
            return status, b""
        kind = self.output
        if kind == CODE:
            return 0, _int_word(status)
        if kind == COUNT:
            return 0, _int_word(status or 1)
        values = decode_values(output) if status == 0 else ()
        if kind == CODE_BALANCE:
            balance = values[0] if values else 0
            return 0, _int_word(status) + _uint_word(int(balance))
        if status:  # PAGE: a read-only getter fails only for a bug; keep it a status
            return status, b""
        count, *ids = values
        return 0, encode_values(self.output_kinds, [count, ids])


def code_result(status: int) -> tuple[int, bytes]:
    """FISCO's answer for a call no :class:`FiscoMethod` describes (an unknown selector):
    the code as int256 with status 0, or the status itself for 21 and 26."""
    if status in (PRECOMPILED_ERROR, CALL_ADDRESS_ERROR):
        return status, b""
    return 0, _int_word(status)


_DAG = parse_address("0x5002")
_SYSTEM_CONFIG = parse_address("0x1000")
_CONSENSUS = parse_address("0x1003")

_TABLE = (
    FiscoMethod(_DAG, "userAdd(string,uint256)", "userAdd", ("string", "uint256"), CODE),
    FiscoMethod(_DAG, "userSave(string,uint256)", "userSave", ("string", "uint256"), CODE),
    FiscoMethod(_DAG, "userDraw(string,uint256)", "userDraw", ("string", "uint256"), CODE),
    FiscoMethod(_DAG, "userBalance(string)", "userBalance", ("string",), CODE_BALANCE),
    FiscoMethod(
        _DAG,
        "userTransfer(string,string,uint256)",
        "userTransfer",
        ("string", "string", "uint256"),
        CODE,
    ),
    FiscoMethod(
        _SYSTEM_CONFIG, "setValueByKey(string,string)", "setValueByKey", ("string", "string"), COUNT
    ),
    FiscoMethod(_CONSENSUS, "addSealer(string)", "addSealer", ("string",), COUNT),
    FiscoMethod(_CONSENSUS, "addObserver(string)", "addObserver", ("string",), COUNT),
    FiscoMethod(_CONSENSUS, "remove(string)", "remove", ("string",), COUNT),
    FiscoMethod(_CONSENSUS, "getSealerList()", "getSealerList", (), PAGE),
    FiscoMethod(_CONSENSUS, "getSealerList(uint256)", "getSealerList", ("uint256",), PAGE),
    FiscoMethod(_CONSENSUS, "getObserverList()", "getObserverList", (), PAGE),
    FiscoMethod(_CONSENSUS, "getObserverList(uint256)", "getObserverList", ("uint256",), PAGE),
)

METHODS: dict[tuple[bytes, bytes], FiscoMethod] = {(m.address, m.selector): m for m in _TABLE}
"""``(address, selector)`` -> method, for every precompile method with an ABI."""
_BY_SIGNATURE = {m.signature: m for m in _TABLE}


def decode_calldata(to: bytes, data: bytes) -> tuple[FiscoMethod | None, tuple[Arg, ...]]:
    """The method ``data`` calls at ``to`` and its arguments.

    ``(None, ())`` when ``(to, selector)`` names no method (the call then fails at
    execution, as a call to a missing function does); :class:`AbiError` when it names
    one but the arguments are not its canonical encoding.
    """
    spec = METHODS.get((to, data[:SELECTOR_SIZE])) if len(data) >= SELECTOR_SIZE else None
    if spec is None:
        return None, ()
    return spec, decode_args(spec.arg_kinds, data[SELECTOR_SIZE:])


def encode_calldata(signature: str, args: Sequence[Arg] = ()) -> bytes:
    """Calldata for a method of :data:`METHODS` by its Solidity signature (for the console,
    the benchmark and the channel server; the tests build theirs with eth-abi)."""
    spec = _BY_SIGNATURE.get(signature)
    if spec is None:
        raise ValueError(f"no precompile method {signature!r}")
    return spec.selector + encode_values(spec.arg_kinds, list(args))


def decode_output(kinds: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """int256/uint256 words of an output (what a client reads from ``output``)."""
    if len(data) < _WORD * len(kinds):
        raise AbiError("output is shorter than its head")
    out: list[Any] = []
    for index, kind in enumerate(kinds):
        word = data[_WORD * index : _WORD * (index + 1)]
        if kind == "int256":
            out.append(int.from_bytes(word, "big", signed=True))
        elif kind == "uint256":
            out.append(int.from_bytes(word, "big"))
        else:
            raise ValueError(f"decode_output reads int256 and uint256 only, not {kind}")
    return tuple(out)
