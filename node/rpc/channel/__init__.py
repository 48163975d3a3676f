"""The channel: FISCO BCOS 2.x's TLS + framed-JSON port for SDKs (docs/channel.md).

``ChannelServer`` answers RPC frames through the node's JSON-RPC :class:`Dispatcher`,
pushes a transaction's receipt on its request's seq when it commits, and notifies block
numbers. ``frames`` holds the wire format, ``tls`` the TLS 1.2 / secp256k1 settings.
"""

from node.rpc.channel.frames import ChannelCode, FrameError, FrameType
from node.rpc.channel.server import ChannelServer
from node.rpc.channel.tls import server_context

__all__ = ["ChannelCode", "ChannelServer", "FrameError", "FrameType", "server_context"]
