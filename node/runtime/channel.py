"""Starting the FISCO channel of a node (``[channel] listen``; docs/channel.md).

The channel answers through a JSON-RPC dispatcher of its own over the same
:class:`~node.runtime.service.NodeService`, so every method and shape is the HTTP one;
the runtime tells the server of each commit so it can push receipts.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import TYPE_CHECKING

from node.rpc.channel import ChannelServer, server_context
from node.rpc.jsonrpc import Dispatcher
from node.runtime.config import split_hostport
from node.runtime.errors import NodeError
from node.runtime.service import NodeService

if TYPE_CHECKING:
    from node.runtime.host import ServiceHost

CHANNEL_CERT = "channel.crt"
CHANNEL_KEY = "channel.key"
CA_CERT = "ca.crt"


async def start_channel(node: ServiceHost, stack: contextlib.AsyncExitStack) -> ChannelServer:
    """Serve the channel for ``node`` on ``config.channel_listen`` until ``stack`` closes."""
    cfg = node.config
    assert cfg.channel_listen is not None
    host, port = split_hostport(cfg.channel_listen, "channel.listen")
    conf = cfg.path(cfg.conf_dir)
    try:
        ctx = server_context(conf / CA_CERT, conf / CHANNEL_CERT, conf / CHANNEL_KEY)
    except (OSError, ssl.SSLError) as exc:
        raise NodeError(
            f"cannot load the channel certificate {conf / CHANNEL_CERT} "
            f"(and {CHANNEL_KEY}, {CA_CERT}): {exc}"
        ) from None
    group = node.genesis.group_id
    dispatcher = Dispatcher({group: NodeService(node)}, on_internal_error=node.supervisor.report)
    server = ChannelServer(dispatcher, group=str(group), ssl_context=ctx, host=host, port=port)
    try:
        await stack.enter_async_context(server)
    except OSError as exc:
        raise NodeError(
            f"cannot serve the channel on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return server


__all__ = ["CA_CERT", "CHANNEL_CERT", "CHANNEL_KEY", "start_channel"]
