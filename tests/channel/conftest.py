"""A FISCO chain (``init_chain(fisco=True)``: ids 1/1, the channel on) of four node
processes, started once for the module and stopped by pid whatever happened."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.launcher import cluster, procs
from scripts.launcher.layout import Chain, init_chain
from tests.channel.client import ChannelClient, client_context
from tests.loops import both_loops

pytest_asyncio_loop_factories = both_loops  # the node runs its channel on uvloop


@pytest.fixture(scope="module")
def fisco_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    root = tmp_path_factory.mktemp("fisco") / "chain"
    p2p = procs.free_port_base(4)
    rpc = procs.free_port_base(4, avoid=range(p2p, p2p + 4))
    channel = procs.free_port_base(4, avoid=[*range(p2p, p2p + 4), *range(rpc, rpc + 4)])
    chain = init_chain(
        root, nodes=4, p2p_port=p2p, rpc_port=rpc, channel_port=channel, fisco=True,
        chain_id="1", group_id="1",
    )  # fmt: skip
    try:
        cluster.start_nodes(chain, timeout=120.0)
        yield chain
    finally:
        procs.stop_nodes(chain.nodes, timeout=15.0)


def sdk_files(chain: Chain) -> tuple[Path, Path, Path]:
    sdk = chain.root / "sdk"
    return sdk / "ca.crt", sdk / "sdk.crt", sdk / "sdk.key"


def connect(chain: Chain, index: int = 0) -> ChannelClient:
    node = chain.nodes[index]
    assert node.channel is not None
    return ChannelClient(node.channel, client_context(*sdk_files(chain)))
