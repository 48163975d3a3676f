"""The JSON-RPC details FISCO BCOS 2.x SDKs rely on beyond ledgerlab's native shapes.

- ``call`` with ABI ``data``: when the first 4 bytes of ``data`` are the selector of a
  method of the precompile at ``to`` (node.ledger.fisco.abi.METHODS), the arguments are
  ABI-decoded strictly and the answer is FISCO's: the code ABI-encoded in ``output`` and
  ``status`` 0x0 (:func:`abi_call`). Other ``data`` is ledgerlab's msgpack call data;
  data that is neither is InvalidParams naming the unknown selector or the address
  without a precompile (:func:`bad_call_data`).
- ``getClientVersion``: ``Supported Version`` and ``FISCO-BCOS Version`` are
  :data:`FISCO_VERSION`, a version number the SDKs can parse.
- ``getGroupList``: the group ids this node serves, as numbers when they are decimal.
- ``getCode``: ``"0x"`` for every address (precompiles have no code; there is no EVM).
- ``getSystemConfigByKey tx_gas_limit``: FISCO's default, :data:`TX_GAS_LIMIT` (ledgerlab
  meters no gas).
docs/rpc.md ("FISCO BCOS clients") lists them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from node.ledger.fisco.abi import METHODS, SELECTOR_SIZE, AbiError, decode_args
from node.rpc import params as p
from node.rpc import render
from node.rpc.backend import NodeBackend
from node.rpc.errors import invalid_params

FISCO_VERSION = "2.11.0"
"""The FISCO BCOS release whose JSON-RPC and channel protocol ledgerlab answers as
(``getClientVersion``; the channel handshake's ``nodeVersion`` says the same). The
java-sdk parses it as ``a.b.c`` and refuses anything else."""

TX_GAS_LIMIT = "300000000"
"""What FISCO BCOS 2.x answers for tx_gas_limit by default (SDKs read it)."""


def abi_call(backend: NodeBackend, to: bytes, data: bytes, sender: bytes | None) -> Any:
    """The FISCO answer to ``call`` with ABI ``data``, or None when ``data`` is no ABI call
    of the precompile at ``to`` (then it is native call data)."""
    spec = METHODS.get((to, data[:SELECTOR_SIZE])) if len(data) >= SELECTOR_SIZE else None
    if spec is None:
        return None
    try:
        args = decode_args(spec.arg_kinds, data[SELECTOR_SIZE:])
    except AbiError as exc:
        raise invalid_params(f"data is not ABI calldata of {spec.signature}: {exc}") from None
    res = backend.call(to, spec.method, args, sender)
    status, output = spec.abi_result(res["status"], res["output"])
    return render.call_result(
        {"block_number": res["block_number"], "status": status, "output": output}
    )


PRECOMPILES = frozenset(to for to, _ in METHODS)


def bad_call_data(to: bytes, data: bytes, native_error: str) -> str:
    """Why ``call``'s ``data`` is neither ABI calldata of a known method of the
    precompile at ``to`` nor native call data, in a client's terms."""
    if to not in PRECOMPILES:
        return f"no precompile at 0x{to.hex()} (data is neither ABI calldata nor call data)"
    if len(data) >= SELECTOR_SIZE:
        return (
            f"unknown method selector 0x{data[:SELECTOR_SIZE].hex()} for the precompile at "
            f"0x{to.hex()} (nor is data native call data: {native_error})"
        )
    return f"data is neither ABI calldata (no 4-byte selector) nor call data: {native_error}"


def get_code(backend: NodeBackend, args: list[Any]) -> str:
    p.arity(args, 1, 1, "[group, address]")
    p.address(args[0], "address")
    return "0x"


def group_list(groups: Iterable[str]) -> list[int | str]:
    """Group ids as FISCO prints them: numbers (ledgerlab's text ids when not decimal)."""
    return [int(g) if g.isascii() and g.isdigit() else g for g in groups]
