"""Transports: how frames move between nodes (memory, TCP + mutual TLS, MQTT).

The runtime programs against :class:`Transport` and builds the configured one with
:func:`create_transport` from the node config's ``[p2p]`` table (docs/p2p.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.transport.base import Transport, TransportClosed, TransportError, TransportStats
from node.transport.memory import MemoryHub, MemoryTransport
from node.transport.mqtt import MqttTransport
from node.transport.pki import NodeIdentity
from node.transport.tcp import TcpTransport, parse_address

if TYPE_CHECKING:
    from node.runtime.config import NodeConfig

__all__ = [
    "MemoryHub",
    "MemoryTransport",
    "MqttTransport",
    "TcpTransport",
    "Transport",
    "TransportClosed",
    "TransportError",
    "TransportStats",
    "create_transport",
    "transport_from_node_config",
]

_COMMON = {"transport", "blacklist", "max_frame_size", "inbox_capacity"}
_TCP = {
    "listen_host",
    "listen_port",
    "peers",
    "backoff_initial",
    "backoff_max",
    "handshake_timeout",
    "ping_interval",
    "idle_timeout",
    "send_buffer_limit",
    "max_pending_handshakes",
}
_MQTT = {
    "broker_url",
    "username",
    "password",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "tls_insecure",
    "topic_prefix",
    "client_id",
    "qos_broadcast",
    "qos_unicast",
    "max_batch_bytes",
    "max_batch_delay_ms",
    "heartbeat_interval",
    "peer_timeout",
    "max_age",
    "keepalive",
    "backoff_initial",
    "backoff_max",
    "max_pending_bytes",
    "max_inflight",
    "max_queued_messages",
}


def create_transport(
    p2p: Mapping[str, Any],
    *,
    identity: NodeIdentity,
    genesis_hash: bytes,
    members: Iterable[str],
    chain_id: str,
    group_id: str | int,
    hub: MemoryHub | None = None,
) -> Transport:
    """Build the transport named by ``p2p["transport"]`` (default ``"tcp"``).

    ``p2p`` is the ``[p2p]`` table; MQTT settings may sit in a nested ``mqtt`` table.
    ``members`` are the sealers + observers from genesis. Unknown keys are a ValueError,
    so a typo in a config file is reported rather than silently ignored.
    """
    cfg = {k: v for k, v in p2p.items() if k != "mqtt"}
    nested = p2p.get("mqtt", {})
    if not isinstance(nested, Mapping):
        raise ValueError("[p2p.mqtt] must be a table")
    kind = cfg.get("transport", "tcp")
    members = list(members)
    blacklist = list(cfg.get("blacklist", ()))
    if kind == "tcp":
        _check(cfg, _COMMON | _TCP, "p2p")
        opts = {k: v for k, v in cfg.items() if k in _TCP | {"max_frame_size", "inbox_capacity"}}
        return TcpTransport(
            identity=identity,
            genesis_hash=genesis_hash,
            allowed=members,
            blacklist=blacklist,
            **opts,
        )
    if kind == "mqtt":
        merged = {**{k: v for k, v in cfg.items() if k not in _TCP - _MQTT}, **nested}
        _check(merged, _COMMON | _MQTT, "p2p.mqtt")
        if "broker_url" not in merged:
            raise ValueError("[p2p.mqtt] needs broker_url (mqtt://host:port or mqtts://...)")
        opts = {
            k: v for k, v in merged.items() if k in _MQTT | {"max_frame_size", "inbox_capacity"}
        }
        if "max_batch_delay_ms" in opts:
            opts["max_batch_delay"] = float(opts.pop("max_batch_delay_ms")) / 1000
        return MqttTransport(
            key=identity.consensus,
            genesis_hash=genesis_hash,
            chain_id=chain_id,
            group_id=group_id,
            members=members,
            blacklist=blacklist,
            **opts,
        )
    if kind == "memory":
        if hub is None:
            raise ValueError("the memory transport needs a MemoryHub (in-process clusters only)")
        transport = MemoryTransport(hub, identity.node_id, allowed=members)
        transport.set_members(members, blacklist)
        return transport
    raise ValueError(f"[p2p] transport must be 'tcp', 'mqtt' or 'memory', not {kind!r}")


def _check(cfg: Mapping[str, Any], known: set[str], table: str) -> None:
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"[{table}] unknown setting(s): {', '.join(unknown)}")


def transport_from_node_config(
    config: NodeConfig,
    *,
    identity: NodeIdentity,
    genesis_hash: bytes,
    members: Iterable[str],
    chain_id: str,
    group_id: str | int,
    hub: MemoryHub | None = None,
) -> Transport:
    """Build the transport from a loaded ``node.runtime.config.NodeConfig`` (``[p2p]``/``[mqtt]``).

    Other tuning keeps the defaults documented in docs/p2p.md.
    """
    host, port = parse_address(config.p2p_listen)
    p2p: dict[str, Any] = {"transport": config.transport, "blacklist": list(config.blacklist)}
    if config.transport == "mqtt":
        mqtt: dict[str, Any] = {"broker_url": config.mqtt_broker}
        if config.mqtt_username is not None:
            mqtt["username"] = config.mqtt_username
        if config.mqtt_password is not None:
            mqtt["password"] = config.mqtt_password
        if config.mqtt_tls_ca:
            mqtt["tls_ca"] = str(config.path(Path(config.mqtt_tls_ca)))
        p2p["mqtt"] = mqtt
    elif config.transport == "tcp":
        p2p.update(listen_host=host, listen_port=port, peers=list(config.peers))
    return create_transport(
        p2p,
        identity=identity,
        genesis_hash=genesis_hash,
        members=members,
        chain_id=chain_id,
        group_id=group_id,
        hub=hub,
    )
