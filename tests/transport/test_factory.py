"""create_transport: the runtime's one way to build a transport from the [p2p] table."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.runtime.config import NodeConfig
from node.transport import (
    MemoryHub,
    MemoryTransport,
    MqttTransport,
    TcpTransport,
    create_transport,
    transport_from_node_config,
)
from tests.transport.conftest import GENESIS, Pki

pytestmark = pytest.mark.asyncio


def build(pki: Pki, p2p: dict[str, object], hub: MemoryHub | None = None) -> object:
    return create_transport(
        p2p,
        identity=pki.nodes[0],
        genesis_hash=GENESIS,
        members=pki.ids[:4],
        chain_id="chain0",
        group_id=1,
        hub=hub,
    )


async def test_tcp_from_config(pki: Pki) -> None:
    t = build(
        pki,
        {
            "listen_host": "127.0.0.1",
            "listen_port": 0,
            "peers": ["127.0.0.1:30301"],
            "blacklist": [pki.ids[3]],
            "max_frame_size": 1 << 20,
        },
    )
    assert isinstance(t, TcpTransport)
    assert t.allowed == frozenset(pki.ids[:4]) and t.blacklist == {pki.ids[3]}
    assert t.peer_addresses == [("127.0.0.1", 30301)] and t.max_frame_size == 1 << 20


async def test_mqtt_from_config(pki: Pki) -> None:
    t = build(
        pki,
        {
            "transport": "mqtt",
            "listen_port": 30300,  # harmless leftover of the TCP settings
            "mqtt": {
                "broker_url": "mqtt://u:p@127.0.0.1:1883",
                "max_batch_delay_ms": 5,
                "qos_unicast": 1,
            },
        },
    )
    assert isinstance(t, MqttTransport)
    assert t.node_id == pki.ids[0] and t.max_batch_delay == 0.005 and t.qos_unicast == 1
    assert (t.username, t.password) == ("u", "p")
    assert t.root == "ledgerlab/chain0/1"


async def test_memory_from_config(pki: Pki) -> None:
    hub = MemoryHub()
    t = build(pki, {"transport": "memory", "blacklist": [pki.ids[1]]}, hub=hub)
    assert isinstance(t, MemoryTransport)
    with pytest.raises(ValueError, match="MemoryHub"):
        build(pki, {"transport": "memory"})


@pytest.mark.parametrize(
    ("p2p", "match"),
    [
        ({"transport": "carrier-pigeon"}, "must be"),
        ({"listen_prot": 1}, "unknown setting"),
        ({"transport": "mqtt"}, "broker_url"),
        ({"transport": "mqtt", "mqtt": {"broker_url": "mqtt://h", "qos": 1}}, "unknown"),
        ({"transport": "mqtt", "mqtt": "mqtt://h"}, "table"),
    ],
)
async def test_config_errors_are_clear(pki: Pki, p2p: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build(pki, p2p)


async def test_from_node_config(pki: Pki, tmp_path: Path) -> None:
    common = {"identity": pki.nodes[0], "genesis_hash": GENESIS, "members": pki.ids}
    cfg = NodeConfig(home=tmp_path, p2p_listen="127.0.0.1:30305", peers=("127.0.0.1:30306",))
    t = transport_from_node_config(cfg, chain_id="c", group_id=1, **common)
    assert isinstance(t, TcpTransport)
    assert (t.listen_host, t.listen_port, t.peer_addresses) == (
        "127.0.0.1",
        30305,
        [("127.0.0.1", 30306)],
    )
    cfg = NodeConfig(
        home=tmp_path,
        transport="mqtt",
        mqtt_broker="mqtt://127.0.0.1:1884",
        mqtt_username="u",
        blacklist=(pki.ids[2],),
    )
    m = transport_from_node_config(cfg, chain_id="c", group_id=1, **common)
    assert isinstance(m, MqttTransport)
    assert (m.broker.port, m.username, m.blacklist) == (1884, "u", {pki.ids[2]})
