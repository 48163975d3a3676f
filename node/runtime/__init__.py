"""One node's life: the :class:`Node` (node.py), its txpool, block sync, peer wire
messages, config, the supervisor and stall watch, and the RPC service it offers.

``Node`` is imported on first use, so that what needs only a submodule (the launcher and
the console read ``node.runtime.config``) does not load the whole node with it."""

from typing import TYPE_CHECKING, Any

from node.runtime.errors import NodeError

if TYPE_CHECKING:
    from node.runtime.node import Node

__all__ = ["Node", "NodeError"]


def __getattr__(name: str) -> Any:
    if name == "Node":
        from node.runtime.node import Node

        return Node
    raise AttributeError(f"module 'node.runtime' has no attribute {name!r}")
