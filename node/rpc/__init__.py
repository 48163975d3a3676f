"""The node's JSON-RPC door: FISCO BCOS method names over HTTP/1.1.

``Dispatcher`` turns JSON-RPC bodies into backend calls and FISCO-shaped results;
``RpcServer`` serves it (plus ``/metrics`` and ``/health``) over keep-alive HTTP. The
runtime implements :class:`NodeBackend`. See docs/rpc.md for every method and shape.
"""

from node.rpc.backend import (
    BlockData,
    CallResult,
    ConsensusData,
    EventData,
    NodeBackend,
    PeerData,
    ReceiptData,
    Rejected,
    Rejection,
    SyncData,
    SyncPeerData,
    TotalTxData,
    TxData,
)
from node.rpc.errors import ErrorCode, RpcError
from node.rpc.http import RpcServer
from node.rpc.jsonrpc import Dispatcher
from node.rpc.metrics import Metric, counter, gauge, labelled

__all__ = [
    "BlockData",
    "CallResult",
    "ConsensusData",
    "Dispatcher",
    "ErrorCode",
    "EventData",
    "Metric",
    "NodeBackend",
    "PeerData",
    "ReceiptData",
    "Rejected",
    "Rejection",
    "RpcError",
    "RpcServer",
    "SyncData",
    "SyncPeerData",
    "TotalTxData",
    "TxData",
    "counter",
    "gauge",
    "labelled",
]
