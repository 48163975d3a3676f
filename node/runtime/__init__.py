"""One node's life: the :class:`Node` (node.py), its txpool, block sync, peer wire
messages, config, the supervisor and stall watch, and the RPC service it offers."""

from node.runtime.errors import NodeError
from node.runtime.node import Node

__all__ = ["Node", "NodeError"]
