"""Backend plain data -> FISCO BCOS 2.x JSON result shapes.

FISCO's own conventions are kept even where they are mixed: block, transaction, receipt,
view and counter numbers are ``0x`` hex strings; the consensus and sync status objects
use plain JSON integers; hashes and addresses are ``0x`` hex; node ids are 128 hex
digits without a prefix. docs/rpc.md shows every shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from node.rpc.backend import (
    BlockData,
    CallResult,
    ConsensusData,
    PeerData,
    ReceiptData,
    SyncData,
    TotalTxData,
    TxData,
)


def hexint(value: int) -> str:
    """``0x`` hex of an int (negative numbers as ``-0x..``, which ``int(s, 16)`` reads)."""
    if type(value) is not int:
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return hex(value)


def hexbytes(value: bytes | bytearray) -> str:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    return "0x" + bytes(value).hex()


def node_id(value: bytes) -> str:
    """Node ids as FISCO prints them: hex without a 0x prefix."""
    if not isinstance(value, (bytes, bytearray)):
        raise TypeError(f"expected bytes, got {type(value).__name__}")
    return bytes(value).hex()


def _opt(value: Any, fn: Any) -> Any:
    return None if value is None else fn(value)


def nonce(value: str | bytes | int) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return hexint(value)
    return hexbytes(value)


def transaction(tx: TxData) -> dict[str, Any]:
    return {
        "args": [_arg(a) for a in tx["args"]],
        "blockHash": _opt(tx["block_hash"], hexbytes),
        "blockLimit": hexint(tx["block_limit"]),
        "blockNumber": _opt(tx["block_number"], hexint),
        "chainId": str(tx["chain_id"]),
        "from": hexbytes(tx["sender"]),
        "groupId": str(tx["group_id"]),
        "hash": hexbytes(tx["hash"]),
        "input": hexbytes(tx["input"]),
        "method": str(tx["method"]),
        "nonce": nonce(tx["nonce"]),
        "signature": hexbytes(tx["signature"]),
        "to": hexbytes(tx["to"]),
        "transactionIndex": _opt(tx["index"], hexint),
    }


def _arg(value: str | int) -> str | int:
    """A call argument: strings as they are, uint256 numbers as JSON integers."""
    if type(value) is str or type(value) is int:
        return value
    raise TypeError(f"call arguments are str or int, not {type(value).__name__}")


def block(blk: BlockData, full_txs: bool) -> dict[str, Any]:
    txs: list[Any]
    if full_txs:
        txs = [transaction(t) for t in blk.get("transactions", ())]
    else:
        txs = [hexbytes(h) for h in blk["tx_hashes"]]
    out: dict[str, Any] = {
        "extraData": hexbytes(blk["extra_data"]),
        "hash": hexbytes(blk["hash"]),
        "number": hexint(blk["number"]),
        "parentHash": hexbytes(blk["parent_hash"]),
        "receiptsRoot": hexbytes(blk["receipt_root"]),
        "sealer": hexint(blk["sealer"]),
        "sealerList": [node_id(n) for n in blk["sealer_list"]],
        "signatureList": [
            {"index": hexint(i), "signature": hexbytes(sig)} for i, sig in blk["signatures"]
        ],
        "stateRoot": hexbytes(blk["state_root"]),
        "timestamp": hexint(blk["timestamp"]),
        "transactions": txs,
        "transactionsRoot": hexbytes(blk["tx_root"]),
    }
    return out


def receipt(rc: ReceiptData) -> dict[str, Any]:
    return {
        "blockHash": hexbytes(rc["block_hash"]),
        "blockNumber": hexint(rc["block_number"]),
        "from": hexbytes(rc["sender"]),
        "gasUsed": hexint(rc.get("gas_used", 0)),
        "input": hexbytes(rc["input"]),
        "logs": [
            {
                "address": hexbytes(log["address"]),
                "data": hexbytes(log["data"]),
                "topics": [hexbytes(t) for t in log["topics"]],
            }
            for log in rc["events"]
        ],
        "output": hexbytes(rc["output"]),
        "status": hexint(rc["status"]),
        "to": hexbytes(rc["to"]),
        "transactionHash": hexbytes(rc["tx_hash"]),
        "transactionIndex": hexint(rc["index"]),
    }


def call_result(res: CallResult) -> dict[str, Any]:
    return {
        "currentBlockNumber": hexint(res["block_number"]),
        "output": hexbytes(res["output"]),
        "status": hexint(res["status"]),
    }


def consensus_status(cs: ConsensusData) -> dict[str, Any]:
    index = cs["node_index"]
    out = {
        "accountType": cs.get("role") or ("sealer" if index is not None else "observer"),
        "blockNumber": int(cs["block_number"]),
        "connectedNodes": int(cs["connected"]),
        "currentView": int(cs["view"]),
        "highestblockHash": hexbytes(cs["block_hash"]),
        "leaderFailed": bool(cs["leader_failed"]),
        "leaderIndex": int(cs["leader_index"]),
        "maxFaultyNum": int(cs["max_faulty"]),
        "minRequiredQuorum": int(cs["quorum"]),
        "nodeId": node_id(cs["node_id"]),
        "nodeIndex": None if index is None else int(index),
        "nodeNum": len(cs["sealers"]),
        "sealerList": [node_id(n) for n in cs["sealers"]],
        "timeout": int(cs["timeout_ms"]),
        "toView": int(cs["to_view"]),
        "viewChanges": int(cs["view_changes"]),
        "secondsSinceLastCommit": round(float(cs["seconds_since_last_commit"]), 1),
        "stalled": bool(cs["stalled"]),
        "stallReason": cs["stall_reason"],
        "internalErrors": int(cs["internal_errors"]),
    }
    if "storage_fault" in cs:  # node/runtime/storage_fault.py; null while it can write
        out["storageFault"] = cs["storage_fault"]
    if "byzantine" in cs:  # a test mode (docs/node.md); real nodes always say, null: honest
        out["byzantine"] = cs["byzantine"]
    return out


def sync_status(ss: SyncData) -> dict[str, Any]:
    return {
        "blockNumber": int(ss["block_number"]),
        "genesisHash": hexbytes(ss["genesis_hash"]),
        "isSyncing": bool(ss["is_syncing"]),
        "knownHighestNumber": int(ss["known_highest_number"]),
        "knownLatestHash": hexbytes(ss["known_latest_hash"]),
        "latestHash": hexbytes(ss["latest_hash"]),
        "nodeId": node_id(ss["node_id"]),
        "peers": [
            {
                "blockNumber": int(p["block_number"]),
                "genesisHash": hexbytes(p["genesis_hash"]),
                "latestHash": hexbytes(p["latest_hash"]),
                "nodeId": node_id(p["node_id"]),
            }
            for p in ss["peers"]
        ],
        "txPoolSize": int(ss["tx_pool_size"]),
    }


def peers(items: Sequence[PeerData]) -> list[dict[str, Any]]:
    return [
        {
            "Agency": str(p.get("agency", "")),
            "IPAndPort": str(p["address"]),
            "Node": str(p.get("node", "")),
            "NodeID": node_id(p["node_id"]),
            "Topic": [],
        }
        for p in items
    ]


def total_tx_count(t: TotalTxData) -> dict[str, str]:
    return {
        "blockNumber": hexint(t["block_number"]),
        "failedTxSum": hexint(t["failed_tx_sum"]),
        "txSum": hexint(t["tx_sum"]),
    }
