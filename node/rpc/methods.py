"""The method table: FISCO BCOS method names -> param validation, backend call, rendering.

Every method but ``getClientVersion`` takes the group id as its first param; the
dispatcher resolves it to a backend and hands the remaining params here. Transaction
submission is special: ``sendRawTransaction`` only *validates* here (``prepare``), and the
dispatcher submits consecutive submissions of a batch to the backend in one call.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from consensus.codec import DecodeError
from node.ledger.tx import MAX_NAME_BYTES, MAX_TX_SIZE, UINT256_MAX
from node.rpc import fisco, render
from node.rpc import params as p
from node.rpc.backend import NodeBackend
from node.rpc.calldata import decode_call, encode_call
from node.rpc.errors import ErrorCode, RpcError, invalid_params

Handler = Callable[[NodeBackend, list[Any]], Any]
Prepare = Callable[[list[Any]], tuple[bytes, bool]]
"""Validates a submission's params: ``(raw transaction, force)``."""

try:
    _VERSION = metadata.version("ledgerlab")
except metadata.PackageNotFoundError:  # running from a bare checkout
    _VERSION = "0+unknown"


@dataclass(frozen=True, slots=True)
class Method:
    """A method entry: ``handler`` for reads, ``prepare`` for transaction submission."""

    name: str
    usage: str
    handler: Handler | None = None
    prepare: Prepare | None = None
    needs_group: bool = True


def _no_args(usage: str, fn: Callable[[NodeBackend], Any]) -> Handler:
    def handler(backend: NodeBackend, args: list[Any]) -> Any:
        p.arity(args, 0, 0, usage)
        return fn(backend)

    return handler


def _client_version(backend: NodeBackend, args: list[Any]) -> Any:
    p.arity(args, 0, 0, "[] or [group]")
    return {
        "Build Type": f"{platform.python_implementation()} {platform.python_version()}",
        "Chain Id": str(backend.chain_id()),
        "Client": "ledgerlab",
        "FISCO-BCOS Version": fisco.FISCO_VERSION,
        "Supported Version": fisco.FISCO_VERSION,  # FISCO's 2.x SDKs parse it as a.b.c
        "Version": _VERSION,
    }


def _block_number_param(backend: NodeBackend, value: Any) -> int:
    if type(value) is str and value in ("latest", "earliest"):
        return backend.block_number() if value == "latest" else 0
    return p.uint(value, "block number")


def _get_block_by_number(backend: NodeBackend, args: list[Any]) -> Any:
    p.arity(args, 1, 2, "[group, blockNumber, includeTransactions?]")
    full = p.boolean(args[1], "includeTransactions") if len(args) > 1 else False
    number = _block_number_param(backend, args[0])
    blk = backend.block_by_number(number, full)
    if blk is None:
        raise RpcError(ErrorCode.BlockNumberNotFound, f"block {number} does not exist")
    return render.block(blk, full)


def _get_block_by_hash(backend: NodeBackend, args: list[Any]) -> Any:
    p.arity(args, 1, 2, "[group, blockHash, includeTransactions?]")
    full = p.boolean(args[1], "includeTransactions") if len(args) > 1 else False
    block_hash = p.hash32(args[0], "block hash")
    blk = backend.block_by_hash(block_hash, full)
    if blk is None:
        raise RpcError(ErrorCode.BlockHashNotFound, f"block {args[0]} does not exist")
    return render.block(blk, full)


def _get_block_hash_by_number(backend: NodeBackend, args: list[Any]) -> Any:
    p.arity(args, 1, 1, "[group, blockNumber]")
    number = _block_number_param(backend, args[0])
    block_hash = backend.block_hash(number)
    if block_hash is None:
        raise RpcError(ErrorCode.BlockNumberNotFound, f"block {number} does not exist")
    return render.hexbytes(block_hash)


def _get_transaction(backend: NodeBackend, args: list[Any]) -> Any:
    p.arity(args, 1, 1, "[group, txHash]")
    tx = backend.transaction(p.hash32(args[0], "transaction hash"))
    return None if tx is None else render.transaction(tx)


def _get_receipt(backend: NodeBackend, args: list[Any]) -> Any:
    p.arity(args, 1, 1, "[group, txHash]")
    rc = backend.receipt(p.hash32(args[0], "transaction hash"))
    return None if rc is None else render.receipt(rc)


