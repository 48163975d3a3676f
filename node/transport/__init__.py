"""Transports: how frames move between nodes (memory, TCP + mutual TLS, MQTT).

The runtime programs against :class:`Transport` and builds the configured one with
:func:`create_transport` from the node config's ``[p2p]`` table (docs/p2p.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from node.transport.base import (
    Identity,
    KeyIdentity,
    Transport,
    TransportClosed,
    TransportError,
    TransportStats,
)
from node.transport.memory import MemoryHub, MemoryTransport
from node.transport.mqtt import MqttTransport
from node.transport.pki import NodeIdentity
from node.transport.settings import (
    MqttSettings,
    TcpSettings,
    check_keys,
    format_hostport,
    parse_hostport,
    setting_names,
    settings_from_table,
)
from node.transport.tcp import TcpTransport

if TYPE_CHECKING:
    from node.runtime.config import NodeConfig

__all__ = [
    "Identity",
    "KeyIdentity",
    "MemoryHub",
    "MemoryTransport",
    "MqttSettings",
    "MqttTransport",
    "TcpSettings",
    "TcpTransport",
    "Transport",
    "TransportClosed",
    "TransportError",
    "TransportStats",
    "create_transport",
    "format_hostport",
    "mqtt_settings_from_p2p",
    "parse_hostport",
    "transport_from_node_config",
]

_COMMON = frozenset({"transport", "blacklist"})  # every other key is a settings field


def create_transport(
    p2p: Mapping[str, Any],
    *,
    identity: Identity,
    genesis_hash: bytes,
    members: Iterable[str],
    chain_id: str,
    group_id: str | int,
    hub: MemoryHub | None = None,
) -> Transport:
    """Build the transport named by ``p2p["transport"]`` (default ``"tcp"``).

    ``p2p`` is the ``[p2p]`` table: ``transport``, ``blacklist`` and the fields of
    :class:`TcpSettings`; MQTT settings (:class:`MqttSettings`) sit in a nested ``mqtt``
    table, where they override same-named ``[p2p]`` keys (e.g. ``max_frame_size``).
    ``members`` are the sealers + observers from genesis. Unknown keys are a ValueError,
    so a typo in a config file is reported rather than silently ignored.
    """
    cfg = {k: v for k, v in p2p.items() if k != "mqtt"}
    nested = p2p.get("mqtt", {})
    if not isinstance(nested, Mapping):
        raise ValueError("[p2p.mqtt] must be a table")
    kind = cfg.get("transport", "tcp")
    tcp = mqtt = None
    if kind == "tcp":
        check_keys(cfg, _COMMON | setting_names(TcpSettings), "p2p")
        tcp = settings_from_table(
            TcpSettings, {k: v for k, v in cfg.items() if k not in _COMMON}, "p2p"
        )
    elif kind == "mqtt":
        mqtt = mqtt_settings_from_p2p(cfg, nested)
    return _build(
        kind,
        tcp=tcp,
        mqtt=mqtt,
        identity=identity,
        genesis_hash=genesis_hash,
        members=list(members),
        blacklist=list(cfg.get("blacklist", ())),
        chain_id=chain_id,
        group_id=group_id,
        hub=hub,
    )


def _build(
    kind: str,
    *,
    tcp: TcpSettings | None,
    mqtt: MqttSettings | None,
    identity: Identity,
    genesis_hash: bytes,
    members: list[str],
    blacklist: list[str],
    chain_id: str,
    group_id: str | int,
    hub: MemoryHub | None,
) -> Transport:
    """The one place a transport object is made, from checked settings."""
    if kind == "tcp":
        assert tcp is not None
        return TcpTransport(
            identity=_certified(identity),
            genesis_hash=genesis_hash,
            settings=tcp,
            allowed=members,
            blacklist=blacklist,
        )
    if kind == "mqtt":
        assert mqtt is not None
        return MqttTransport(
            key=identity.consensus,
            genesis_hash=genesis_hash,
            chain_id=chain_id,
            group_id=group_id,
            members=members,
            blacklist=blacklist,
            settings=mqtt,
        )
    if kind == "memory":
        if hub is None:
            raise ValueError("the memory transport needs a MemoryHub (in-process clusters only)")
        transport = MemoryTransport(hub, identity.node_id, allowed=members)
        transport.set_members(members, blacklist)
        return transport
    raise ValueError(f"[p2p] transport must be 'tcp', 'mqtt' or 'memory', not {kind!r}")


def _certified(identity: Identity) -> NodeIdentity:
    if not isinstance(identity, NodeIdentity):
        raise ValueError("the tcp transport needs the node's certificates (conf/)")
    return identity


def mqtt_settings_from_p2p(
    p2p: Mapping[str, Any], nested: Mapping[str, Any], table: str = "p2p.mqtt"
) -> MqttSettings:
    """MqttSettings from a ``[p2p]`` table and its ``[p2p.mqtt]`` table.

    TCP-only ``[p2p]`` keys (listen address, peers, ...) are ignored, so switching a node
    to MQTT needs no cleanup; keys both transports share apply unless ``[p2p.mqtt]`` sets
    them; anything else is an unknown setting.
    """
    mqtt_names = setting_names(MqttSettings)
    tcp_only = setting_names(TcpSettings) - mqtt_names
    merged = {k: v for k, v in p2p.items() if k not in tcp_only | _COMMON}
    merged.update(nested)
    return settings_from_table(MqttSettings, merged, table)


def transport_from_node_config(
    config: NodeConfig,
    *,
    identity: Identity,
    genesis_hash: bytes,
    members: Iterable[str],
    chain_id: str,
    group_id: str | int,
    hub: MemoryHub | None = None,
) -> Transport:
    """Build the transport from a loaded ``node.runtime.config.NodeConfig``.

    The config carries complete settings (``config.tcp``, ``config.mqtt``), built and
    checked when it was loaded from its ``[p2p]`` / ``[mqtt]`` tables.
    """
    return _build(
        config.transport,
        tcp=config.tcp,
        mqtt=config.mqtt,
        identity=identity,
        genesis_hash=genesis_hash,
        members=list(members),
        blacklist=list(config.blacklist),
        chain_id=chain_id,
        group_id=group_id,
        hub=hub,
    )
