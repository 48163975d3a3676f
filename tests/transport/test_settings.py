"""Transport settings: one home per option (TcpSettings, MqttSettings) and one host:port parser."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from node.runtime.config import ConfigError, NodeConfig, split_hostport
from node.transport import TcpTransport, create_transport
from node.transport.settings import (
    MqttSettings,
    TcpSettings,
    format_hostport,
    parse_hostport,
    setting_names,
)
from tests.transport.conftest import GENESIS, Pki

# -- host:port -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:30300", ("127.0.0.1", 30300)),
        ("localhost:1", ("localhost", 1)),
        ("node-3.example:65535", ("node-3.example", 65535)),
        ("[::1]:30300", ("::1", 30300)),
        ("[fe80::1%eth0]:30300", ("fe80::1%eth0", 30300)),
        (("::1", 30300), ("::1", 30300)),
    ],
)
def test_parse_hostport_accepts(text: str | tuple[str, int], expected: tuple[str, int]) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "nohost",
        ":1",
        "h:",
        "h:x",
        "h:-1",
        "h:+1",
        "h:0",  # a peer cannot be dialled on port 0
        "h:65536",
        "h:99999",
        "h:\u0663",  # a non-ASCII digit
        "::1:30300",  # unbracketed IPv6 is ambiguous
        "[::1:30300",
        "::1]:30300",
        "[127.0.0.1]:30300",  # brackets are for IPv6 only
        "[]:1",
        ("h", 0),
        ("", 1),
        ("h", True),
    ],
)
def test_parse_hostport_refuses(text: str | tuple[str, int]) -> None:
    with pytest.raises(ValueError, match=r"^peers: ") as info:
        parse_hostport(text, what="peers")
    assert "\n" not in str(info.value)


def test_port_zero_only_where_it_means_pick_a_free_port() -> None:
    assert parse_hostport("127.0.0.1:0", allow_zero=True) == ("127.0.0.1", 0)
    assert parse_hostport("[::1]:0", allow_zero=True) == ("::1", 0)
    with pytest.raises(ValueError, match=r"1\.\.65535"):
        parse_hostport("127.0.0.1:0")
    # the node config: listen addresses (p2p, rpc) may use 0, peers may not
    assert split_hostport("127.0.0.1:0", "rpc.listen") == ("127.0.0.1", 0)
    with pytest.raises(ConfigError, match=r"p2p\.peers"):
        NodeConfig(home=Path("."), peers=("127.0.0.1:0",))
    cfg = NodeConfig(home=Path("."), p2p_listen="127.0.0.1:0", rpc_listen="127.0.0.1:0")
    assert cfg.tcp.listen_port == 0


def test_config_and_transport_share_the_rules() -> None:
    cfg = NodeConfig(home=Path("."), p2p_listen="[::1]:30300", peers=("[::1]:30301",))
    assert (cfg.tcp.listen_host, cfg.tcp.listen_port) == ("::1", 30300)
    assert cfg.tcp.addresses() == [("::1", 30301)]
    assert split_hostport("[::1]:20200", "rpc.listen") == ("::1", 20200)
    for bad in ("::1:30300", "h:65536", "h:x"):
        with pytest.raises(ConfigError, match=r"p2p\.listen"):
            NodeConfig(home=Path("."), p2p_listen=bad)
    assert format_hostport("::1", 1) == "[::1]:1" and format_hostport("h", 2) == "h:2"


# -- the settings dataclasses ----------------------------------------------------------


def test_every_field_has_a_default_but_the_broker() -> None:
    assert TcpSettings().listen_port == 0 and TcpSettings().client_hello_timeout == 1.0
    with pytest.raises(TypeError):
        MqttSettings()  # type: ignore[call-arg]
    assert MqttSettings(broker_url="mqtt://h").max_batch_delay == 0.002


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"listen_port": 65536}, "listen_port must be 0..65535"),
        ({"listen_host": ""}, "listen_host"),
        ({"peers": "127.0.0.1:1"}, "peers must be a list"),
        ({"peers": ["127.0.0.1:0"]}, "peers: port must be 1..65535"),
        ({"max_frame_size": 100}, "max_frame_size must be at least 1024"),
        ({"handshake_timeout": 0}, "handshake_timeout must be > 0"),
        ({"handshake_timeout": "5"}, "handshake_timeout must be a number"),
        ({"max_pending_handshakes": 0}, "max_pending_handshakes must be at least 1"),
        ({"send_buffer_limit": True}, "send_buffer_limit must be an integer"),
        ({"backoff_initial": 2.0, "backoff_max": 1.0}, "backoff_max"),
        ({"handshake_grace": -1}, "handshake_grace must be >= 0"),
        ({"failure_log_interval": -0.5}, "failure_log_interval"),
    ],
)
def test_tcp_settings_errors(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        TcpSettings(**kw)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"broker_url": "http://h"}, "scheme"),
        ({"qos_unicast": 3}, "QoS must be 0, 1 or 2"),
        ({"qos_broadcast": True}, "QoS"),
        ({"topic_prefix": "a/b"}, "topic_prefix"),
        ({"tls_insecure": "yes"}, "tls_insecure"),
        ({"max_inflight": 0}, "max_inflight"),
        ({"max_batch_delay_ms": -1}, "max_batch_delay_ms"),
        ({"username": 5}, "username must be a string"),
    ],
)
def test_mqtt_settings_errors(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MqttSettings(**{"broker_url": "mqtt://h", **kw})  # type: ignore[arg-type]


def test_integers_given_for_seconds_become_floats() -> None:
    s = TcpSettings(handshake_timeout=5, peers=["127.0.0.1:1"])
    assert s.handshake_timeout == 5.0 and isinstance(s.handshake_timeout, float)
    assert s.peers == ("127.0.0.1:1",)  # normalised, so the settings stay hashable
    hash(s)


# -- the transports take them ---------------------------------------------------------


def test_tcp_transport_takes_settings_and_overrides(pki: Pki) -> None:
    s = TcpSettings(peers=["127.0.0.1:30301"], client_hello_timeout=0.5, handshake_grace=0.1)
    t = TcpTransport(identity=pki.nodes[0], genesis_hash=GENESIS, settings=s, idle_timeout=3)
    assert t.settings == dataclasses.replace(s, idle_timeout=3.0)
    assert (t.client_hello_timeout, t.handshake_grace, t.idle_timeout) == (0.5, 0.1, 3.0)
    assert t.peer_addresses == [("127.0.0.1", 30301)]
    with pytest.raises(TypeError, match="listen_prot"):
        TcpTransport(identity=pki.nodes[0], genesis_hash=GENESIS, listen_prot=1)


def test_newer_tcp_options_are_settings_the_factory_accepts(pki: Pki) -> None:
    t = create_transport(
        {"client_hello_timeout": 0.3, "handshake_grace": 0.05, "failure_log_interval": 2},
        identity=pki.nodes[0],
        genesis_hash=GENESIS,
        members=pki.ids,
        chain_id="c",
        group_id=1,
    )
    assert isinstance(t, TcpTransport)
    assert (t.client_hello_timeout, t.handshake_grace, t._failures.interval) == (0.3, 0.05, 2.0)
    with pytest.raises(ValueError, match=r"^\[p2p\] handshake_grace must be >= 0"):
        create_transport(
            {"handshake_grace": -1},
            identity=pki.nodes[0],
            genesis_hash=GENESIS,
            members=pki.ids,
            chain_id="c",
            group_id=1,
        )


# -- the node config derives its keys from the settings -------------------------------


def test_node_config_accepts_every_setting_and_round_trips(tmp_path: Path) -> None:
    doc = {
        "p2p": {
            "listen": "127.0.0.1:30305",
            "peers": ["127.0.0.1:30306"],
            "handshake_grace": 0.5,
            "max_frame_size": 1 << 20,
        },
        "mqtt": {"broker": "mqtt://b:1884", "topic_prefix": "lab", "max_batch_delay_ms": 5},
    }
    cfg = NodeConfig.from_dict(doc, home=tmp_path)
    assert cfg.tcp.handshake_grace == 0.5 and cfg.tcp.listen_port == 30305
    assert cfg.tcp.max_frame_size == cfg.mqtt.max_frame_size == 1 << 20  # shared key
    assert (cfg.mqtt.broker_url, cfg.mqtt.topic_prefix) == ("mqtt://b:1884", "lab")
    assert cfg.mqtt.max_batch_delay == 0.005
    (tmp_path / "config.toml").write_text(cfg.to_toml())
    assert NodeConfig.load(tmp_path / "config.toml") == cfg


def test_default_config_file_is_unchanged(tmp_path: Path) -> None:
    text = NodeConfig(home=tmp_path).to_toml()
    p2p = text.split("[p2p]\n")[1].split("\n\n")[0].splitlines()
    assert [line.split(" = ")[0] for line in p2p] == ["transport", "listen", "peers", "blacklist"]
    assert text.split("[mqtt]\n")[1].split("\n\n")[0] == 'broker = "mqtt://127.0.0.1:1883"'


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"p2p": {"listen_prot": 1}}, r"^\[p2p\] unknown setting\(s\): listen_prot$"),
        ({"p2p": {"listen_port": 1}}, "unknown setting"),  # spelled `listen` in a node config
        ({"mqtt": {"broker_url": "mqtt://h"}}, r"^\[mqtt\] unknown setting\(s\): broker_url$"),
        ({"p2p": {"idle_timeout": -1}}, r"^\[p2p\] idle_timeout must be > 0"),
        ({"mqtt": {"qos_unicast": 5}}, r"^\[mqtt\] QoS"),
        ({"mqtt": {"broker": "http://h"}}, "scheme"),
        ({"p2p": {"peers": ["h:0"]}}, "p2p.peers"),
    ],
)
def test_node_config_errors_are_clear(doc: dict[str, object], match: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        NodeConfig.from_dict(doc, home=tmp_path)
    assert "\n" not in str(info.value)


def test_node_config_keys_come_from_the_settings() -> None:
    from node.runtime import config

    from_node = {"listen_host", "listen_port", "peers"}
    assert setting_names(TcpSettings) - from_node == config.P2P_TUNING
    assert "client_hello_timeout" in config.P2P_TUNING and "keepalive" in config.MQTT_TUNING