def _call(backend: NodeBackend, args: list[Any]) -> Any:
    p.arity(args, 1, 1, "[group, {from?, to, data} or {from?, to, method, args?}]")
    req = args[0]
    if type(req) is not dict or "to" not in req:
        raise invalid_params("call param must be an object {from?, to, data}")
    to = p.address(req["to"], "to")
    sender = p.address(req["from"], "from") if req.get("from") is not None else None
    if "data" in req:
        data = p.hex_bytes(req["data"], "data", max_len=MAX_TX_SIZE)
        answer = fisco.abi_call(backend, to, data, sender)  # FISCO SDKs: ABI calldata
        if answer is not None:
            return answer
        try:
            method, call_args = decode_call(data)
        except DecodeError as exc:
            raise invalid_params(fisco.bad_call_data(to, data, str(exc))) from None
    elif "method" in req:
        method = p.text(req["method"], "method", max_bytes=MAX_NAME_BYTES)
        raw_args = req.get("args", [])
        if type(raw_args) is not list:
            raise invalid_params("args must be a list")
        for index, arg in enumerate(raw_args):
            if type(arg) is int:
                if not 0 <= arg <= UINT256_MAX:
                    raise invalid_params(f"args[{index}] is outside uint256 (0..2^256-1)")
            elif type(arg) is not str:
                raise invalid_params(
                    f"args[{index}] must be a string or a JSON integer in 0..2^256-1 "
                    f"(digits only: no fraction, no exponent), not {p.json_kind(arg)}"
                )
        try:
            encode_call(method, raw_args)  # count, and string sizes in UTF-8 bytes
        except ValueError as exc:
            raise invalid_params(str(exc)) from None
        call_args = tuple(raw_args)
    else:
        raise invalid_params("call object needs 'data' (or 'method' and 'args')")
    return render.call_result(backend.call(to, method, call_args, sender))


def _system_config(backend: NodeBackend, args: list[Any]) -> Any:
    p.arity(args, 1, 1, "[group, key]")
    key = p.text(args[0], "key", max_bytes=128)
    if key == "tx_gas_limit":  # FISCO SDKs ask; ledgerlab meters no gas
        return fisco.TX_GAS_LIMIT
    value = backend.system_config(key)
    if value is None:
        raise RpcError(ErrorCode.InvalidSystemConfig, f"unknown system config key {key!r}")
    return str(value)


RAW_TX_USAGE = "[group, rawTransaction, {force}?]"


def _prepare_raw_tx(args: list[Any]) -> tuple[bytes, bool]:
    """``[raw]`` or ``[raw, {"force": true|false}]``: force skips the node's quorum check
    of membership changes (docs/rpc.md, MembershipBreaksQuorum)."""
    p.arity(args, 1, 2, RAW_TX_USAGE)
    raw = p.hex_bytes(args[0], "raw transaction")
    force = False
    if len(args) == 2:
        options = args[1]
        if type(options) is not dict:
            raise invalid_params('the third param must be an object such as {"force": true}')
        unknown = sorted(k for k in options if k != "force")
        if unknown:
            raise invalid_params(f"unknown option {unknown[0][:32]!r} (only 'force')")
        force = p.boolean(options.get("force", False), "force")
    return raw, force


def _table(*methods: Method) -> dict[str, Method]:
    return {m.name: m for m in methods}


G = "[group]"

METHODS: dict[str, Method] = _table(
    Method("getClientVersion", "[] or [group]", _client_version, needs_group=False),
    Method("getBlockNumber", G, _no_args(G, lambda b: render.hexint(b.block_number()))),
    Method("getBlockByNumber", "[group, blockNumber, includeTransactions?]", _get_block_by_number),
    Method("getBlockByHash", "[group, blockHash, includeTransactions?]", _get_block_by_hash),
    Method("getBlockHashByNumber", "[group, blockNumber]", _get_block_hash_by_number),
    Method("getTransactionByHash", "[group, txHash]", _get_transaction),
    Method("getTransactionReceipt", "[group, txHash]", _get_receipt),
    Method("sendRawTransaction", RAW_TX_USAGE, prepare=_prepare_raw_tx),
    Method("call", "[group, {from?, to, data}]", _call),
    Method("getPbftView", G, _no_args(G, lambda b: render.hexint(b.pbft_view()))),
    Method("getSealerList", G, _no_args(G, lambda b: [render.node_id(n) for n in b.sealers()])),
    Method("getObserverList", G, _no_args(G, lambda b: [render.node_id(n) for n in b.observers()])),
    Method(
        "getConsensusStatus",
        G,
        _no_args(G, lambda b: render.consensus_status(b.consensus_status())),
    ),
    Method("getSyncStatus", G, _no_args(G, lambda b: render.sync_status(b.sync_status()))),
    Method("getPeers", G, _no_args(G, lambda b: render.peers(b.peers()))),
    Method("getPendingTxSize", G, _no_args(G, lambda b: render.hexint(b.pending_tx_size()))),
    Method(
        "getTotalTransactionCount",
        G,
        _no_args(G, lambda b: render.total_tx_count(b.total_transaction_count())),
    ),
    Method("getSystemConfigByKey", "[group, key]", _system_config),
    Method("getCode", "[group, address]", fisco.get_code),
)
